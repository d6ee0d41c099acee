"""The scheduler account of each allocation: what the portal intends, the calls that bring
the scheduler to it, and reconciling it with what the scheduler holds.

Intent, per allocation: an account named after it, whose QOS limit is the grant in
GPU-minutes (the scheduler counts the usage), whose users are the scheduler user names of
its organization's active members, and on which new GPU jobs may start only while the
allocation is active.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership
from allocations import effects
from allocations.backends import (
    AccountSpec,
    BackendError,
    ClusterAccount,
    account_name,
    get_backend,
)
from allocations.models import Allocation, AllocationStatus, BackendCall, SchedulerCheck
from audit.services import audit_record

# Statuses whose allocations may start new GPU jobs: all others are stopped.
RUNNABLE = (AllocationStatus.ACTIVE,)
# Allocations whose accounts may still run jobs (or be resumed): their users follow the
# organization's members.
FOLLOWING = (
    AllocationStatus.SCHEDULED,
    AllocationStatus.ACTIVE,
    AllocationStatus.EXHAUSTED,
    AllocationStatus.SUSPENDED,
)
# Checks are kept this long (the metric reads the newest one).
CHECKS_KEPT = timedelta(days=7)


def _usernames(organization_ids: set[Any]) -> dict[Any, tuple[str, ...]]:
    names: dict[Any, set[str]] = defaultdict(set)
    for organization_id, username in (
        Membership.objects.filter(organization_id__in=organization_ids, user__is_active=True)
        .exclude(user__scheduler_username="")
        .values_list("organization_id", "user__scheduler_username")
    ):
        names[organization_id].add(username)
    return {key: tuple(sorted(value)) for key, value in names.items()}


def _spec(allocation: Allocation, users: tuple[str, ...]) -> AccountSpec:
    return AccountSpec(
        account=account_name(allocation.pk),
        organization=allocation.organization.name,
        gpu_minutes=allocation.granted_gpu_hours * 60,
        users=users,
        runnable=allocation.status in RUNNABLE,
    )


def scheduler_spec(*, allocation: Allocation) -> AccountSpec:
    """The account the allocation should have on the scheduler, from its state now."""
    users = _usernames({allocation.organization_id}).get(allocation.organization_id, ())
    return _spec(allocation, users)


# --- calls: recorded in the cause's transaction, carried out by a worker ------------------------


def backend_request(*, allocation: Allocation, action: str) -> BackendCall:
    """Record a call to the scheduler and carry it out after commit, with retries. The
    action says why it was asked; whichever it is, the call brings the account to the
    allocation's state when it runs (see `scheduler_spec`)."""
    call = backend_call_new(allocation=allocation, action=action)
    call.save(force_insert=True)
    effects.run_backend_call(call_id=call.pk)
    return call


def backend_call_new(*, allocation: Allocation, action: str) -> BackendCall:
    """The record of a call to the scheduler, not saved yet: `backend_request` saves one, an
    admission cycle saves all of its own in one INSERT and queues each after commit."""
    return BackendCall(
        allocation=allocation,
        backend=get_backend().name,
        action=action,
        arguments={
            "account": account_name(allocation.pk),
            "gpu_minutes": allocation.granted_gpu_hours * 60,
        },
    )


def backend_call_run(*, call_id: Any) -> BackendCall:
    """Carry out a recorded backend call. Raises BackendError for the task to retry; a call
    already done is not repeated, and one killed half-way is safe to run again: the backend
    compares the account with the spec first and runs only what is missing. The limit sent
    is the grant, not what remains of it: the scheduler's NoDecay QOS counts the usage
    itself."""
    call = BackendCall.objects.select_related("allocation__organization").get(pk=call_id)
    if call.outcome == BackendCall.Outcome.DONE:
        return call
    allocation = call.allocation
    spec = scheduler_spec(allocation=allocation)
    backend = get_backend()
    BackendCall.objects.filter(pk=call.pk).update(attempts=F("attempts") + 1)
    try:
        commands = backend.apply(spec)
    except BackendError as error:
        BackendCall.objects.filter(pk=call.pk).update(
            outcome=BackendCall.Outcome.FAILED, detail=str(error)[:2000]
        )
        raise
    with transaction.atomic():
        # Two runs of one call (a worker killed mid-call and its re-driven copy) both
        # converge on the same account; only the first to finish records it and audits it.
        finished = (
            BackendCall.objects.filter(pk=call.pk)
            .exclude(outcome=BackendCall.Outcome.DONE)
            .update(
                outcome=BackendCall.Outcome.DONE,
                commands=commands,
                finished_at=timezone.now(),
                detail="",
            )
        )
        call.refresh_from_db()
        if not finished:
            return call
        audit_record(
            actor=None,
            verb=f"backend.{call.action}",
            target=allocation,
            after={"backend": call.backend, "commands": commands},
        )
    return call


