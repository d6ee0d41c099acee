"""Admission cycles: the pending applications of one pool decided together, as Kueue's
scheduler admits workloads.

A cycle takes the pool's applications in one status (`submitted`, or `waitlisted` for a
re-check) in program priority, then submission, order, at most `CYCLE_SIZE` of them, and
decides them in one transaction: every lock of allocations/locks.py is taken once, in its
order, for all of them (the pool's admission lock, the lineages, the quota rows, the
pool-day and site-day rows of the union of their windows, the applications); each is then
judged in memory by the rules of allocations/services/applications.py against the ledger
and quotas as the ones before it in the cycle left them, so the decisions are those of a
serial run in that order; and the ledger, quotas, applications, allocations, audit events
and scheduler calls are written with one statement per table. A burst of a hundred
submissions costs one round of locks and about twenty statements, not a hundred of each.

The decision task keeps its message (an application and its submission number): it runs
the cycle of that application's pool, which decides it with whatever else is pending there.
A message for a submission already decided, by its own cycle or another one, finds it no
longer pending and costs one read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from accounts.authz import SYSTEM
from accounts.models import Membership
from allocations import effects, locks
from allocations.models import (
    Allocation,
    Application,
    ApplicationKind,
    ApplicationStatus,
    BackendCall,
    PoolDay,
    ProgramDay,
    QuotaUsage,
    SiteDay,
)
from allocations.services import applications as rules
from allocations.services import ledger
from allocations.services.allocations import TRACKED, allocation_grant, allocation_new
from allocations.services.scheduler import backend_call_new
from audit.models import AuditEvent
from audit.services import audit_event, audit_record_many, snapshot

Status = ApplicationStatus

# The most applications one cycle decides: its transaction, and so how long it holds the
# pool's locks, stays bounded in a burst; the rest go to the next cycle at once.
CYCLE_SIZE = 500
# The most cycles one call runs before it leaves the rest to the next message or the beat.
MAX_CYCLES = 40


@dataclass
class Cycle:
    """What a cycle did: the applications it decided (in memory, as written), how many
    pending ones it read, and how many it left for another cycle."""

    decided: dict[UUID, Application] = field(default_factory=dict)
    read: int = 0
    left: int = 0


def admission_run(
    *,
    pool_id: Any,
    status: str = Status.SUBMITTED,
    application_ids: Sequence[Any] | None = None,
    today: date | None = None,
    unless_running: bool = False,
) -> dict[UUID, Application]:
    """Run admission cycles of the pool until none of its applications in `status` (among
    `application_ids` if given) is left, or `MAX_CYCLES` have run. Returns the applications
    decided, by id (a re-check that finds the same shortfall changes nothing and is not
    among them). With `unless_running`, nothing is done if a cycle of the pool is running
    (it, or the one after it, decides what is pending) instead of waiting for it."""
    decided: dict[UUID, Application] = {}
    for index in range(MAX_CYCLES):
        cycle = admission_cycle(
            pool_id=pool_id,
            status=status,
            application_ids=application_ids,
            today=today,
            wait=not (unless_running and index == 0),
        )
        decided.update(cycle.decided)
        if cycle.read < CYCLE_SIZE and not cycle.left:
            break
    return decided


class _Clock:
    """Times that strictly increase within a cycle: the audit trail's order (by time) is the
    order the cycle decided in, even for decisions made in the same microsecond."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def next(self) -> datetime:
        now = timezone.now()
        if self.last is not None and now <= self.last:
            now = self.last + timedelta(microseconds=1)
        self.last = now
        return now


def _span(windows: Sequence[tuple[date, date, int]], today: date) -> tuple[date, date] | None:
    """The days covering every window that can pass the request bounds (starts today or
    later, no longer than its program allows): the ledger rows a cycle locks. A window that
    cannot pass is rejected before its days are looked at."""
    usable = [
        (start, end)
        for start, end, longest in windows
        if start >= today and start <= end and (end - start).days + 1 <= longest
    ]
    if not usable:
        return None
    return min(start for start, _ in usable), max(end for _, end in usable)


