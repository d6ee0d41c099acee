"""Expected API bodies and audit rows of the accounts app, built from the rows themselves
(never from the serializers under test)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from accounts.models import AccessToken, AuditEvent, Membership, Organization, User

NOT_FOUND = {"code": "not_found", "message": "Not found."}
NOT_AUTHENTICATED = {
    "code": "not_authenticated",
    "message": "Authentication credentials were not provided.",
}
TOKEN_SCOPE = {
    "code": "token_scope",
    "message": "This token's scope does not allow this request.",
}
NOT_AN_OPERATOR = {"code": "permission_denied", "message": "Only operators may do this."}
NOT_AN_ADMIN = {
    "code": "permission_denied",
    "message": "Only the organization's admins may do this.",
}
INVALID_PAGE = {"code": "not_found", "message": "Invalid page."}
MALFORMED_JSON = {
    "code": "malformed_request",
    "message": (
        "JSON parse error - Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    ),
}
BEARER_CHALLENGE = 'Bearer realm="api"'


def when(value: datetime | None) -> str | None:
    """A datetime as the API writes it: ISO 8601 in the portal's time zone."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def audit_when(value: datetime | None) -> str | None:
    """A datetime as the audit trail stores it in JSON (milliseconds, UTC as `Z`)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def invalid(fields: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    return {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": {
            name: [{"code": code, "message": message} for code, message in errors]
            for name, errors in fields.items()
        },
    }


def page(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One page holding every result."""
    return {"count": len(results), "next": None, "previous": None, "results": results}


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
    """The audit events, oldest first, as plain values."""
    return [
        {
            "verb": event.verb,
            "actor": event.actor_id,
            "target": (event.target_type.model, event.target_id),
            "target_repr": event.target_repr,
            "before": event.before,
            "after": event.after,
            "reasons": event.reasons,
        }
        for event in AuditEvent.objects.filter(**filters).order_by("created_at", "id")
    ]
