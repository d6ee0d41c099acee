"""OpenID Connect sign-in for people.

Only people sign in this way; the API's client tools keep their tokens. Signing in grants
nothing by itself: operators are made staff by an operator, members join organizations by
accepting an invitation.

Who a sign-in is:
- The provider must say the email is verified, in so many words (`email_verified` true): a
  missing claim refuses sign-in, since a provider that does not vouch for an address would
  let anyone claim anyone's.
- A user is found by the provider's subject (`sub`) once it is stored (`OidcIdentity`), and
  only by it: a later change of address at the provider still finds them, and an address
  alone never reaches a linked account.
- The first sign-in of a subject links an existing account with that verified email, at
  most once (the subject is stored; another subject claiming the address later is refused)
  and never a staff account: operators sign in with their password, so an email at the
  provider cannot take over an operator. Nor a scheduler service account: it has no
  sign-in at all, only the tokens an operator issues it.
- No account with that email: one is made, without a password, and linked.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.models import OidcIdentity, User
from audit.services import audit_record

logger = logging.getLogger(__name__)


def _email_verified(claims: dict[str, Any]) -> bool:
    # Some providers send the boolean as a string.
    verified = claims.get("email_verified")
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """A subject, an email, and the provider's word that the email is verified."""
        return bool(claims.get("sub")) and bool(claims.get("email")) and _email_verified(claims)

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        """The user linked to the claims' subject, if any (never by email)."""
        return User.objects.filter(oidc_identity__subject=str(claims.get("sub", "")))

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            raise SuspiciousOperation("The provider did not vouch for a verified email.")
        subject = str(claims["sub"])
        if payload.get("sub") is not None and str(payload["sub"]) != subject:
            raise SuspiciousOperation("The userinfo is of another subject than the ID token.")
        linked = self.filter_users_by_claims(claims).first()
        if linked is not None:
            if not linked.is_active:
                raise SuspiciousOperation("The account is deactivated.")
            return self.update_user(linked, claims)
        try:
            with transaction.atomic():
                return self._link_or_create(subject, claims)
        except IntegrityError as error:
            # The same subject or account linked by a sign-in at the same moment.
            raise SuspiciousOperation("The account was linked meanwhile.") from error

    def _link_or_create(self, subject: str, claims: dict[str, Any]) -> User:
        email = str(claims["email"]).lower()
        existing = User.objects.select_for_update().filter(email__iexact=email).first()
        if existing is None:
            user = self.create_user(claims)
            verb = "user.oidc_create"
        elif existing.is_staff or existing.is_superuser:
            raise SuspiciousOperation("A staff account is never linked by its email.")
        elif existing.is_scheduler:
            raise SuspiciousOperation("A scheduler service account never signs in.")
        elif not existing.is_active:
            raise SuspiciousOperation("The account is deactivated.")
        elif OidcIdentity.objects.filter(user=existing).exists():
            raise SuspiciousOperation("The account is linked to another subject already.")
        else:
            user = self.update_user(existing, claims)
            verb = "user.oidc_link"
        OidcIdentity.objects.create(user=user, subject=subject)
        audit_record(actor=user, verb=verb, target=user, after={"subject": subject})
        return user

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
