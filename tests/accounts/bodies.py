"""Expected API bodies of the accounts app (tokens, organizations, members, me), built from
the rows themselves; what every answer shares is in `tests/bodies.py`."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import AccessToken, Membership, Organization, User
from tests.bodies import audit_rows as _audit_rows
from tests.bodies import when

NOT_AN_ADMIN = {
    "code": "permission_denied",
    "message": "Only the organization's admins may do this.",
}


def token_body(token: AccessToken) -> dict[str, Any]:
    token.refresh_from_db()
    return {
        "id": str(token.pk),
        "name": token.name,
        "prefix": token.prefix,
        "scope": token.scope,
        "created_at": when(token.created_at),
        "expires_at": when(token.expires_at),
        "last_used_at": when(token.last_used_at),
        "revoked_at": when(token.revoked_at),
        "is_active": token.revoked_at is None and token.expires_at > timezone.now(),
    }


def organization_body(organization: Organization) -> dict[str, Any]:
    organization.refresh_from_db()
    return {
        "id": str(organization.pk),
        "name": organization.name,
        "kind": organization.kind,
        "country": organization.country.code,
        "registry_number": organization.registry_number,
        "is_verified": organization.verified_at is not None,
        "verified_at": when(organization.verified_at),
        "created_at": when(organization.created_at),
    }


def member_body(membership: Membership) -> dict[str, Any]:
    membership.refresh_from_db()
    return {
        "user": str(membership.user_id),
        "email": membership.user.email,
        "full_name": membership.user.full_name,
        "role": membership.role,
        "joined_at": when(membership.created_at),
    }


def me_body(user: User) -> dict[str, Any]:
    memberships = Membership.objects.filter(user=user).order_by("organization__name")
    return {
        "id": str(user.pk),
        "email": user.email,
        "full_name": user.full_name,
        "is_operator": user.is_staff,
        "memberships": [
            {"organization": organization_body(m.organization), "role": m.role} for m in memberships
        ],
    }


def audit_rows(**filters: Any) -> list[dict[str, Any]]:
    """The audit events, oldest first, with the target's name and the reasons that the
    accounts' events also record."""
    return _audit_rows(("target_repr", "reasons"), **filters)
