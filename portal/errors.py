"""The error hierarchy and the one handler that renders every API error.

Every error body is JSON: `{"code": ..., "message": ...}` with a stable machine-readable
`code`; a validation error adds `fields`, a map from the field's path (nested fields and
list items joined by dots, e.g. `records.3.gpu_seconds`) to a list of `{code, message}`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.urls import Resolver404, resolve
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django_stubs_ext import StrOrPromise
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A refusal by a service: a stable code, an HTTP status, a message for people."""

    code = "domain_error"
    status_code: int = status.HTTP_409_CONFLICT
    retry_after_seconds: int | None = None
    default_message: StrOrPromise = _("The request conflicts with the current state.")

    def __init__(
        self, message: StrOrPromise | None = None, *, extra: Mapping[str, Any] | None = None
    ):
        self._message = message or self.default_message
        self.extra = dict(extra or {})
        super().__init__(self._message)

    @property
    def message(self) -> str:
        """In the language active where it is read: the default messages are translated."""
        return str(self._message)


class InvalidTransition(DomainError):
    code = "invalid_transition"
    default_message = _("This action is not allowed in the object's current state.")


class Conflict(DomainError):
    code = "conflict"


class AlreadyMember(DomainError):
    code = "already_member"
    default_message = _("This user is already a member of the organization.")


class AlreadyInvited(DomainError):
    code = "already_invited"
    default_message = _("This email has a pending invitation; revoke it to invite again.")


class InvitationExpired(DomainError):
    code = "invitation_expired"
    default_message = _("The invitation has expired; ask the organization's admins for a new one.")


class LastAdmin(DomainError):
    code = "last_admin"
    default_message = _("An organization must keep at least one admin.")


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = status.HTTP_401_UNAUTHORIZED
    default_message = _("No active user has this email and password.")


class FieldRefused(DomainError):
    """A refusal of one input field (`field`): a 400 whose body names it under `fields`, as a
    validation error would."""

    status_code = status.HTTP_400_BAD_REQUEST
    field: str

    def __init__(self, message: StrOrPromise | None = None) -> None:
        text = message or self.default_message
        super().__init__(
            text, extra={"fields": {self.field: [{"code": self.code, "message": text}]}}
        )


class ScopeNotAllowed(FieldRefused):
    """`usage:write` tokens belong to scheduler service accounts, and they hold no other."""

    code = "scope_not_allowed"
    field = "scope"
    default_message = _(
        "Only scheduler service accounts hold `usage:write` tokens; an operator issues them."
    )


class SourceTaken(FieldRefused):
    code = "source_taken"
    field = "source"
    default_message = _("A scheduler service account reports for this source already.")


class SharesExceeded(DomainError):
    code = "shares_exceeded"
    status_code = status.HTTP_400_BAD_REQUEST
    default_message = _("The nominal shares of all programs would sum to more than 1.")


class RequestRefused(DomainError):
    """A request that can never pass, refused before it is saved: per field, the reason's
    code (`out_of_bounds`, `window_in_past`), as a validation error."""

    code = "validation_error"
    status_code = status.HTTP_400_BAD_REQUEST
    default_message = _("The request has invalid fields.")


class InUse(DomainError):
    code = "in_use"
    default_message = _("This object is still referenced and cannot be deleted.")


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    status_code = status.HTTP_400_BAD_REQUEST
    default_message = (
        "An Idempotency-Key is 1 to 255 visible ASCII characters (a UUID is a good choice)."
    )


class IdempotencyKeyInUse(DomainError):
    """Another request with this key is still being answered: retry shortly, and get its
    answer then."""

    code = "idempotency_key_in_use"
    retry_after_seconds = 1
    default_message = (
        "A request with this Idempotency-Key is still in progress; retry after Retry-After "
        "seconds to get its answer."
    )


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = (
        "This Idempotency-Key was used for another request (another path or body); use a new "
        "key for a new request."
    )


NON_FIELD = "non_field_errors"


