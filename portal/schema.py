"""OpenAPI: every operation documents the portal's error bodies beside its success."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, AllowAny

from accounts.permissions import IsOperator, IsOperatorOrReadOnly
from portal.apidocs import errors as api_errors
from portal.errors import (
    UNAVAILABLE_MESSAGE,
    DomainError,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from portal.idempotency import HEADER as IDEMPOTENCY_HEADER
from portal.idempotency import REPLAYED_HEADER, accepts_idempotency_key
from portal.serializers import StrictFieldsMixin

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=IDEMPOTENCY_HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    type=str,
    pattern=r"^[\x21-\x7e]{1,255}$",
    description=(
        "A key of your choice, new for each write (a UUID), to retry this write safely: "
        "the same key with the same path and body, by the same user, within 24 hours "
        "(PORTAL_IDEMPOTENCY_KEY_HOURS), answers the first answer again (with "
        f"`{REPLAYED_HEADER}: true`) instead of acting twice. The same key with another path "
        "or body is refused (422 `idempotency_key_reused`); while the first request is still "
        "being answered, 409 `idempotency_key_in_use` with Retry-After. Only successful "
        "answers are kept: a refused write changed nothing and is tried afresh."
    ),
    examples=[OpenApiExample("A fresh UUID", value="9b3c6a34-2a51-4d55-9b8f-6c1f0e0d4a11")],
)


def _message(error: type[DomainError]) -> str:
    return str(error.default_message)


class FieldErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `required`.")
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable machine-readable code, e.g. `not_found`, `invalid_transition`."
    )
    message = serializers.CharField(help_text="What went wrong, for people.")


class ValidationErrorSerializer(ErrorSerializer):
    # DRF pops declared fields from the class, so this does not shadow Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=FieldErrorSerializer(many=True),
        required=False,
        help_text=(
            "With `validation_error` only: errors per field path; nested fields and list "
            "items are joined by dots (`records.3.gpu_seconds`); errors of the body as a "
            "whole are under `non_field_errors`."
        ),
    )


def _error(
    description: str,
    serializer: Any = ErrorSerializer,
    examples: dict[str, tuple[str, str]] | None = None,
    status_code: str = "",
) -> OpenApiResponse:
    """An error response; `examples` maps an example's name to its (code, message)."""
    return OpenApiResponse(
        response=serializer,
        description=description,
        examples=[
            OpenApiExample(
                name,
                value={"code": code, "message": message},
                response_only=True,
                status_codes=[status_code],
            )
            for name, (code, message) in (examples or {}).items()
        ]
        or None,
    )


# POST routes that act on an object rather than create one: their operation id is the verb.
ACTIONS = {
    "submit",
    "withdraw",
    "approve",
    "reject",
    "release",
    "suspend",
    "resume",
    "verify",
    "revoke",
    "accept",
    "decline",
}


