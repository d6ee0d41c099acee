"""Tasks of the allocations app: thin, taking ids, owning only their retry policy.

The services they call are idempotent, so a redelivered message (acks_late, a killed
worker) or a task queued twice decides nothing twice.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from outbox.tasks import EffectTask
from portal.mail import mail_task, send

# A deadlock, a serialization failure or a dropped connection on PostgreSQL, or a busy SQLite
# file, is worth another try (the services re-read everything under lock); a constraint
# violation or a programming error is not.
TRANSIENT = (OperationalError, InterfaceError)

# A decision queued as an outbox effect: claimed by delivery, retried with backoff (at most a
# minute apart) on a transient database error.
decision_task = shared_task(
    base=EffectTask,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)


@decision_task
def decide_application(application_id: str, submission: int) -> str | None:
    """Run the checks of a submitted application and record the decision."""
    from allocations.services.applications import application_decide

    application = application_decide(application_id=application_id, submission=submission)
    return application.status if application is not None else None


@decision_task
def recheck_waitlist(pool_id: str) -> int:
    """Capacity freed in a pool: decide its waitlisted applications again, in order."""
    from allocations.services.applications import waitlist_recheck

    return waitlist_recheck(pool_id=pool_id)


@shared_task
def recheck_all_waitlists() -> int:
    """The periodic safety net: queue a waitlist re-check for every pool with a waitlist."""
    from allocations.services.applications import waitlists_recheck_all

    return waitlists_recheck_all()


@shared_task
def requeue_stale_applications() -> int:
    """Applications left in `submitted` (a lost message, a killed worker) are queued again."""
    from allocations.services.applications import application_requeue_stale

    return application_requeue_stale()


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def advance_allocations() -> dict[str, int]:
    """Start the allocations whose first day has come, expire those whose last has passed."""
    from allocations.services.allocations import allocation_advance

    return allocation_advance()


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def expire_holds() -> int:
    """Reject applications still in review or waitlisted once their window has started."""
    from allocations.services.applications import application_expire_holds

    return application_expire_holds()


@mail_task
def notify_application_decided(application_id: str, status: str) -> int:
    """Tell the applicant and the organization's admins about a decision. Returns mails sent.

    Sends nothing if the application has moved on since (a later decision sends its own).
    """
    from allocations import notifications

    application = notifications.application_for_mail(application_id)
    if application is None or application.status != status:
        return 0
    return send(notifications.application_decided(application))


@mail_task
def notify_usage_threshold(allocation_id: str, threshold: int) -> int:
    """Tell the organization's admins that an allocation reached 75, 90 or 100 % of its hours."""
    from allocations import notifications

    allocation = notifications.allocation_for_mail(allocation_id)
    if allocation is None:
        return 0
    return send(notifications.usage_threshold(allocation, threshold))


@shared_task(base=EffectTask, bind=True, max_retries=10)
def run_backend_call(self: Any, call_id: str) -> str:
    """Carry out a scheduler call; a failure is retried with exponential backoff."""
    from allocations.backends import BackendError
    from allocations.services.scheduler import backend_call_run

    try:
        return str(backend_call_run(call_id=call_id).outcome)
    except BackendError as error:
        raise self.retry(exc=error, countdown=min(2**self.request.retries * 10, 3600)) from error


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def pull_usage() -> dict[str, int]:
    """Ask the scheduler backend for the usage of the last two days and ingest it."""
    from datetime import timedelta

    from django.utils import timezone

    from allocations.services.usage import usage_pull

    return usage_pull(since=timezone.now() - timedelta(days=2))


@shared_task
def check_scheduler() -> int:
    """Compare the scheduler with the portal's intent without changing it; the drift found is
    kept for /metrics. Answers the number of drifted accounts."""
    from allocations.services.scheduler import scheduler_reconcile

    return len(scheduler_reconcile(apply=False).drifted_accounts)


@mail_task
def notify_allocation_expiring(allocation_id: str) -> int:
    """Tell the organization's members that an allocation ends within seven days."""
    from allocations import notifications

    allocation = notifications.allocation_for_mail(allocation_id)
    if allocation is None:
        return 0
    return send(notifications.allocation_expiring(allocation))