def _flatten(detail: Any, path: str = "") -> dict[str, list[dict[str, str]]]:
    """Flatten DRF's nested error detail into `{"records.3.gpu_seconds": [{code, message}]}`.

    Errors of an object as a whole (DRF's `non_field_errors`) stay at the object's own path,
    or at `non_field_errors` for the request body itself.
    """
    if isinstance(detail, exceptions.ErrorDetail | str):
        return {
            path or NON_FIELD: [
                {"code": str(getattr(detail, "code", "invalid")), "message": str(detail)}
            ]
        }
    flat: dict[str, list[dict[str, str]]] = {}
    if isinstance(detail, Mapping):
        children = [
            (path if key == NON_FIELD else (f"{path}.{key}" if path else str(key)), value)
            for key, value in detail.items()
        ]
    else:
        children = [
            (path, item)
            if isinstance(item, exceptions.ErrorDetail | str)
            else (f"{path}.{index}" if path else str(index), item)
            for index, item in enumerate(detail)
        ]
    for child_path, value in children:
        for key, errors in _flatten(value, child_path).items():
            flat.setdefault(key, []).extend(errors)
    return flat


_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: StrOrPromise, **extra: Any) -> dict[str, Any]:
    """The error body; `message` (often a lazy translation) in the request's language."""
    return {"code": code, "message": str(message), **extra}


UNAVAILABLE_MESSAGE = (
    "A service the portal depends on is unavailable for a moment. Try again after Retry-After "
    "seconds; retry a write with the same Idempotency-Key, so that it takes effect once."
)


def dependency_away(exc: BaseException | None) -> str | None:
    """Which dependency an exception says is away (`database`, `broker`), or None.

    The database: Django's OperationalError and InterfaceError, which psycopg raises for a
    refused, dropped or closed connection (and also for a deadlock or a lock timeout, which
    are as transient: the transaction was rolled back and a retry may pass). The broker:
    kombu's OperationalError, when a task could not be published.
    """
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        return "database"
    from kombu.exceptions import OperationalError as BrokerOperationalError

    if isinstance(exc, BrokerOperationalError):
        return "broker"
    return None


def unavailable_headers() -> dict[str, str]:
    return {"Retry-After": str(settings.PORTAL_RETRY_AFTER_SECONDS)}


