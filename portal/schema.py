"""OpenAPI: every operation documents the portal's error bodies beside its success."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

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


class PortalAutoSchema(AutoSchema):
    """Adds the error responses a client must handle to every operation, and documents
    request bodies as closed: the API refuses fields it does not know."""

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

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
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
        if "{" in self.path and self._is_list_view():
            errors["404"] = _error(
                "No such object, or not visible to you; or a page past the last "
                "(`not_found`, `Invalid page.`)."
            )
        elif "{" in self.path:
            errors["404"] = _error("No such object, or not visible to you (`not_found`).")
        elif self._is_list_view():
            errors["404"] = _error("A page past the last (`not_found`, `Invalid page.`).")
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
