"""Fixtures of the accounts tests: bearer credentials, row counts, an unverified organization."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.models import (
    AccessToken,
    Invitation,
    Membership,
    Organization,
    TokenScope,
    User,
)
from accounts.services import token_create
from audit.models import AuditEvent


@pytest.fixture
def bearer() -> Callable[..., dict[str, str]]:
    """Issue a token for a user and give the request header that carries it."""

    def make(user: User, scope: str = TokenScope.FULL) -> dict[str, str]:
        issued = token_create(user=user, name=f"{scope} token", scope=scope)
        return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    return make


@pytest.fixture
def counts() -> Callable[[], dict[str, int]]:
    """The row counts a failed request must leave as they were."""

    def count() -> dict[str, int]:
        return {
            "users": User.objects.count(),
            "organizations": Organization.objects.count(),
            "verified": Organization.objects.filter(verified_at__isnull=False).count(),
            "memberships": Membership.objects.count(),
            "admins": Membership.objects.filter(role="admin").count(),
            "tokens": AccessToken.objects.count(),
            "revoked": AccessToken.objects.filter(revoked_at__isnull=False).count(),
            "audit_events": AuditEvent.objects.count(),
            "invitations": Invitation.objects.count(),
        }

    return count


@pytest.fixture
def unverified(organization: Organization) -> Organization:
    """The shared organization before an operator has verified it."""
    Organization.objects.filter(pk=organization.pk).update(verified_at=None)
    organization.refresh_from_db()
    return organization
