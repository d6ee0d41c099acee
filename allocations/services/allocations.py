"""Allocations: granted by an approval, changed by supplements and extensions, released
early, moved through their statuses by the daily beat."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import authz
from accounts.authz import Actor
from allocations import effects, locks
from allocations.lifecycle import ALLOCATION, LIVE_ALLOCATION
from allocations.models import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationKind,
    ApplicationStatus,
    BackendCall,
    GpuPool,
    PoolDay,
    QuotaUsage,
    SiteDay,
)
from allocations.models.demand import lineage_key
from allocations.reasons import reason, text
from allocations.services import ledger
from allocations.services.scheduler import backend_request
from allocations.services.usage import usage_regrant, used_percent
from audit.services import audit_record, snapshot
from portal.errors import InvalidTransition

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
    action = usage_regrant(allocation=allocation)
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
    allocation = _load(allocation)
    _check_releasable(allocation)
    first = _first_future_day(allocation)
    if first > allocation.end_date:
        raise InvalidTransition(_("The allocation has no future days left to release."))
    with _ending(allocation, first) as ending:
        current = ending.allocation
        _check_releasable(current)
        freed = ending.give_back()
        if first == current.start_date:
            ALLOCATION.move(current, AllocationStatus.RELEASED)
        ending.record(actor=actor, verb="allocation.release", quota_freed=freed, freed=freed)
        # The scheduler's limit falls with the grant; a release before the first day stops
        # the account's GPU jobs altogether.
        backend_request(
            allocation=current,
            action=BackendCall.Action.SUSPEND
            if current.status == AllocationStatus.RELEASED
            else BackendCall.Action.SET_LIMIT,
        )
        effects.recheck_waitlist(pool_id=current.pool_id)
    return current


def allocation_revoke(*, allocation: Allocation, actor: Actor, note: str = "") -> Allocation:
    """An operator ends an allocation for good (a breach of the terms, an organization that
    lost its eligibility): its future days go back to the ledger (from tomorrow, or all of
    them if it has not started), its hours leave the quota as at expiry, and the scheduler
    stops its jobs. Final: it takes no usage after its grace and is never resumed. Queues
    the pool's waitlist. Operators only; any status but a final one.

    Locks: as `allocation_release`.
    """
    authz.require_operator(actor=actor)
    allocation = _load(allocation)
    ALLOCATION.refuse(allocation.status, AllocationStatus.REVOKED)
    with _ending(allocation, _first_future_day(allocation)) as ending:
        current = ending.allocation
        ALLOCATION.refuse(current.status, AllocationStatus.REVOKED)
        granted = current.granted_gpu_hours
        freed = ending.give_back()
        ALLOCATION.move(current, AllocationStatus.REVOKED)
        ending.record(
            actor=actor,
            verb="allocation.revoke",
            quota_freed=granted,
            freed=freed,
            reasons=[reason("revoked_by_operator", note or text("revoked_by_operator"))],
        )
        backend_request(allocation=current, action=BackendCall.Action.SUSPEND)
        if freed:
            effects.recheck_waitlist(pool_id=current.pool_id)
    return current


def _load(allocation: Allocation) -> Allocation:
    return Allocation.objects.select_related(
        "pool__site", "pool__accelerator", "program", "application"
    ).get(pk=allocation.pk)


def _first_future_day(allocation: Allocation) -> date:
    """The first day an early end gives back: tomorrow (today's jobs may be running), or
    the first day of an allocation that has not started."""
    return max(timezone.localdate() + timedelta(days=1), allocation.start_date)


@dataclass
class _Ending:
    """An allocation ending early, under the locks that needs (see `_ending`)."""

    quota: QuotaUsage
    allocation: Allocation
    first: date
    pool: GpuPool
    pool_days: list[PoolDay]
    site_days: list[SiteDay]
    before: dict[str, Any]

    def give_back(self) -> int:
        """Take the grants' shares of the days from `first` out of the committed ledger,
        lower the grant by as much, and end the window the day before `first` (a window
        that had not begun keeps its days: its status says it ended). Answers the GPU-hours
        freed."""
        allocation = self.allocation
        if self.first > allocation.end_date:
            return 0
        freed = 0
        for grant in _grants(allocation):
            shares = ledger.daily_shares(
                gpu_hours=grant.gpu_hours, start=grant.start_date, end=grant.end_date
            )
            offset = max((self.first - grant.start_date).days, 0)
            future = shares[offset:]
            if not future:
                continue
            begin = grant.start_date + timedelta(days=offset)
            index = (begin - self.first).days
            ledger.ledger_apply(
                pool=self.pool,
                program=allocation.program,
                start=begin,
                shares=future,
                pool_days=self.pool_days[index : index + len(future)],
                site_days=self.site_days[index : index + len(future)],
                add_to=None,
                take_from="committed",
                energy_per_gpu_hour=ledger.reserved_rate(grant),
            )
            freed += sum(future)
        allocation.granted_gpu_hours -= freed
        allocation.released_from = self.first
        if self.first > allocation.start_date:
            allocation.end_date = self.first - timedelta(days=1)
        return freed

    def record(
        self,
        *,
        actor: Actor,
        verb: str,
        quota_freed: int,
        freed: int,
        reasons: list[dict[str, Any]] | None = None,
    ) -> None:
        """Save the allocation, give `quota_freed` GPU-hours back to the quota, audit."""
        self.allocation.save(
            update_fields=["granted_gpu_hours", "released_from", "status", "end_date"]
        )
        QuotaUsage.objects.filter(pk=self.quota.pk).update(
            held_gpu_hours=self.quota.held_gpu_hours - quota_freed
        )
        audit_record(
            actor=actor,
            verb=verb,
            target=self.allocation,
            before=self.before,
            after={**snapshot(self.allocation, TRACKED), "freed_gpu_hours": freed},
            reasons=reasons,
        )


@contextmanager
def _ending(allocation: Allocation, first: date) -> Iterator[_Ending]:
    """A transaction holding the locks an early end needs, in the lock order: the quota row,
    the pool (shared), the pool-days and site-days from `first` to the last day, then the
    allocation, re-read under its lock."""
    pool = allocation.pool
    last = allocation.end_date
    if first <= last:
        locks.ensure_ledger_rows(pool=pool, start=first, end=last)
    with transaction.atomic():
        quota = locks.lock_quota(
            organization_id=allocation.organization_id, program_id=allocation.program_id
        )
        moved_from = pool.site_id
        pool = locks.lock_pool_shared(pool_id=pool.pk)
        if pool.site_id != moved_from and first <= last:
            locks.ensure_site_days(site=pool.site, start=first, end=last)
        pool_days = locks.lock_pool_days(pool=pool, start=first, end=last)
        site_days = locks.lock_site_days(site=pool.site, start=first, end=last)
        current = locks.lock_allocation(allocation_id=allocation.pk)
        yield _Ending(quota, current, first, pool, pool_days, site_days, snapshot(current, TRACKED))


def _check_releasable(allocation: Allocation) -> None:
    if allocation.status not in LIVE_ALLOCATION:
        raise InvalidTransition(
            _("The allocation is %(status)s: it cannot be released.")
            % {"status": allocation.status}
        )
    if allocation.released_from is not None:
        raise InvalidTransition(
            _("The allocation was released from %(day)s already.")
            % {"day": allocation.released_from}
        )


def allocation_suspend(*, allocation: Allocation, actor: Actor) -> Allocation:
    """An operator suspends an allocation; the scheduler stops its jobs."""
    authz.require_operator(actor=actor)
    return _switch(allocation, actor, AllocationStatus.SUSPENDED, BackendCall.Action.SUSPEND)


def allocation_resume(*, allocation: Allocation, actor: Actor) -> Allocation:
    """An operator resumes a suspended allocation in the status its dates and usage give
    (active, scheduled before its first day, exhausted at 100 %); the scheduler lets its
    jobs run again."""
    authz.require_operator(actor=actor)
    return _switch(allocation, actor, AllocationStatus.ACTIVE, BackendCall.Action.RESUME)


def _switch(allocation: Allocation, actor: Actor, target: str, action: str) -> Allocation:
    with transaction.atomic():
        current = locks.lock_allocation(allocation_id=allocation.pk)
        if target == AllocationStatus.ACTIVE:
            if current.status != AllocationStatus.SUSPENDED:
                raise InvalidTransition(
                    _("The allocation is %(status)s: it cannot be resumed.")
                    % {"status": current.status}
                )
            if current.start_date > timezone.localdate():
                target = AllocationStatus.SCHEDULED
            elif used_percent(current) >= 100:
                target = AllocationStatus.EXHAUSTED
        before = ALLOCATION.move(
            current,
            target,
            _("The allocation is %(status)s: it cannot be suspended.")
            if target == AllocationStatus.SUSPENDED
            else None,
        )
        _status_recorded(
            current, before=before, actor=actor, verb=f"allocation.{action}", action=action
        )
    return current


def _status_recorded(
    allocation: Allocation, *, before: str, actor: Actor | None, verb: str, action: str
) -> None:
    """Save an allocation's new status, audit the move, and queue the scheduler call that
    brings its account to it. Inside the transaction that locked the allocation."""
    allocation.save(update_fields=["status"])
    audit_record(
        actor=actor,
        verb=verb,
        target=allocation,
        before={"status": before},
        after={"status": allocation.status},
    )
    backend_request(allocation=allocation, action=action)


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
    for allocation_id in Allocation.objects.filter(
        status__in=ALLOCATION.sources(AllocationStatus.EXPIRED), end_date__lt=today
    ).values_list("pk", flat=True):
        expired += _expire(allocation_id)
    warned = 0
    for allocation_id in Allocation.objects.filter(
        status__in=LIVE_ALLOCATION, expiry_notified=False, end_date__lte=today + timedelta(days=7)
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
        ALLOCATION.move(allocation, target)
        # Its first day: GPU jobs may start on the scheduler from now on.
        _status_recorded(
            allocation,
            before=source,
            actor=None,
            verb=f"allocation.{target}",
            action=BackendCall.Action.RESUME,
        )
    return 1


def _expire(allocation_id: Any) -> int:
    allocation = Allocation.objects.get(pk=allocation_id)
    with transaction.atomic():
        quota = locks.lock_quota(
            organization_id=allocation.organization_id, program_id=allocation.program_id
        )
        current = locks.lock_allocation(allocation_id=allocation_id)
        if not ALLOCATION.allows(current.status, AllocationStatus.EXPIRED):
            return 0
        before = ALLOCATION.move(current, AllocationStatus.EXPIRED)
        QuotaUsage.objects.filter(pk=quota.pk).update(
            held_gpu_hours=quota.held_gpu_hours - current.granted_gpu_hours
        )
        # Past its last day no new GPU job may start on the scheduler.
        _status_recorded(
            current,
            before=before,
            actor=None,
            verb="allocation.expired",
            action=BackendCall.Action.SUSPEND,
        )
    return 1
