"""The side effects of the allocations app, written to the outbox in the caller's
transaction (outbox/services.py): services call these instead of queueing tasks, so an
effect commits or rolls back with its cause and a broker that is away only delays it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outbox import queues
from outbox.models import Effect
from outbox.services import (
    effect_add,
    effect_on_its_way,
    effect_waiting,
    effects_add,
)


def decision_key(application_id: Any, submission: int) -> str:
    return f"decide:{application_id}:{submission}"


def decide(*, application_id: Any, submission: int) -> None:
    """Decide this submission of the application (a worker runs the checks)."""
    effect_add(
        task="allocations.tasks.decide_application",
        args=[str(application_id), submission],
        queue=queues.DECISIONS,
        key=decision_key(application_id, submission),
    )


def decide_again(*, application_id: Any, submission: int) -> bool:
    """The beat's re-queue of a submission that waited too long: a new effect only if none is
    on its way (a row queued, running or due to be re-driven is the relay's to finish), so
    that re-queueing never multiplies messages. Answers whether one was written."""
    if effect_on_its_way(key=decision_key(application_id, submission)):
        return False
    decide(application_id=application_id, submission=submission)
    return True


def recheck_waitlist(*, pool_id: Any, coalesce: bool = False) -> bool:
    """Decide the pool's waitlist again. With `coalesce` (the periodic beat), nothing is
    written while a re-check of the pool waits to start. Answers whether one was written."""
    key = f"recheck:{pool_id}"
    if coalesce and effect_waiting(key=key):
        return False
    effect_add(
        task="allocations.tasks.recheck_waitlist",
        args=[str(pool_id)],
        queue=queues.DECISIONS,
        key=key,
    )
    return True


def run_backend_call(*, call_id: Any) -> None:
    """Carry out a recorded scheduler call."""
    effect_add(
        task="allocations.tasks.run_backend_call",
        args=[str(call_id)],
        queue=queues.SCHEDULER,
        key=f"backend-call:{call_id}",
    )


def backend_call_effect(*, call_id: Any) -> Effect:
    """`run_backend_call`'s row, unsaved: for `add_together`."""
    return Effect(
        task="allocations.tasks.run_backend_call",
        args=[str(call_id)],
        queue=queues.SCHEDULER,
        key=f"backend-call:{call_id}",
    )


def decision_mail_effect(*, application_id: Any, status: str) -> Effect:
    """`notify_application_decided`'s row, unsaved: for `add_together`."""
    return Effect(
        task="allocations.tasks.notify_application_decided",
        args=[str(application_id), status],
        queue=queues.MAIL,
    )


def add_together(rows: Sequence[Effect]) -> None:
    """Write the effects made by the functions above in one statement (an admission cycle's
    mails and scheduler calls); each is published after commit as one written alone."""
    effects_add(rows)


def notify_application_decided(*, application_id: Any, status: str) -> None:
    effect_add(
        task="allocations.tasks.notify_application_decided",
        args=[str(application_id), status],
        queue=queues.MAIL,
    )


def notify_usage_threshold(*, allocation_id: Any, threshold: int) -> None:
    effect_add(
        task="allocations.tasks.notify_usage_threshold",
        args=[str(allocation_id), threshold],
        queue=queues.MAIL,
    )


def notify_allocation_expiring(*, allocation_id: Any) -> None:
    effect_add(
        task="allocations.tasks.notify_allocation_expiring",
        args=[str(allocation_id)],
        queue=queues.MAIL,
    )