def admission_cycle(
    *,
    pool_id: Any,
    status: str = Status.SUBMITTED,
    application_ids: Sequence[Any] | None = None,
    today: date | None = None,
    wait: bool = True,
) -> Cycle:
    """Decide, in one transaction, up to `CYCLE_SIZE` of the pool's applications in
    `status` (`submitted`: their first decision; `waitlisted`: a re-check), in program
    priority, then submission, order.

    Before the transaction, the missing ledger rows of the union of their windows are made
    (allocations/locks.py). Locks, in the documented order: the pool's admission lock, the
    lineages, the quota rows, the pool `FOR SHARE`, the pool-days and site-days of that union
    in day order, the applications, the allocations that changes apply to. An application
    that moved since it was read (withdrawn, decided) is left alone. Writes one statement
    per table; queues each decision's mail and each new allocation's scheduler call after
    commit.
    """
    today = today or timezone.localdate()
    pending = Application.objects.filter(pool_id=pool_id, status=status)
    if application_ids is not None:
        pending = pending.filter(pk__in=application_ids)
    pending = pending.order_by("program__priority", "submitted_at", "id")
    windows = list(
        pending.values_list(
            "start_date", "end_date", "program__max_duration_days", "pool__site_id"
        )[:CYCLE_SIZE]
    )
    if not windows:
        return Cycle()
    span = _span([(start, end, longest) for start, end, longest, _ in windows], today)
    site_id = windows[0][3]
    if span is not None:
        locks.ensure_ledger_rows_of(pool_id=pool_id, site_id=site_id, start=span[0], end=span[1])
    with transaction.atomic():
        if not locks.lock_admission(pool_id=pool_id, wait=wait):
            return Cycle()  # another cycle of the pool is running: it decides them
        applications = list(
            pending.select_related("program", "organization", "allocation")[:CYCLE_SIZE]
        )
        if not applications:
            return Cycle()
        judge = _Judge(applications, status=status, today=today)
        judge.lock(pool_id=pool_id, span=span, site_id=site_id)
        judge.decide_all()
        judge.write()
    return Cycle(decided=judge.decided, read=len(applications), left=judge.left)