class PortalAutoSchema(AutoSchema):
    """Adds the error responses a client must handle to every operation, each with the codes
    it can carry and one example per code; documents request bodies as closed (the API
    refuses fields it does not know); names operations as a generated client calls them
    (`applications_submit`, `applications_create`)."""

    def get_operation_id(self) -> str:
        operation_id = str(super().get_operation_id())
        if operation_id.startswith("v1_"):
            operation_id = operation_id[len("v1_") :]
        if self.path.rstrip("/").endswith("/api/v1"):
            return "root_retrieve"
        last = self.path.rstrip("/").rsplit("/", 1)[-1]
        if self.method == "POST" and last in ACTIONS and operation_id.endswith("_create"):
            operation_id = operation_id[: -len("_create")]
        return operation_id

    def get_description(self) -> str:  # type: ignore[override]
        # The views' docstrings are written for the code's readers; the docs take the
        # description of `@extend_schema`, else the one in portal/apidocs/descriptions.py.
        return ""

    def _map_serializer(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictFieldsMixin):
            schema["additionalProperties"] = False
        return schema

    def _accepts_idempotency_key(self) -> bool:
        return accepts_idempotency_key(getattr(self.view, self.method.lower(), None))

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._accepts_idempotency_key():
            parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        return parameters

    def _error_codes(self) -> dict[str, list[api_errors.ErrorCode]]:
        """The codes this operation can answer, by HTTP status."""
        codes: list[api_errors.ErrorCode] = []
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_query = bool(self._get_filter_parameters() or self.get_override_parameters())
        if has_body:
            codes += [api_errors.MALFORMED, self._validation_example()]
        elif has_query or self._is_list_view():
            codes.append(self._query_validation_example())
        open_to_anyone = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not open_to_anyone or self.view.get_authenticators():
            # Credentials that are sent are checked even where none are required.
            if not open_to_anyone:
                codes.append(api_errors.NOT_AUTHENTICATED)
            codes += [api_errors.TOKEN_INVALID, api_errors.TOKEN_EXPIRED, api_errors.TOKEN_REVOKED]
        if not open_to_anyone:
            operators_only = any(
                isinstance(p, IsOperator)
                and (self.method not in SAFE_METHODS or not isinstance(p, IsOperatorOrReadOnly))
                for p in self.view.get_permissions()
            )
            codes += [
                api_errors.OPERATORS_ONLY if operators_only else api_errors.PERMISSION_DENIED,
                api_errors.TOKEN_SCOPE,
            ]
        if "{" in self.path:
            codes.append(api_errors.NOT_FOUND)
        if self._is_list_view():
            codes.append(api_errors.INVALID_PAGE)
        keyed = self._accepts_idempotency_key()
        if keyed:
            codes += [
                api_errors.IDEMPOTENCY_KEY_INVALID,
                api_errors.IDEMPOTENCY_KEY_IN_USE,
                api_errors.IDEMPOTENCY_KEY_REUSED,
            ]
        codes += [api_errors.THROTTLED, api_errors.UNAVAILABLE]
        specific = api_errors.OPERATION_ERRORS.get(self.get_operation_id(), ())
        # A code the operation names replaces the shared example of that code.
        named = {(error.status, error.code) for error in specific}
        codes = [error for error in codes if (error.status, error.code) not in named]
        by_status: dict[str, list[api_errors.ErrorCode]] = {}
        for error in [*codes, *specific]:
            by_status.setdefault(str(error.status), []).append(error)
        return by_status

    def _validation_example(self) -> api_errors.ErrorCode:
        """A field this body requires, left out; or, where none is required, an unknown one."""
        serializer = self.get_request_serializer()
        if isinstance(serializer, type):
            serializer = serializer()
        fields = getattr(serializer, "fields", {}) if self.method != "PATCH" else {}
        for name, serializer_field in fields.items():
            if serializer_field.required and not serializer_field.read_only:
                return api_errors.validation_error(
                    f"`{name}` left out",
                    api_errors.field_error(name, "required", api_errors.REQUIRED),
                )
        return api_errors.UNKNOWN_FIELD

    def _query_validation_example(self) -> api_errors.ErrorCode:
        names = {parameter.name for parameter in self.get_override_parameters()
                 if hasattr(parameter, "name")}  # fmt: skip
        if "start" in names:
            return api_errors.DAY_OUT_OF_RANGE
        return api_errors.BAD_PAGE_SIZE

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = self._shared_response_bodies(direction)
        codes = self._error_codes()
        for status_code in [code for code in responses if code >= "4"]:
            if status_code not in codes:
                # documented only where the operation can answer it
                del responses[status_code]
        for status_code, listed in codes.items():
            if status_code not in responses:
                error_class = ValidationErrorSerializer if status_code == "400" else ErrorSerializer
                responses[status_code] = self._get_response_for_code(
                    _error(_DESCRIPTIONS.get(status_code, "Refused."), error_class),
                    status_code,
                    direction=direction,
                )
            _document_codes(responses[status_code], listed)
        return responses

    def _shared_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        errors: dict[str, OpenApiResponse] = {}
        keyed = self._accepts_idempotency_key()
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_query = bool(self._get_filter_parameters() or self.get_override_parameters())
        if has_body or has_query or self._is_list_view():
            errors["400"] = _error(
                "Malformed JSON (`malformed_request`), a body too deep, or invalid fields or "
                "query parameters (`validation_error`, with `fields`)"
                + (
                    ", or a malformed Idempotency-Key (`idempotency_key_invalid`)."
                    if keyed
                    else "."
                ),
                ValidationErrorSerializer,
                examples=(
                    {
                        "IdempotencyKeyInvalid": (
                            IdempotencyKeyInvalid.code,
                            _message(IdempotencyKeyInvalid),
                        )
                    }
                    if keyed
                    else None
                ),
                status_code="400",
            )
        open_to_anyone = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not open_to_anyone or self.view.get_authenticators():
            # Credentials that are sent are checked even where none are required.
            errors["401"] = _error(
                "Missing, invalid, expired or revoked credentials (`not_authenticated`, "
                "`token_invalid`, `token_expired`, `token_revoked`)."
            )
        if not open_to_anyone:
            errors["403"] = _error(
                "Authenticated but not allowed (`permission_denied`, `token_scope`)."
            )
        page_error = (
            "a cursor the API did not give (`not_found`, `Invalid cursor`)"
            if isinstance(self._get_paginator(), CursorPagination)
            else "a page past the last (`not_found`, `Invalid page.`)"
        )
        if "{" in self.path and self._is_list_view():
            errors["404"] = _error(f"No such object, or not visible to you; or {page_error}.")
        elif "{" in self.path:
            errors["404"] = _error("No such object, or not visible to you (`not_found`).")
        elif self._is_list_view():
            errors["404"] = _error(f"{page_error[0].upper()}{page_error[1:]}.")
        if self.method in ("POST", "PATCH", "DELETE"):
            errors["409"] = _error(
                "Refused by the current state (`invalid_transition`, `already_member`, …)."
                + (
                    " Or a request with the same Idempotency-Key is still being answered "
                    "(`idempotency_key_in_use`): retry after Retry-After seconds."
                    if keyed
                    else ""
                ),
                examples=(
                    {
                        "IdempotencyKeyInUse": (
                            IdempotencyKeyInUse.code,
                            _message(IdempotencyKeyInUse),
                        )
                    }
                    if keyed
                    else None
                ),
                status_code="409",
            )
        if keyed:
            errors["422"] = _error(
                "The Idempotency-Key was used for another request: another path or body "
                "(`idempotency_key_reused`).",
                examples={
                    "IdempotencyKeyReused": (
                        IdempotencyKeyReused.code,
                        _message(IdempotencyKeyReused),
                    )
                },
                status_code="422",
            )
        errors["429"] = _error("Too many requests for this token (`throttled`); see Retry-After.")
        errors["503"] = _error(
            "The database or the broker is away for a moment (`unavailable`): try again after "
            "Retry-After seconds (a write with the same `Idempotency-Key`).",
            examples={"Unavailable": ("unavailable", UNAVAILABLE_MESSAGE)},
            status_code="503",
        )
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        if keyed:
            for code, response in responses.items():
                if code.startswith("2"):
                    response.setdefault("headers", {})[REPLAYED_HEADER] = {
                        "description": (
                            "`true` when this is the kept answer of an earlier request with "
                            "the same Idempotency-Key (nothing was done again)."
                        ),
                        "required": False,
                        "schema": {"type": "string", "enum": ["true"]},
                    }
        for code in (["409"] if keyed else []) + ["429", "503"]:
            if code in responses:
                responses[code].setdefault("headers", {})["Retry-After"] = {
                    "description": "Seconds to wait before trying again.",
                    "required": code == "503",
                    "schema": {"type": "integer", "minimum": 0},
                }
        return responses


_DESCRIPTIONS = {
    "400": "The request is malformed or has invalid fields.",
    "401": "Missing, invalid, expired or revoked credentials.",
    "403": "Authenticated but not allowed.",
    "404": "No such object, or not visible to you.",
    "409": "Refused by the object's current state.",
    "422": "The Idempotency-Key was used for another request.",
    "429": "Too many requests; see `Retry-After`.",
    "503": "The database or the broker is away for a moment; try again after `Retry-After`.",
}


def _document_codes(response: dict[str, Any], codes: list[api_errors.ErrorCode]) -> None:
    """Name the codes in the description and give one example per code (and per case)."""
    media = response.get("content", {}).get("application/json")
    if media is None:
        return
    examples: dict[str, Any] = {}
    for error in codes:
        key = error.code
        number = 2
        while key in examples:
            key, number = f"{error.code}_{number}", number + 1
        examples[key] = {"summary": error.summary, "value": error.body()}
    media["examples"] = examples
    listed = ", ".join(f"`{code}`" for code in dict.fromkeys(error.code for error in codes))
    status_code = str(codes[0].status)
    response["description"] = f"{_DESCRIPTIONS.get(status_code, 'Refused.')} Codes: {listed}."
