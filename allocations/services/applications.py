"""Applications: drafts, submission, the worker's decision, review, withdrawal, the waitlist.

The decision runs the checks of the design in order, and the first failure decides:
eligibility, request bounds, AI-use rules, the organization's quota, then capacity day by
day. Checks that need no lock run first; the quota and capacity checks run with the locks
of allocations/locks.py held, in their order, and commit in the same transaction. Every
decision re-reads the application under its lock and does nothing if it has moved on, so a
redelivered or repeated task decides nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import authz
from accounts.authz import SYSTEM, Actor
from accounts.models import Membership, Organization, User
from allocations import effects, locks
from allocations.lifecycle import APPLICATION, LIVE_ALLOCATION, UNDECIDED
from allocations.models import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationKind,
    ApplicationStatus,
    GpuPool,
    PoolDay,
    Program,
    QuotaUsage,
    RiskCategory,
    SiteDay,
)
from allocations.models.demand import lineage_key
from allocations.reasons import message_of, reason, text
from allocations.services import ledger
from allocations.services.allocations import allocation_grant
from audit.models import AuditEvent
from audit.services import audit_event, audit_record
from portal.errors import InvalidTransition, RequestRefused

SYSTEMIC_RISK_FLOP = Decimal(10) ** 25
TRAINING_UTILISATION = Decimal("0.4")
SECONDS_PER_HOUR = 3600

Status = ApplicationStatus
FINAL = APPLICATION.final()
# Allocations a supplement or an extension may change.


def _state(application: Application) -> dict[str, Any]:
    return {
        "status": application.status,
        "submission": application.submission,
        "holds_capacity": application.holds_capacity,
    }


# --- drafts -----------------------------------------------------------------------------


# Request bounds a draft is refused for: nothing can make them pass later.
DRAFT_REFUSED = ("gpu_hours", "start_date", "end_date")


def _refuse_impossible(application: Application, *, today: date) -> None:
    """Refuse a draft whose request can never pass: GPU-hours outside its program's bounds, a
    window longer than the program allows or starting in the past. The decision would reject
    it with the same code; refusing it now spares the applicant the round trip."""
    refusals = request_refusals(
        program=application.program,
        pool=application.pool,
        gpu_hours=application.gpu_hours,
        start_date=application.start_date,
        end_date=application.end_date,
        today=today,
    )
    fields = {
        name: [{"code": refusal["code"], "message": message_of(refusal)}]
        for name, refusal in refusals.items()
        if name in DRAFT_REFUSED
    }
    if fields:
        raise RequestRefused(extra={"fields": fields})


def application_create(
    *, applicant: User, values: Mapping[str, Any], as_of: date | None = None
) -> Application:
    """Save a draft. The caller has checked that the applicant is a member of the
    organization. A request that can never pass (`_refuse_impossible`) raises
    `RequestRefused` and writes nothing; quota and capacity wait for submission. `as_of` is
    the day taken for today when loading a history (the demo); by default, today."""
    with transaction.atomic():
        application = Application(applicant=applicant, status=Status.DRAFT, **values)
        application.full_clean()
        _refuse_impossible(application, today=as_of or timezone.localdate())
        application.save(force_insert=True)
        audit_record(
            actor=applicant,
            verb="application.create",
            target=application,
            after={"status": Status.DRAFT, "gpu_hours": application.gpu_hours},
        )
    return application


def application_update(
    *, application: Application, values: Mapping[str, Any], actor: User
) -> Application:
    """Edit a draft; any other status is refused and nothing changes."""
    with transaction.atomic():
        current = locks.lock_application(application_id=application.pk)
        if current.status != Status.DRAFT:
            raise InvalidTransition(
                _("Only drafts can be edited; this one is %(status)s.") % {"status": current.status}
            )
        changed = {name: value for name, value in values.items() if getattr(current, name) != value}
        if not changed:
            return current
        before = {name: str(getattr(current, name)) for name in changed}
        for name, value in changed.items():
            setattr(current, name, value)
        current.full_clean()
        _refuse_impossible(current, today=timezone.localdate())
        current.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=actor,
            verb="application.update",
            target=current,
            before=before,
            after={name: str(value) for name, value in changed.items()},
        )
    return current


def application_submit(
    *, application: Application, actor: User, submitted_at: datetime | None = None
) -> Application:
    """Move a draft to `submitted` and write its decision to the outbox in the same
    transaction (published after commit, or by the relay once the broker answers); answers
    at once.
    `submitted_at` is for loading a history (the demo); by default, now."""
    with transaction.atomic():
        current = locks.lock_application(application_id=application.pk)
        before = _state(current)
        APPLICATION.move(
            current,
            Status.SUBMITTED,
            _("Only a draft can be submitted; this application is %(status)s."),
        )
        current.submission += 1
        current.submitted_at = submitted_at or timezone.now()
        current.reasons = []
        current.save(
            update_fields=["status", "submission", "submitted_at", "reasons", "updated_at"]
        )
        audit_record(
            actor=actor,
            verb="application.submit",
            target=current,
            before=before,
            after=_state(current),
        )
        effects.decide(application_id=current.pk, submission=current.submission)
    return current


# --- the checks without locks --------------------------------------------------------------


@dataclass
class Screening:
    """What the lock-free checks found: a rejection, or the reasons to send it to review."""

    rejection: dict[str, Any] | None = None
    review: list[dict[str, Any]] = field(default_factory=list)


def eligibility_refusal(*, program: Program, organization: Organization) -> dict[str, Any] | None:
    """Check 1 without the membership: why `organization` may not apply to `program`, as a
    reason, or None. The pages list only the programs this passes."""
    if not program.is_open:
        return reason("program_closed", text("program_closed", program=program.name))
    if program.verification_required and organization.verified_at is None:
        return reason("not_eligible", text("not_verified"))
    country = str(organization.country)
    if program.eligible_countries and country not in program.eligible_countries:
        return reason("not_eligible", text("not_in_country", program=program.name, country=country))
    if program.eligible_kinds and organization.kind not in program.eligible_kinds:
        return reason(
            "not_eligible", text("not_for_kind", program=program.name, kind=organization.kind)
        )
    return None


def request_refusals(
    *,
    program: Program,
    pool: GpuPool,
    gpu_hours: int,
    start_date: date,
    end_date: date,
    today: date,
) -> dict[str, dict[str, Any]]:
    """Check 2, the request bounds: per field, the reason a request can never pass (a closed
    pool, GPU-hours outside the program's bounds, a window longer than it allows or starting
    in the past). Empty when the request is within them. The decision takes the first; a draft
    and the apply form refuse them all before submission."""
    refusals: dict[str, dict[str, Any]] = {}
    if not pool.is_open:
        refusals["pool"] = reason("pool_closed", text("pool_closed", pool=pool.name))
    if not program.min_gpu_hours <= gpu_hours <= program.max_gpu_hours:
        refusals["gpu_hours"] = reason(
            "out_of_bounds",
            text(
                "gpu_hours_bounds",
                program=program.name,
                min=program.min_gpu_hours,
                max=program.max_gpu_hours,
            ),
        )
    if start_date < today:
        refusals["start_date"] = reason("window_in_past", text("window_in_past"))
    if (end_date - start_date).days + 1 > program.max_duration_days:
        refusals["end_date"] = reason(
            "out_of_bounds",
            text("window_too_long", program=program.name, days=program.max_duration_days),
        )
    return refusals


# The order in which the decision reports request-bound refusals: the first decides.
_BOUNDS_ORDER = ("pool", "gpu_hours", "end_date", "start_date")


def screen(
    application: Application,
    today: date,
    *,
    member: bool | None = None,
    lineage_flop: Decimal | None = None,
) -> Screening:
    """Checks 1 to 3 of the design, in its order: the first that fails rejects, and what
    asks for a reviewer is collected. One function on purpose: the checks read top to bottom
    as the design lists them, each a few lines. An admission cycle passes what it read for
    all its applications at once: whether the applicant is a member, and the lineage's
    training compute so far (with the decisions made before this one in the cycle); by
    default they are read here."""
    program, pool, organization = application.program, application.pool, application.organization
    # 1. eligibility
    refusal = eligibility_refusal(program=program, organization=organization)
    if refusal is not None:
        return Screening(refusal)
    if member is None:
        member = Membership.objects.filter(
            user_id=application.applicant_id, organization_id=organization.pk
        ).exists()
    if not member:
        return Screening(reason("not_eligible", text("not_member")))
    # 2. request bounds
    refusals = request_refusals(
        program=program,
        pool=pool,
        gpu_hours=application.gpu_hours,
        start_date=application.start_date,
        end_date=application.end_date,
        today=today,
    )
    for name in _BOUNDS_ORDER:
        if name in refusals:
            return Screening(refusals[name])
    change = _check_change(application) or _check_resulting_allocation(application)
    if change is not None:
        return Screening(change)
    # 3. AI-use rules
    if application.risk_category == RiskCategory.PROHIBITED:
        return Screening(reason("prohibited_use", text("prohibited_use")))
    screening = Screening()
    if application.risk_category == RiskCategory.HIGH:
        screening.review.append(reason("needs_review", text("needs_review")))
    if not application.data_stays_in_eea:
        screening.review.append(reason("data_outside_eea", text("data_outside_eea")))
    lineage = lineage_of(application)
    if lineage:
        if lineage_flop is None:
            lineage_flop = lineage_training_flop(lineage=lineage)
        flop = lineage_flop + training_flop(
            application.gpu_hours, application.pool.accelerator.peak_bf16_flops
        )
        if flop >= SYSTEMIC_RISK_FLOP:
            screening.review.append(
                reason(
                    "systemic_risk",
                    text(
                        "systemic_risk",
                        lineage=application.model_lineage or lineage,
                        flop=f"{flop:.2E}",
                    ),
                )
            )
    return screening


def _check_change(application: Application) -> dict[str, Any] | None:
    """A supplement stays inside its allocation's window; an extension starts the day after
    it ends. Both belong to the same organization, program and pool, and to a live
    allocation."""
    if application.kind == ApplicationKind.NEW:
        return None
    allocation = application.allocation
    assert allocation is not None
    if (allocation.organization_id, allocation.program_id, allocation.pool_id) != (
        application.organization_id,
        application.program_id,
        application.pool_id,
    ):
        return reason("invalid_change", text("change_other_allocation"))
    if allocation.status not in LIVE_ALLOCATION or allocation.released_from is not None:
        return reason("invalid_change", text("change_allocation_status", status=allocation.status))
    if application.kind == ApplicationKind.SUPPLEMENT and not (
        allocation.start_date
        <= application.start_date
        <= application.end_date
        <= allocation.end_date
    ):
        return reason("invalid_change", text("supplement_window"))
    if application.kind == ApplicationKind.EXTENSION and (
        (application.start_date - allocation.end_date).days != 1
    ):
        return reason("invalid_change", text("extension_window"))
    return None


def _check_resulting_allocation(application: Application) -> dict[str, Any] | None:
    """A supplement or an extension is bounded by what the allocation becomes, not by the
    change alone: the program's most GPU-hours and days per application hold for the
    allocation with this change and the changes to it still in review (whose approval does
    not check bounds again)."""
    if application.kind == ApplicationKind.NEW:
        return None
    allocation, program = application.allocation, application.program
    assert allocation is not None
    pending = list(
        Application.objects.filter(
            allocation_id=allocation.pk, status=Status.IN_REVIEW, holds_capacity=True
        )
        .exclude(pk=application.pk)
        .values_list("gpu_hours", "end_date")
    )
    gpu_hours = allocation.granted_gpu_hours + application.gpu_hours
    gpu_hours += sum(hours for hours, _ in pending)
    end = max([allocation.end_date, application.end_date, *(last for _, last in pending)])
    days = (end - allocation.start_date).days + 1
    if gpu_hours > program.max_gpu_hours:
        return reason(
            "out_of_bounds",
            text(
                "change_gpu_hours",
                gpu_hours=gpu_hours,
                program=program.name,
                max=program.max_gpu_hours,
            ),
        )
    if days > program.max_duration_days:
        return reason(
            "out_of_bounds",
            text("change_days", days=days, program=program.name, max=program.max_duration_days),
        )
    return None


def lineage_of(application: Application) -> str:
    """The normalized lineage an application adds compute to: its own, or for a change that
    names none, its allocation's."""
    own = lineage_key(application.model_lineage)
    if own or application.allocation is None:
        return own
    return application.allocation.lineage_key