class _Judge:
    """One cycle's transaction: its locks, its ledger in memory, its decisions."""

    def __init__(self, applications: list[Application], *, status: str, today: date) -> None:
        self.applications = applications
        self.status = status
        self.today = today
        self.clock = _Clock()
        self.decided: dict[UUID, Application] = {}
        self.left = 0
        self.events: list[AuditEvent] = []
        self.new_allocations: list[Allocation] = []
        self.touched_pool_days: dict[int, PoolDay] = {}
        self.touched_program_days: dict[int, ProgramDay] = {}
        self.touched_site_days: dict[int, SiteDay] = {}
        self.touched_quotas: dict[int, QuotaUsage] = {}

    # --- the locks, in the order of allocations/locks.py ------------------------------------

    def lock(self, *, pool_id: Any, span: tuple[date, date] | None, site_id: Any) -> None:
        applications = self.applications
        self.lineages = {
            application.pk: rules.lineage_of(application) for application in applications
        }
        locks.lock_lineages(keys=list(self.lineages.values()))
        self.quotas = locks.lock_quotas(
            pairs=[(a.organization_id, a.program_id) for a in applications]
        )
        self.pool = locks.lock_pool_shared(pool_id=pool_id)
        self._lock_ledger(span, site_id)
        self.current = locks.lock_applications(
            application_ids=[application.pk for application in applications]
        )
        changed = locks.lock_allocations(
            allocation_ids=[a.allocation_id for a in applications if a.allocation_id is not None]
        )
        for application in applications:
            application.pool = self.pool
            if application.allocation_id is not None:
                application.allocation = changed[application.allocation_id]
        self.members = set(
            Membership.objects.filter(
                user_id__in={a.applicant_id for a in applications},
                organization_id__in={a.organization_id for a in applications},
            ).values_list("user_id", "organization_id")
        )
        # Read under the lineages' locks; grows with each decision of the cycle that grants
        # or holds GPU-hours for a lineage, as the next decision would read it in a serial run.
        self.flops = {
            lineage: rules.lineage_training_flop(lineage=lineage)
            for lineage in sorted(set(self.lineages.values()) - {""})
        }
        self.everyone = ledger.all_program_terms()

    def _lock_ledger(self, span: tuple[date, date] | None, site_id: Any) -> None:
        """The pool-day and site-day rows of the cycle's days, locked in day order, and the
        programs' rows of the pool on those days (made for the cycle's programs)."""
        self.span = span
        self.pool_days: list[PoolDay] = []
        self.site_days: list[SiteDay] = []
        self.program_rows: dict[tuple[UUID, date], ProgramDay] = {}
        self.energy = Decimal(0)
        self.program_ids = sorted({application.program_id for application in self.applications})
        if span is not None:
            start, end = span
            if self.pool.site_id != site_id:
                # the pool moved to another site since its rows were made
                locks.ensure_site_days(site=self.pool.site, start=start, end=end)
            self.pool_days = locks.lock_pool_days(pool=self.pool, start=start, end=end)
            self.site_days = locks.lock_site_days(site=self.pool.site, start=start, end=end)
            self.energy = ledger.current_wh_per_gpu_hour(pool_id=self.pool.pk)
            self.program_rows = locks.program_days(
                pool=self.pool, start=start, end=end, make_for_ids=self.program_ids
            )
        # Every program with rows in the pool counts in a check (what the others use).
        self.row_program_ids = sorted({program_id for program_id, _ in self.program_rows})

    # --- the decisions, one after another in memory -------------------------------------------

    def decide_all(self) -> None:
        changing: set[UUID] = set()
        for index, application in enumerate(self.applications):
            if self.current.get(application.pk) != (self.status, application.submission):
                continue  # withdrawn or decided since it was read
            if application.allocation_id is not None:
                if application.allocation_id in changing:
                    # A second change of one allocation reads what the first did to it: it
                    # waits for the next cycle, which sees the first written.
                    self.left = len(self.applications) - index
                    return
                changing.add(application.allocation_id)
            if not self._decide(application):
                self.left += 1

    def _decide(self, application: Application) -> bool:
        """Decide one application against the cycle's ledger; False if it must wait for
        another cycle (its window arrived after this cycle's ledger rows were made)."""
        program = application.program
        lineage = self.lineages[application.pk]
        screening = rules.screen(
            application,
            self.today,
            member=(application.applicant_id, application.organization_id) in self.members,
            lineage_flop=self.flops.get(lineage) if lineage else None,
        )
        if screening.rejection is not None:
            self._record(application, Status.REJECTED, [screening.rejection])
            return True
        quota = self.quotas[(application.organization_id, application.program_id)]
        if quota.held_gpu_hours + application.gpu_hours > program.org_cap_gpu_hours:
            self._record(application, Status.REJECTED, [rules.over_quota(quota, program)])
            return True
        window = self._window(application)
        if window is None:
            return False
        shares = self._fitting_shares(application, window)
        if shares is None:
            return True  # waitlisted
        review = rules.review_reasons(application, screening)
        self._reserve(
            application,
            quota,
            lineage,
            shares,
            window,
            column="held" if review else "committed",
        )
        if review:
            application.holds_capacity = True
            self._record(application, Status.IN_REVIEW, review)
            return True
        self._record(application, Status.APPROVED, [rules.auto_approved()])
        self._grant(application)
        return True

    def _fitting_shares(
        self,
        application: Application,
        window: tuple[list[PoolDay], list[SiteDay], dict[tuple[UUID, date], ProgramDay]],
    ) -> list[int] | None:
        """The application's daily shares if every day of its window has room for them;
        otherwise None, and the application is waitlisted on its first short day."""
        pool_days, site_days, program_rows = window
        shares = ledger.daily_shares(
            gpu_hours=application.gpu_hours, start=application.start_date, end=application.end_date
        )
        shortfall = ledger.capacity_check(
            program=application.program,
            shares=shares,
            pool_days=pool_days,
            program_rows=program_rows,
            site_days=site_days,
            energy_per_gpu_hour=self.energy,
            everyone=self.everyone,
        )
        if shortfall is None:
            return shares
        self._record(
            application,
            Status.WAITLISTED,
            [rules.reason(shortfall.code, shortfall.message, shortfall.day)],
            failed_day=shortfall.day,
        )
        return None

    def _grant(self, application: Application) -> None:
        """The allocation of an approval: a new one is written with the cycle's others; a
        supplement or an extension changes its allocation at once (rare, and at most one per
        allocation in a cycle)."""
        if application.kind != ApplicationKind.NEW:
            allocation_grant(application=application, actor=SYSTEM)
            return
        # Its status is that of the real day, as `allocation_grant` makes it, whatever day
        # the checks took for today (a history being loaded).
        allocation = allocation_new(application=application, today=timezone.localdate())
        # named after its application and organization (its audit event's text)
        allocation.application = application
        allocation.organization = application.organization
        self.new_allocations.append(allocation)

    def _window(
        self, application: Application
    ) -> tuple[list[PoolDay], list[SiteDay], dict[tuple[UUID, date], ProgramDay]] | None:
        """The cycle's locked rows of the application's window, or None if they are not
        all among them."""
        if self.span is None:
            return None
        first = (application.start_date - self.span[0]).days
        days = (application.end_date - application.start_date).days + 1
        if first < 0 or application.end_date > self.span[1]:
            return None
        pool_days = self.pool_days[first : first + days]
        program_rows = {}
        for row in pool_days:
            for program_id in self.row_program_ids:
                key = (program_id, row.day)
                if key in self.program_rows:
                    program_rows[key] = self.program_rows[key]
        return pool_days, self.site_days[first : first + days], program_rows

    def _reserve(
        self,
        application: Application,
        quota: QuotaUsage,
        lineage: str,
        shares: list[int],
        window: tuple[list[PoolDay], list[SiteDay], dict[tuple[UUID, date], ProgramDay]],
        *,
        column: Literal["committed", "held"],
    ) -> None:
        """Reserve the application's shares in the cycle's ledger (`held` for review,
        `committed` for an approval), its GPU-hours in its quota, and its training compute
        in its lineage; every row it touches is written when the cycle ends."""
        pool_days, site_days, program_rows = window
        moved = ledger.ledger_move(
            program=application.program,
            shares=shares,
            pool_days=pool_days,
            program_rows=program_rows,
            site_days=site_days,
            add_to=column,
            take_from=None,
            energy_per_gpu_hour=self.energy,
        )
        for row in pool_days:
            self.touched_pool_days[row.pk] = row
        for site_row in site_days:
            self.touched_site_days[site_row.pk] = site_row
        for program_row in moved:
            self.touched_program_days[program_row.pk] = program_row
        application.reserved_wh_per_gpu_hour = self.energy
        quota.held_gpu_hours += application.gpu_hours
        self.touched_quotas[quota.pk] = quota
        if lineage:
            self.flops[lineage] += rules.training_flop(
                application.gpu_hours, self.pool.accelerator.peak_bf16_flops
            )

    def _record(
        self,
        application: Application,
        status: str,
        reasons: list[dict[str, Any]],
        *,
        failed_day: date | None = None,
    ) -> None:
        event = rules.decision_record(
            application, status, reasons, failed_day=failed_day, at=self.clock.next()
        )
        if event is not None:
            self.events.append(event)
            self.decided[application.pk] = application

    # --- one statement per table ----------------------------------------------------------------

    def write(self) -> None:
        decided = list(self.decided.values())
        ledger.bulk_set(Application, decided, rules.DECISION_FIELDS)
        ledger.bulk_set(QuotaUsage, list(self.touched_quotas.values()), ["held_gpu_hours"])
        hours = ["committed_gpu_hours", "held_gpu_hours"]
        ledger.bulk_set(PoolDay, list(self.touched_pool_days.values()), hours)
        ledger.bulk_set(ProgramDay, list(self.touched_program_days.values()), hours)
        ledger.bulk_set(SiteDay, list(self.touched_site_days.values()), ["committed_wh", "held_wh"])
        calls = []
        if self.new_allocations:
            Allocation.objects.bulk_create(self.new_allocations)
            for allocation in self.new_allocations:
                self.events.append(
                    audit_event(
                        actor=SYSTEM,
                        verb="allocation.create",
                        target=allocation,
                        after=snapshot(allocation, TRACKED),
                    )
                )
                calls.append(
                    backend_call_new(
                        allocation=allocation, action=BackendCall.Action.CREATE_ACCOUNT
                    )
                )
            BackendCall.objects.bulk_create(calls)
        audit_record_many(self.events)
        # The effects: the decisions' mails and the scheduler calls, in one statement. The
        # decision effects of the others decided here finish as usual: each message finds
        # its application decided.
        effects.add_together(
            [
                effects.decision_mail_effect(
                    application_id=event.target_id, status=self.decided[event.target_id].status
                )
                for event in self.events
                if event.verb.startswith("application.")
                and rules.decision_notifies(self.decided[event.target_id], before=event.before)
            ]
            + [effects.backend_call_effect(call_id=call.pk) for call in calls]
        )
