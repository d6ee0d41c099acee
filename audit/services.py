"""The audit trail: every service records its state change here, in its own transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.models import User
from audit.models import AuditEvent

if TYPE_CHECKING:
    from accounts.authz import SystemActor


class _AuditEncoder(DjangoJSONEncoder):
    """Django's encoder, and plain text for values it does not know (a Country, say)."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def snapshot(instance: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON-safe values of a row's concrete fields (foreign keys as ids)."""
    names = (
        list(fields)
        if fields is not None
        else [f.attname for f in instance._meta.concrete_fields if not f.primary_key]
    )
    values = {name: getattr(instance, name) for name in names}
    return dict(json.loads(json.dumps(values, cls=_AuditEncoder)))


class AuditChange(TypedDict):
    """What an audit event records: who did what to which row; `before`, `after` (snapshots)
    and `reasons` are empty unless given."""

    actor: User | SystemActor | None
    verb: str
    target: models.Model
    before: NotRequired[Mapping[str, Any] | None]
    after: NotRequired[Mapping[str, Any] | None]
    reasons: NotRequired[list[dict[str, Any]] | None]


def audit_event(*, created_at: datetime | None = None, **change: Unpack[AuditChange]) -> AuditEvent:
    """One audit event, not saved yet: `audit_record` saves it at once, a service that
    records many changes in one transaction (an admission cycle) saves them together with
    `audit_record_many`. `created_at` orders events of one statement: by default, now."""
    actor, target = change["actor"], change["target"]
    event = AuditEvent(
        actor=actor if isinstance(actor, User) and actor.is_authenticated else None,
        verb=change["verb"],
        target_type=ContentType.objects.get_for_model(target),
        target_id=target.pk,
        target_repr=str(target)[:300],
        before=dict(change.get("before") or {}),
        after=dict(change.get("after") or {}),
        reasons=list(change.get("reasons") or []),
    )
    if created_at is not None:
        event.created_at = created_at
    return event


def audit_record(**change: Unpack[AuditChange]) -> AuditEvent:
    """Append one audit event. Call inside the transaction of the change it records. The
    system (and no one) is recorded as no actor."""
    event = audit_event(**change)
    event.save(force_insert=True)
    return event


def audit_record_many(events: Sequence[AuditEvent]) -> None:
    """Append events made by `audit_event`, in one INSERT. Call inside the transaction of
    the changes they record."""
    if events:
        AuditEvent.objects.bulk_create(events)