def training_flop(gpu_hours: int, peak_flops: int) -> Decimal:
    return Decimal(gpu_hours) * SECONDS_PER_HOUR * peak_flops * TRAINING_UTILISATION


def lineage_training_flop(*, lineage: str) -> Decimal:
    """Estimated training compute of a model lineage (its `lineage_key`): the GPU-hours
    granted to it and those held for it in review, × 3600 × peak FLOP/s × 0.4. A decision
    reads it with the lineage's lock held (allocations/locks.py, step 1)."""
    granted = (
        Allocation.objects.filter(lineage_key=lineage)
        .exclude(status=AllocationStatus.REVOKED)
        .values("pool__accelerator__peak_bf16_flops")
        .annotate(hours=Sum("granted_gpu_hours"))
    )
    total = sum(
        (training_flop(row["hours"], row["pool__accelerator__peak_bf16_flops"]) for row in granted),
        Decimal(0),
    )
    # Holds are few; their names are normalized here, a change without one counts for its
    # allocation's lineage.
    held = (
        Application.objects.filter(status=Status.IN_REVIEW, holds_capacity=True)
        .filter(Q(allocation__lineage_key=lineage) | ~Q(model_lineage=""))
        .values_list(
            "model_lineage",
            "allocation__lineage_key",
            "gpu_hours",
            "pool__accelerator__peak_bf16_flops",
        )
    )
    for name, allocation_lineage, hours, flops in held:
        if (lineage_key(name) or allocation_lineage or "") == lineage:
            total += training_flop(hours, flops)
    return total


