"""`Authorization: Bearer <token>` with the portal's personal access tokens."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import AccessToken, User
from accounts.services import token_digest, token_touch
from portal.i18n import activate_user_language


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, AccessToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be `Bearer <token>`.", code="token_invalid"
            )
        try:
            secret = header[1].decode()
        except UnicodeError as error:
            raise exceptions.AuthenticationFailed(
                "The token is not valid.", code="token_invalid"
            ) from error
        token = (
            AccessToken.objects.select_related("user").filter(digest=token_digest(secret)).first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token is not valid.", code="token_invalid")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The token was revoked.", code="token_revoked")
        if token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("The token has expired.", code="token_expired")
        token_touch(token=token)
        # Client tools get the API's messages in the person's chosen language too.
        activate_user_language(request._request, token.user)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token from `POST /api/v1/auth/token/`.",
        }
