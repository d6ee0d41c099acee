"""Allocations: granted by an approval, changed by supplements and extensions, released
early, moved through their statuses by the daily beat."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import authz
from accounts.audit import audit_record, snapshot
from accounts.authz import Actor
from allocations import effects, locks
from allocations.models import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationKind,
    ApplicationStatus,
    BackendCall,
    QuotaUsage,
)
from allocations.models.demand import lineage_key
from allocations.services import ledger
from allocations.services.usage import backend_request, usage_regrant
from portal.errors import InvalidTransition

LIVE = (AllocationStatus.SCHEDULED, AllocationStatus.ACTIVE, AllocationStatus.EXHAUSTED)
TRACKED = ("status", "granted_gpu_hours", "start_date", "end_date", "released_from")


def _status_on(start: date, today: date) -> str:
    return AllocationStatus.ACTIVE if start <= today else AllocationStatus.SCHEDULED


def allocation_new(*, application: Application, today: date) -> Allocation:
    """The allocation a new application's approval makes, not saved yet: `allocation_grant`
    saves one, an admission cycle saves all of its own in one INSERT."""
    return Allocation(
        application=application,
        organization_id=application.organization_id,
        program_id=application.program_id,
        pool_id=application.pool_id,
        start_date=application.start_date,
        end_date=application.end_date,
        granted_gpu_hours=application.gpu_hours,
        model_lineage=application.model_lineage,
        lineage_key=lineage_key(application.model_lineage),
        status=_status_on(application.start_date, today),
    )


def allocation_grant(*, application: Application, actor: Actor) -> Allocation:
    """Make or change the allocation of an approved application. Call inside the approving
    transaction (its ledger rows are committed there): a new application makes an
    allocation, a supplement adds GPU-hours, an extension adds GPU-hours and days."""
    today = timezone.localdate()
    if application.kind == ApplicationKind.NEW:
        allocation = allocation_new(application=application, today=today)
        allocation.save(force_insert=True)
        audit_record(
            actor=actor,
            verb="allocation.create",
            target=allocation,
            after=snapshot(allocation, TRACKED),
        )
        backend_request(allocation=allocation, action=BackendCall.Action.CREATE_ACCOUNT)
        return allocation
    assert application.allocation_id is not None
    allocation = locks.lock_allocation(allocation_id=application.allocation_id)
    before = snapshot(allocation, TRACKED)
    allocation.granted_gpu_hours += application.gpu_hours
    if application.kind == ApplicationKind.EXTENSION:
        allocation.end_date = max(allocation.end_date, application.end_date)
    # Thresholds and exhaustion are measured against the grant as it is now.
    action = usage_regrant(allocation=allocation, today=today)
    allocation.save(update_fields=["granted_gpu_hours", "end_date", "status", "notified_percent"])
    audit_record(
        actor=actor,
        verb=f"allocation.{application.kind}",
        target=allocation,
        before=before,
        after=snapshot(allocation, TRACKED),
    )
    backend_request(allocation=allocation, action=action)
    return allocation


def _grants(allocation: Allocation) -> list[Application]:
    """The approved applications whose GPU-hours the allocation holds."""
    changes = Application.objects.filter(
        allocation=allocation, status=ApplicationStatus.APPROVED
    ).select_related("pool__site", "pool__accelerator")
    return [allocation.application, *changes]


def allocation_release(*, allocation: Allocation, actor: Actor) -> Allocation:
    """Give the allocation's future days back to the ledger (from tomorrow, or all of them
    if it has not started) and lower its grant by as much. Queues the pool's waitlist.
    Its organization's admins, or operators granted the change of allocations.

    Locks: the quota row, the pool-days and site-days of the released days, the allocation.
    """
    authz.require_releaser(actor=actor, allocation=allocation)
    today = timezone.localdate()
    allocation = Allocation.objects.select_related(
        "pool__site", "pool__accelerator", "program", "application"
    ).get(pk=allocation.pk)
    _check_releasable(allocation)
    first = max(today + timedelta(days=1), allocation.start_date)
    if first > allocation.end_date:
        raise InvalidTransition(_("The allocation has no future days left to release."))
    pool = allocation.pool
    locks.ensure_ledger_rows(pool=pool, start=first, end=allocation.end_date)
    with transaction.atomic():
        quota = locks.lock_quota(
            organization_id=allocation.organization_id, program_id=allocation.program_id
        )
        moved_from = pool.site_id
        pool = locks.lock_pool_shared(pool_id=pool.pk)
        if pool.site_id != moved_from:
            locks.ensure_site_days(site=pool.site, start=first, end=allocation.end_date)
        pool_days = locks.lock_pool_days(pool=pool, start=first, end=allocation.end_date)
        site_days = locks.lock_site_days(site=pool.site, start=first, end=allocation.end_date)
        current = locks.lock_allocation(allocation_id=allocation.pk)
        _check_releasable(current)
        before = snapshot(current, TRACKED)
        freed = 0
        for grant in _grants(current):
            shares = ledger.daily_shares(
                gpu_hours=grant.gpu_hours, start=grant.start_date, end=grant.end_date
            )
            offset = max((first - grant.start_date).days, 0)
            future = shares[offset:]
            if not future:
                continue
            begin = grant.start_date + timedelta(days=offset)
            index = (begin - first).days
            ledger.ledger_apply(
                pool=pool,
                program=current.program,
                start=begin,
                shares=future,
                pool_days=pool_days[index : index + len(future)],
                site_days=site_days[index : index + len(future)],
                add_to=None,
                take_from="committed",
                energy_per_gpu_hour=ledger.reserved_rate(grant),
            )
            freed += sum(future)
        current.granted_gpu_hours -= freed
        current.released_from = first
        if first == current.start_date:
            current.status = AllocationStatus.RELEASED
        else:
            current.end_date = first - timedelta(days=1)
        current.save(update_fields=["granted_gpu_hours", "released_from", "status", "end_date"])
        QuotaUsage.objects.filter(pk=quota.pk).update(held_gpu_hours=quota.held_gpu_hours - freed)
        audit_record(
            actor=actor,
            verb="allocation.release",
            target=current,
            before=before,
            after={**snapshot(current, TRACKED), "freed_gpu_hours": freed},
        )
        # The scheduler's limit falls with the grant; a release before the first day stops
        # the account's GPU jobs altogether.
        backend_request(
            allocation=current,
            action=BackendCall.Action.SUSPEND
            if current.status == AllocationStatus.RELEASED
            else BackendCall.Action.SET_LIMIT,
        )
        effects.recheck_waitlist(pool_id=pool.pk)
    return current


def _check_releasable(allocation: Allocation) -> None:
    if allocation.status not in LIVE:
        raise InvalidTransition(
            _("The allocation is %(status)s: it cannot be released.")
            % {"status": allocation.status}
        )
    if allocation.released_from is not None:
        raise InvalidTransition(
            _("The allocation was released from %(day)s already.")
            % {"day": allocation.released_from}
        )


def allocation_advance(*, today: date | None = None) -> dict[str, int]:
    """The daily beat: `scheduled` → `active` on the first day; `active`, `exhausted` and
    `suspended` → `expired` after the last, giving the quota back; a notice to the
    organization seven days before the last day. Idempotent."""
    today = today or timezone.localdate()
    started = 0
    for allocation_id in Allocation.objects.filter(
        status=AllocationStatus.SCHEDULED, start_date__lte=today
    ).values_list("pk", flat=True):
        started += _move(allocation_id, AllocationStatus.SCHEDULED, AllocationStatus.ACTIVE)
    expired = 0
    ending = (
        AllocationStatus.ACTIVE,
        AllocationStatus.EXHAUSTED,
        AllocationStatus.SUSPENDED,
        AllocationStatus.SCHEDULED,
    )
    for allocation_id in Allocation.objects.filter(
        status__in=ending, end_date__lt=today
    ).values_list("pk", flat=True):
        expired += _expire(allocation_id)
    warned = 0
    for allocation_id in Allocation.objects.filter(
        status__in=LIVE, expiry_notified=False, end_date__lte=today + timedelta(days=7)
    ).values_list("pk", flat=True):
        warned += _warn_expiry(allocation_id)
    return {"started": started, "expired": expired, "warned": warned}


def _warn_expiry(allocation_id: Any) -> int:
    """Tell the organization once, seven days before the allocation's last day."""
    with transaction.atomic():
        allocation = locks.lock_allocation(allocation_id=allocation_id)
        if allocation.expiry_notified:
            return 0
        allocation.expiry_notified = True
        allocation.save(update_fields=["expiry_notified"])
        effects.notify_allocation_expiring(allocation_id=allocation.pk)
    return 1