# --- decisions under lock --------------------------------------------------------------------


@dataclass
class Locked:
    application: Application
    quota: QuotaUsage
    pool_days: list[PoolDay]
    site_days: list[SiteDay]
    # Wh a GPU-hour of the pool costs now, read with the window's site-days locked
    energy_per_gpu_hour: Decimal = Decimal(0)


@contextmanager
def _locked(
    application: Application, *, window: bool = True, lineage: str = ""
) -> Iterator[Locked]:
    """One transaction holding the lineage, quota, pool, pool-day, site-day and application
    locks, in order (allocations/locks.py)."""
    if window:
        locks.ensure_ledger_rows(
            pool=application.pool, start=application.start_date, end=application.end_date
        )
    with transaction.atomic():
        locks.lock_lineage(key=lineage)
        quota = locks.lock_quota(
            organization_id=application.organization_id, program_id=application.program_id
        )
        pool_days: list[PoolDay] = []
        site_days: list[SiteDay] = []
        energy = Decimal(0)
        if window:
            start, end = application.start_date, application.end_date
            pool = locks.lock_pool_shared(pool_id=application.pool_id)
            if pool.site_id != application.pool.site_id:
                # the pool moved to another site since it was read
                locks.ensure_site_days(site=pool.site, start=start, end=end)
            pool_days = locks.lock_pool_days(pool=pool, start=start, end=end)
            site_days = locks.lock_site_days(site=pool.site, start=start, end=end)
            energy = ledger.current_wh_per_gpu_hour(pool_id=pool.pk)
        current = locks.lock_application(application_id=application.pk)
        yield Locked(current, quota, pool_days, site_days, energy)