# --- members and drift -------------------------------------------------------------------------


def scheduler_users_changed(*, organization_id: Any) -> int:
    """The organization's members, or their scheduler user names, changed: queue a call that
    brings the users of each of its live allocations' accounts up to date. Call inside the
    transaction of the change; the calls run after commit. Answers the calls queued."""
    allocations = Allocation.objects.filter(organization_id=organization_id, status__in=FOLLOWING)
    queued = 0
    for allocation in allocations:
        backend_request(allocation=allocation, action=BackendCall.Action.SYNC_USERS)
        queued += 1
    return queued


def scheduler_intent() -> dict[str, AccountSpec]:
    """Every allocation's intended account, by account name (three queries)."""
    allocations = list(Allocation.objects.select_related("organization"))
    users = _usernames({allocation.organization_id for allocation in allocations})
    return {
        account_name(allocation.pk): _spec(allocation, users.get(allocation.organization_id, ()))
        for allocation in allocations
    }


def drift_between(spec: AccountSpec | None, held: ClusterAccount | None) -> list[dict[str, Any]]:
    """What differs between the intended account and the held one, field by field."""

    def item(what: str, intended: Any, found: Any) -> dict[str, Any]:
        account = spec.account if spec else held.account if held else ""
        return {"account": account, "field": what, "intended": intended, "held": found}

    if spec is None:
        return [item("account", None, "unknown to the portal")]
    if held is None or (not held.exists and not held.qos_exists):
        return [item("account", "present", None)]
    drift = []
    if not held.qos_exists:
        drift.append(item("qos", spec.qos, None))
    else:
        if held.gpu_minutes != spec.gpu_minutes:
            drift.append(item("gpu_minutes", spec.gpu_minutes, held.gpu_minutes))
        if not held.no_decay:
            drift.append(item("no_decay", True, False))
        runnable = held.gpu_cap is None or held.gpu_cap > 0
        if runnable != spec.runnable:
            drift.append(item("runnable", spec.runnable, runnable))
    if not held.exists:
        drift.append(item("account", "present", None))
        return drift
    if held.qos != {spec.qos} or held.default_qos != spec.qos:
        drift.append(item("account_qos", spec.qos, ",".join(sorted(held.qos))))
    if held.description != spec.description:
        drift.append(item("description", spec.description, held.description))
    if set(held.users) != set(spec.users):
        drift.append(item("users", sorted(spec.users), sorted(held.users)))
    astray = sorted(user for user, qos in held.users.items() if qos != {spec.qos})
    if astray:
        drift.append(item("user_qos", spec.qos, astray))
    return drift


@dataclass
class ReconcileResult:
    compared: bool
    drift: list[dict[str, Any]] = field(default_factory=list)
    mended: list[str] = field(default_factory=list)

    @property
    def drifted_accounts(self) -> list[str]:
        return sorted({item["account"] for item in self.drift})


def scheduler_reconcile(*, apply: bool) -> ReconcileResult:
    """Compare what the portal intends with what the scheduler holds (accounts, QOS limits,
    whether jobs may start, users) and, with `apply`, mend each drifted account the portal
    knows (accounts it does not know are reported, never touched). Records the check for
    the metric and audits each mend. Takes no lock: the backend runs outside any
    transaction, and each mend converges on the allocation's state as read just before."""
    backend = get_backend()
    held = backend.accounts()
    if held is None:
        return ReconcileResult(compared=False)
    intent = scheduler_intent()
    result = ReconcileResult(compared=True)
    for account in sorted(set(intent) | set(held)):
        result.drift.extend(drift_between(intent.get(account), held.get(account)))
    if apply:
        by_account = {
            account_name(pk): pk for pk in Allocation.objects.values_list("pk", flat=True)
        }
        for account in result.drifted_accounts:
            if account not in intent:
                continue
            allocation = Allocation.objects.select_related("organization").get(
                pk=by_account[account]
            )
            commands = backend.apply(scheduler_spec(allocation=allocation))
            with transaction.atomic():
                audit_record(
                    actor=None,
                    verb="backend.reconcile",
                    target=allocation,
                    before={"drift": [d for d in result.drift if d["account"] == account]},
                    after={"backend": backend.name, "commands": commands},
                )
            result.mended.append(account)
    now = timezone.now()
    SchedulerCheck.objects.create(
        checked_at=now,
        backend=backend.name,
        drifted_accounts=len(result.drifted_accounts) - len(result.mended),
        drift=result.drift,
        mended=apply,
    )
    SchedulerCheck.objects.filter(checked_at__lt=now - CHECKS_KEPT).delete()
    return result
