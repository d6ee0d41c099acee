"""OpenID Connect sign-in for people: a verified email finds (or makes) the user.

Only people sign in this way; the API's client tools keep their tokens. Signing in grants
nothing by itself: operators are made staff by an operator, members join organizations
through their admins.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.models import User


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """A person with an email the provider has verified (when it says so)."""
        return bool(claims.get("email")) and claims.get("email_verified", True) is not False

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        return User.objects.filter(email__iexact=claims.get("email", ""), is_active=True)

    def create_user(self, claims: dict[str, Any]) -> User:
        name = claims.get("name") or " ".join(
            part for part in (claims.get("given_name"), claims.get("family_name")) if part
        )
        return User.objects.create_user(claims["email"].lower(), None, full_name=name)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        name = claims.get("name")
        if name and name != user.full_name:
            user.full_name = name
            user.save(update_fields=["full_name"])
        return user