def _load(application_id: Any) -> Application | None:
    return (
        Application.objects.select_related(
            "program", "pool__site", "pool__accelerator", "organization", "allocation"
        )
        .filter(pk=application_id)
        .first()
    )


# How long a submitted application waits before any decision message of its pool, not only
# its own, runs the pool's admission cycle for it (see `application_decide`).
STRANDED_AFTER_SECONDS = 1.0


def application_decide(
    *, application_id: Any, submission: int, as_of: date | None = None
) -> Application | None:
    """Decide a submitted application: the worker's entry point. Runs the admission cycle of
    its pool (allocations/services/admission.py), which decides it together with every other
    application pending there, in priority then submission order.

    Idempotent: if the application is no longer `submitted` in this submission (decided,
    by this cycle or an earlier one, withdrawn, or submitted again since), it is left alone,
    and the message costs one read. When it is no longer `submitted` at all but others of
    its pool have waited for more than `STRANDED_AFTER_SECONDS`, the pool's cycle runs all
    the same: the applications of a cycle that was lost (its worker killed mid-transaction)
    are decided by the pool's next message instead of waiting for their own, which may be
    queued behind many; fresher ones are left to their own messages, and a running cycle of
    the pool is not waited for, so that a burst's late messages stay cheap. `as_of` is the
    day the checks take for today, for loading a history (the demo's allocations that
    started weeks ago); the worker never passes it.
    """
    from allocations.services.admission import admission_run

    waited = timezone.now() - timedelta(seconds=STRANDED_AFTER_SECONDS)
    others_pending = Exists(
        Application.objects.filter(
            pool_id=OuterRef("pool_id"), status=Status.SUBMITTED, submitted_at__lt=waited
        )
    )
    application = (
        Application.objects.filter(pk=application_id)
        .annotate(pool_has_pending=others_pending)
        .first()
    )
    if application is None:
        return None
    if application.status == Status.SUBMITTED and application.submission != submission:
        return application  # an older submission's message: the current one has its own
    if application.status != Status.SUBMITTED:
        if application.pool_has_pending:
            admission_run(pool_id=application.pool_id, today=as_of, unless_running=True)
        return application
    decided = admission_run(pool_id=application.pool_id, today=as_of)
    if application.pk in decided:
        return decided[application.pk]
    return _load(application.pk)


def application_recheck(*, application_id: Any) -> Application | None:
    """Decide a waitlisted application again (capacity freed, or the periodic beat).

    It stays waitlisted, with its reason brought up to date, if it still does not fit.
    """
    from allocations.services.admission import admission_run

    application = Application.objects.filter(pk=application_id).first()
    if application is None or application.status != Status.WAITLISTED:
        return application
    decided = admission_run(
        pool_id=application.pool_id, status=Status.WAITLISTED, application_ids=[application.pk]
    )
    return decided.get(application.pk) or _load(application.pk)


def auto_approved() -> dict[str, Any]:
    """The reason of an automatic approval."""
    return reason("auto_approved", text("auto_approved"))


def over_quota(quota: QuotaUsage, program: Program) -> dict[str, Any]:
    """Check 4's reason: the organization's held GPU-hours and this request pass the cap."""
    return reason(
        "over_quota",
        text(
            "over_quota",
            held=quota.held_gpu_hours,
            program=program.name,
            cap=program.org_cap_gpu_hours,
        ),
    )


def review_reasons(application: Application, screening: Screening) -> list[dict[str, Any]]:
    """Why an application that fits goes to a reviewer (none: it is approved): the flags of
    the screening, and a size above the program's auto-approval."""
    program = application.program
    review = list(screening.review)
    if application.gpu_hours > program.auto_approve_max_gpu_hours:
        review.append(
            reason(
                "above_auto_approve",
                text(
                    "above_auto_approve",
                    max=program.auto_approve_max_gpu_hours,
                    program=program.name,
                ),
            )
        )
    return review


def _finish(
    application: Application,
    status: str,
    reasons: list[dict[str, Any]],
    *,
    actor: User | None = None,
    failed_day: date | None = None,
) -> Application:
    """Record a decision with its audit event; notify after commit unless nothing changed."""
    recorded = decision_record(
        application, status, reasons, actor=actor, failed_day=failed_day, at=timezone.now()
    )
    if recorded is None:
        return application
    application.save(update_fields=DECISION_FIELDS)
    recorded.save(force_insert=True)
    decision_notify(application, before=recorded.before)
    return application


# The columns a decision writes.
DECISION_FIELDS = [
    "status",
    "reasons",
    "failed_day",
    "holds_capacity",
    "reserved_wh_per_gpu_hour",
    "decided_at",
    "decided_by",
    "updated_at",
]


def decision_record(
    application: Application,
    status: str,
    reasons: list[dict[str, Any]],
    *,
    at: datetime,
    actor: User | None = None,
    failed_day: date | None = None,
) -> AuditEvent | None:
    """A decision in memory: the application's fields set (`DECISION_FIELDS`, not saved) and
    its audit event made (not saved), timed `at`; None, and nothing set, if the decision
    changes nothing (a re-check that finds the same shortfall). The caller saves both and
    calls `decision_notify`: `_finish` one at a time, an admission cycle all in one go."""
    unchanged = (
        application.status == status
        and application.reasons == reasons
        and application.failed_day == failed_day
    )
    if unchanged:
        return None
    before = _state(application)
    moved = application.status != status
    APPLICATION.move(application, status)
    application.reasons = reasons
    application.failed_day = failed_day
    application.updated_at = at
    if status in (Status.APPROVED, Status.REJECTED, Status.WITHDRAWN):
        application.holds_capacity = False
    if moved:
        # Only a final decision has a time and a decider: an application in review or on the
        # waitlist is still waiting for one.
        final = status in FINAL
        application.decided_at = at if final else None
        application.decided_by = actor if final else None
    return audit_event(
        actor=actor,
        verb=f"application.{status}",
        target=application,
        before=before,
        after=_state(application),
        reasons=reasons,
        created_at=at,
    )