def _move(allocation_id: Any, source: str, target: str) -> int:
    with transaction.atomic():
        allocation = locks.lock_allocation(allocation_id=allocation_id)
        if allocation.status != source:
            return 0
        allocation.status = target
        allocation.save(update_fields=["status"])
        audit_record(
            actor=None,
            verb=f"allocation.{target}",
            target=allocation,
            before={"status": source},
            after={"status": target},
        )
        # Its first day: GPU jobs may start on the scheduler from now on.
        backend_request(allocation=allocation, action=BackendCall.Action.RESUME)
    return 1


def _expire(allocation_id: Any) -> int:
    allocation = Allocation.objects.get(pk=allocation_id)
    with transaction.atomic():
        quota = locks.lock_quota(
            organization_id=allocation.organization_id, program_id=allocation.program_id
        )
        current = locks.lock_allocation(allocation_id=allocation_id)
        if current.status in (
            AllocationStatus.EXPIRED,
            AllocationStatus.RELEASED,
            AllocationStatus.REVOKED,
        ):
            return 0
        before = {"status": current.status}
        current.status = AllocationStatus.EXPIRED
        current.save(update_fields=["status"])
        QuotaUsage.objects.filter(pk=quota.pk).update(
            held_gpu_hours=quota.held_gpu_hours - current.granted_gpu_hours
        )
        audit_record(
            actor=None,
            verb="allocation.expired",
            target=current,
            before=before,
            after={"status": current.status},
        )
        # Past its last day no new GPU job may start on the scheduler.
        backend_request(allocation=current, action=BackendCall.Action.SUSPEND)
    return 1