def _log_unavailable(dependency: str, exc: BaseException, request_path: str) -> None:
    # One line, no traceback: during an outage every request would print one.
    logger.warning(
        "%s unavailable; answered 503 to %s (%s: %s)",
        dependency,
        request_path,
        type(exc).__name__,
        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
    )


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """Render every exception an API view raises as the portal's JSON error body."""
    # Imported here: rest_framework.views imports the authentication classes at import time,
    # and those import the services that raise the errors above.
    from rest_framework.views import set_rollback

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))

    if isinstance(exc, DomainError):
        set_rollback()
        # A 401 names the scheme that would succeed (RFC 9110).
        answer_headers = (
            {"WWW-Authenticate": 'Bearer realm="api"'} if exc.status_code == 401 else {}
        )
        if exc.retry_after_seconds is not None:
            answer_headers["Retry-After"] = str(exc.retry_after_seconds)
        return Response(
            error_body(exc.code, exc.message, **exc.extra),
            status=exc.status_code,
            headers=answer_headers or None,
        )

    dependency = dependency_away(exc)
    if dependency is not None:
        request = context.get("request")
        _log_unavailable(dependency, exc, getattr(request, "path", "?"))
        return Response(
            error_body("unavailable", UNAVAILABLE_MESSAGE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=unavailable_headers(),
        )

    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    set_rollback()

    if isinstance(exc, exceptions.ValidationError):
        body = error_body(
            "validation_error", _("The request has invalid fields."), fields=_flatten(exc.detail)
        )
        return Response(body, status=exc.status_code, headers=headers)

    detail = exc.detail
    code = _code_for(exc)
    message = str(detail) if not isinstance(detail, list | dict) else str(exc.default_detail)
    return Response(error_body(code, message), status=exc.status_code, headers=headers)


def _code_for(exc: exceptions.APIException) -> str:
    detail_code = getattr(exc.detail, "code", None)
    default_code = getattr(exc, "default_code", None)
    # A code chosen where the exception was raised wins over the class default.
    if detail_code and detail_code != default_code:
        return str(detail_code)
    for klass in type(exc).__mro__:
        if klass in _DRF_CODES:
            return _DRF_CODES[klass]
    return str(detail_code or "error")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _with_slash(request: HttpRequest) -> str | None:
    """The path with a trailing slash, when that path exists and this one does not end so."""
    path = request.path_info
    if path.endswith("/"):
        return None
    try:
        match = resolve(f"{path}/")
    except Resolver404:
        return None
    if match.url_name == "api-not-found":
        return None
    return f"{request.path}/"


def handler400(request: HttpRequest, exception: Exception | None = None) -> Any:
    """JSON under /api/ for what Django refuses before a view runs: a `Host` not allowed, a
    body over DATA_UPLOAD_MAX_MEMORY_SIZE (413); Django's page elsewhere."""
    if _wants_json(request):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return JsonResponse(
                error_body("request_too_large", f"The request body is larger than {limit} bytes."),
                status=413,
            )
        return JsonResponse(error_body("bad_request", _("The request was refused.")), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception or BadRequest())


def locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The answer to a sign-in while its user and address are locked out (django-axes): 429
    with Retry-After; JSON under /api/, a short page elsewhere (the admin's login)."""
    message = _("Too many failed sign-ins for this account from this address; try again later.")
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse(error_body("locked_out", message), status=429)
    else:
        response = HttpResponse(message, content_type="text/plain; charset=utf-8", status=429)
    response["Retry-After"] = retry_after
    return response


def handler404(request: HttpRequest, exception: Exception | None = None) -> Any:
    """JSON 404 under /api/ (unknown URL, malformed id, a write to a path without its
    trailing slash); Django's page elsewhere."""
    if _wants_json(request):
        return _not_found_json(_with_slash(request))
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


@csrf_exempt  # it changes nothing; a write to an unknown path is a 404, not a CSRF page
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> Any:
    """Every path under /api/ that no view takes: the API's JSON 404, in DEBUG as well (where
    Django would draw its HTML page). A GET of a known path without its trailing slash still
    redirects to it, as CommonMiddleware would."""
    slashed = _with_slash(request)
    if slashed is not None and request.method in ("GET", "HEAD"):
        query = request.META.get("QUERY_STRING", "")
        return HttpResponsePermanentRedirect(f"{slashed}?{query}" if query else slashed)
    return _not_found_json(slashed)


def _not_found_json(slashed: str | None) -> JsonResponse:
    """The API's 404, which names the path with its trailing slash when that one exists."""
    if slashed is not None:
        message = _("Not found. API paths end with a slash: %(path)s") % {"path": slashed}
        return JsonResponse(error_body("not_found", message), status=404)
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)


def handler500(request: HttpRequest) -> Any:
    """The answer to an exception no view handled. Django calls it while handling the
    exception, so `sys.exc_info()` holds it: a database or broker that is away (outside the
    API's views: the admin, /metrics, a middleware) answers 503 with Retry-After, not 500."""
    dependency = dependency_away(sys.exc_info()[1])
    if dependency is not None:
        response: HttpResponse
        if _wants_json(request):
            response = JsonResponse(
                error_body("unavailable", UNAVAILABLE_MESSAGE),
                status=503,
            )
        else:
            response = HttpResponse(
                UNAVAILABLE_MESSAGE, content_type="text/plain; charset=utf-8", status=503
            )
        for name, value in unavailable_headers().items():
            response[name] = value
        return response
    if _wants_json(request):
        return JsonResponse(
            error_body("server_error", _("The server failed; the error was logged.")), status=500
        )
    from django.views.defaults import server_error

    return server_error(request)


class NotAllowed(DomainError):
    """The user can see the object but may not do this to it."""

    code = "permission_denied"
    status_code: int = status.HTTP_403_FORBIDDEN
    default_message = _("You may not do this.")


class NotVisible(NotAllowed):
    """The user may not even see the object: answered as if it did not exist."""

    code = "not_found"
    status_code: int = status.HTTP_404_NOT_FOUND
    default_message = _("Not found.")