def decision_notifies(application: Application, *, before: Mapping[str, Any]) -> bool:
    """Whether a recorded decision is mailed: its status moved, and not to withdrawn."""
    return before["status"] != application.status and application.status != Status.WITHDRAWN


def decision_notify(application: Application, *, before: Mapping[str, Any]) -> None:
    """Queue the mail of a recorded decision after commit, if its status moved."""
    if decision_notifies(application, before=before):
        effects.notify_application_decided(application_id=application.pk, status=application.status)


# --- people's decisions -----------------------------------------------------------------------


def _move_hold(locked: Locked, application: Application, *, to: ledger.Column | None) -> None:
    """Move an application's held capacity to `to` (`committed`, on approval), or give it
    back (None). Locks held by the caller."""
    ledger.ledger_apply(
        pool=application.pool,
        program=application.program,
        start=application.start_date,
        shares=ledger.daily_shares(
            gpu_hours=application.gpu_hours, start=application.start_date, end=application.end_date
        ),
        pool_days=locked.pool_days,
        site_days=locked.site_days,
        add_to=to,
        take_from="held",
        energy_per_gpu_hour=ledger.reserved_rate(locked.application),
    )


def _release_hold(locked: Locked, application: Application) -> None:
    """Give an application's held capacity and quota back (locks held by the caller)."""
    _move_hold(locked, application, to=None)
    QuotaUsage.objects.filter(pk=locked.quota.pk).update(
        held_gpu_hours=locked.quota.held_gpu_hours - application.gpu_hours
    )


def application_approve(*, application: Application, actor: Actor, note: str) -> Application:
    """A reviewer approves an application in review: its held capacity becomes committed,
    so the approval can never fail for capacity. Any other status is refused."""
    authz.require_decider(actor=actor, application=application)
    application = _load(application.pk) or application
    if application.status != Status.IN_REVIEW:
        raise InvalidTransition(
            _("Only an application in review can be approved; this one is %(status)s.")
            % {"status": application.status}
        )
    with _locked(application) as locked:
        current = locked.application
        if current.status != Status.IN_REVIEW:
            raise InvalidTransition(
                _("The application is %(status)s now.") % {"status": current.status}
            )
        if current.allocation_id is not None:
            _require_live(locks.lock_allocation(allocation_id=current.allocation_id))
        _move_hold(locked, application, to="committed")
        current = _finish(
            current,
            Status.APPROVED,
            [reason("approved_by_reviewer", note)],
            actor=authz.person(actor),
        )
        allocation = allocation_grant(application=current, actor=actor)
        if _overcommitted(locked):
            # Capacity or power shrank under the hold since it was taken: the allocation is
            # flagged as the ledger rewrite flagged the others on those days.
            Allocation.objects.filter(pk=allocation.pk).update(at_risk=True)
        return current


def _require_live(changed: Allocation) -> None:
    """The allocation a supplement or extension changes may have been released or expired
    while it waited for review: granting to it would keep the hours in the ledger and the
    quota for good. Refused, so that the reviewer rejects it instead, freeing the hold."""
    if changed.status not in LIVE_ALLOCATION or changed.released_from is not None:
        raise InvalidTransition(_("The allocation is %(status)s.") % {"status": changed.status})


def _overcommitted(locked: Locked) -> bool:
    """Whether a locked day of the window has more reserved than its capacity or envelope."""
    return any(day.reserved_gpu_hours > day.capacity_gpu_hours for day in locked.pool_days) or any(
        day.committed_wh + day.held_wh > day.envelope_wh for day in locked.site_days
    )


