"""The audit trail: every service records its state change here, in its own transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

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


def audit_event(
    *,
    actor: User | SystemActor | None,
    verb: str,
    target: models.Model,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reasons: list[dict[str, Any]] | None = None,
    created_at: datetime | None = None,
) -> AuditEvent:
    """One audit event, not saved yet: `audit_record` saves it at once, a service that
    records many changes in one transaction (an admission cycle) saves them together with
    `audit_record_many`. `created_at` orders events of one statement: by default, now."""
    event = AuditEvent(
        actor=actor if isinstance(actor, User) and actor.is_authenticated else None,
        verb=verb,
        target_type=ContentType.objects.get_for_model(target),
        target_id=target.pk,
        target_repr=str(target)[:300],
        before=dict(before or {}),
        after=dict(after or {}),
        reasons=list(reasons or []),
    )
    if created_at is not None:
        event.created_at = created_at
    return event


def audit_record(
    *,
    actor: User | SystemActor | None,
    verb: str,
    target: models.Model,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reasons: list[dict[str, Any]] | None = None,
) -> AuditEvent:
    """Append one audit event. Call inside the transaction of the change it records. The
    system (and no one) is recorded as no actor."""
    event = audit_event(
        actor=actor, verb=verb, target=target, before=before, after=after, reasons=reasons
    )
    event.save(force_insert=True)
    return event


def audit_record_many(events: Sequence[AuditEvent]) -> None:
    """Append events made by `audit_event`, in one INSERT. Call inside the transaction of
    the changes they record."""
    if events:
        AuditEvent.objects.bulk_create(events)
