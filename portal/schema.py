"""OpenAPI: every operation documents the portal's error bodies beside its success."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from portal.serializers import StrictFieldsMixin


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


def _error(description: str, serializer: Any = ErrorSerializer) -> OpenApiResponse:
    return OpenApiResponse(response=serializer, description=description)


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

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        errors: dict[str, OpenApiResponse] = {}
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_query = bool(self._get_filter_parameters() or self.get_override_parameters())
        if has_body or has_query or self._is_list_view():
            errors["400"] = _error(
                "Malformed JSON (`malformed_request`), a body too deep, or invalid fields or "
                "query parameters (`validation_error`, with `fields`).",
                ValidationErrorSerializer,
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
            )
        errors["429"] = _error("Too many requests for this token (`throttled`); see Retry-After.")
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses
