"""What every API answer shares, built from the rows themselves (never from the serializers
under test): the error bodies, pages, datetimes, decimals and audit rows as the API writes them.

The bodies of each app's own resources are next to its tests: `tests/accounts/bodies.py`
(tokens, organizations, members), `tests/allocations/bodies.py` (the inventory, programs) and
`tests/decisions/bodies.py` (applications, allocations, their audit trail)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from audit.models import AuditEvent

NOT_FOUND = {"code": "not_found", "message": "Not found."}
INVALID_PAGE = {"code": "not_found", "message": "Invalid page."}
NOT_AUTHENTICATED = {
    "code": "not_authenticated",
    "message": "Authentication credentials were not provided.",
}
TOKEN_SCOPE = {
    "code": "token_scope",
    "message": "This token's scope does not allow this request.",
}
NOT_AN_OPERATOR = {"code": "permission_denied", "message": "Only operators may do this."}
MALFORMED_JSON = {
    "code": "malformed_request",
    "message": (
        "JSON parse error - Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    ),
}
BEARER_CHALLENGE = 'Bearer realm="api"'
REQUIRED = ("required", "This field is required.")


def when(value: datetime | None) -> str | None:
    """A datetime as the API writes it: ISO 8601 in the portal's time zone."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def audit_when(value: datetime | None) -> str | None:
    """A datetime as the audit trail stores it in JSON (milliseconds, UTC as `Z`)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def fixed(value: Decimal, places: int) -> str:
    """A decimal as the API writes it: a string with the column's decimal places."""
    return f"{value:.{places}f}"


def invalid(fields: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    return {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": {
            name: [{"code": code, "message": message} for code, message in errors]
            for name, errors in fields.items()
        },
    }


def does_not_exist(pk: object) -> tuple[str, str]:
    return ("does_not_exist", f'Invalid pk "{pk}" - object does not exist.')


def page(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One page holding every result."""
    return {"count": len(results), "next": None, "previous": None, "results": results}


def keyset_page(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole list in one page of a cursor-paginated list (no count)."""
    return {"next": None, "previous": None, "results": results}


def audit_rows(extra: tuple[str, ...] = (), **filters: Any) -> list[dict[str, Any]]:
    """The audit events, oldest first, as plain values; `extra` names more of their columns."""
    return [
        {
            "verb": event.verb,
            "actor": event.actor_id,
            "target": (event.target_type.model, event.target_id),
            "before": event.before,
            "after": event.after,
            **{name: getattr(event, name) for name in extra},
        }
        for event in AuditEvent.objects.filter(**filters).order_by("created_at", "id")
    ]