def application_reject(
    *, application: Application, actor: Actor, note: str, code: str = "rejected_by_reviewer"
) -> Application:
    """A reviewer rejects an application in review or on the waitlist; a hold is released."""
    authz.require_decider(actor=actor, application=application)
    application = _load(application.pk) or application
    if application.status not in (Status.IN_REVIEW, Status.WAITLISTED):
        raise InvalidTransition(
            _(
                "Only an application in review or waitlisted can be rejected; this one is "
                "%(status)s."
            )
            % {"status": application.status}
        )
    # The window is locked even for a waitlisted one: a re-check may move it to review, with
    # a hold, before its lock is taken here.
    with _locked(application) as locked:
        current = locked.application
        if current.status not in (Status.IN_REVIEW, Status.WAITLISTED):
            raise InvalidTransition(
                _("The application is %(status)s now.") % {"status": current.status}
            )
        freed = current.holds_capacity
        if freed:
            _release_hold(locked, application)
        current = _finish(current, Status.REJECTED, [reason(code, note)], actor=authz.person(actor))
        if freed:
            effects.recheck_waitlist(pool_id=application.pool_id)
    return current


def application_withdraw(*, application: Application, actor: User) -> Application:
    """The applicant withdraws before a final decision; a hold is released."""
    application = _load(application.pk) or application
    if application.status not in (Status.DRAFT, *UNDECIDED):
        raise InvalidTransition(
            _("The application is %(status)s: it cannot be withdrawn.")
            % {"status": application.status}
        )
    # Anything but a draft may hold capacity by the time its lock is taken (a worker may
    # decide it meanwhile), so its window is locked too.
    with _locked(application, window=application.status != Status.DRAFT) as locked:
        current = locked.application
        if current.status not in (Status.DRAFT, *UNDECIDED):
            raise InvalidTransition(
                _("The application is %(status)s now.") % {"status": current.status}
            )
        freed = current.holds_capacity
        if freed:
            _release_hold(locked, application)
        current = _finish(
            current,
            Status.WITHDRAWN,
            [reason("withdrawn", text("withdrawn"))],
            actor=actor,
        )
        if freed:
            effects.recheck_waitlist(pool_id=application.pool_id)
    return current


def application_expire_holds(*, today: date | None = None) -> int:
    """Reject the applications still in review when their window starts (their hold
    expires) and the waitlisted ones whose window has started. Returns how many."""
    today = today or timezone.localdate()
    stale = Application.objects.filter(
        status__in=(Status.IN_REVIEW, Status.WAITLISTED), start_date__lt=today
    ).values_list("pk", flat=True)
    count = 0
    for application_id in list(stale):
        application = _load(application_id)
        if application is None:
            continue
        code = "hold_expired" if application.status == Status.IN_REVIEW else "window_in_past"
        try:
            application_reject(
                application=application,
                actor=SYSTEM,
                note=text("window_started"),
                code=code,
            )
            count += 1
        except InvalidTransition:
            continue
    return count


def application_requeue_stale(*, older_than_seconds: int | None = None) -> int:
    """Queue the decision again for applications that waited in `submitted` too long (a
    decision that failed for good, a row lost with its database backup). A submission whose
    decision is still on its way in the outbox is left to the relay, which re-drives it if
    its worker died or its message was lost: re-queueing never adds a second message for the
    same submission, however often it runs. Returns how many were queued."""
    seconds = older_than_seconds or settings.PORTAL_DECISION_TIMEOUT_SECONDS
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = Application.objects.filter(status=Status.SUBMITTED, submitted_at__lt=cutoff)
    count = 0
    for application_id, submission in stale.values_list("pk", "submission"):
        with transaction.atomic():
            if effects.decide_again(application_id=application_id, submission=submission):
                count += 1
    return count


def waitlists_recheck_all() -> int:
    """The periodic safety net: a waitlist re-check for every pool with a waitlist, unless
    one already waits to start for that pool. Returns how many were queued."""
    # Ordered by the pool itself: the model's default ordering (by creation time) would be
    # part of the DISTINCT and repeat a pool once per waitlisted application.
    pools = (
        Application.objects.filter(status=Status.WAITLISTED)
        .order_by("pool_id")
        .values_list("pool_id", flat=True)
        .distinct()
    )
    count = 0
    for pool_id in pools:
        with transaction.atomic():
            count += effects.recheck_waitlist(pool_id=pool_id, coalesce=True)
    return count


def waitlist_recheck(*, pool_id: Any) -> int:
    """Decide the waitlisted applications of a pool again, in program priority then
    submission order, in admission cycles. One that still does not fit does not block the
    others. Returns how many left the waitlist."""
    from allocations.services.admission import admission_run

    decided = admission_run(pool_id=pool_id, status=Status.WAITLISTED)
    return sum(application.status != Status.WAITLISTED for application in decided.values())
