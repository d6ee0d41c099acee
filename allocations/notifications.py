"""The mails people get about their applications and allocations: plain subjects, the next
step, a link to the page where they act, in each recipient's language (Norwegian bokmål or
English). The tasks send what these functions compose; `portal.mail` composes them, from a
template per language, `allocations/email/<name>.<language>.txt`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from accounts.models import MembershipRole, User
from allocations.models import Allocation, Application, ApplicationStatus
from allocations.reasons import lazily_translated
from portal import mail

WAITLIST_BEAT = "recheck-all-waitlists"


def application_link(application: Application) -> str:
    """The application's page for applicants, or its API resource where no page exists."""
    return mail.page_link(
        "pages:application",
        f"/api/v1/applications/{application.pk}/",
        application_id=application.pk,
    )


def allocations_link() -> str:
    return mail.page_link("pages:allocations", "/api/v1/allocations/")


def waitlist_recheck_minutes() -> int:
    """How often the beat looks at every waitlist, besides each release of capacity."""
    entry = getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get(WAITLIST_BEAT, {})
    schedule = entry.get("schedule", timedelta(minutes=10))
    seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else float(schedule)
    return max(round(seconds / 60), 1)


def compose(name: str, users: Iterable[User], context: dict[str, Any]) -> list[EmailMessage]:
    """One mail per language among the recipients, from `allocations/email/<name>.*.txt`."""
    return mail.compose(f"allocations/email/{name}", users, context)


def _active_admins(organization: Any) -> list[User]:
    return [
        membership.user
        for membership in organization.memberships.filter(
            role=MembershipRole.ADMIN, user__is_active=True
        ).select_related("user")
    ]


def application_decided(application: Application) -> list[EmailMessage]:
    """To the applicant and the organization's admins: the decision, its reasons, what
    happens next, and the program's published turnaround."""
    people = {application.applicant.pk: application.applicant}
    people.update({user.pk: user for user in _active_admins(application.organization)})
    recipients = [user for user in people.values() if user.is_active]
    program = application.program
    due = (
        timezone.localdate(application.submitted_at) + timedelta(days=program.turnaround_days)
        if application.submitted_at
        else None
    )
    context = {
        "application": application,
        "organization": application.organization,
        "program": program,
        "pool": application.pool,
        "status": application.status,
        "statuses": ApplicationStatus,
        "reasons": lazily_translated(application.reasons),
        "link": application_link(application),
        "due": due,
        "recheck_minutes": waitlist_recheck_minutes(),
        "gpu_hours": f"{application.gpu_hours:,}",
    }
    return compose("application_decided", recipients, context)


def usage_threshold(allocation: Allocation, threshold: int) -> list[EmailMessage]:
    """To the organization's admins: an allocation reached 75, 90 or 100 % of its hours."""
    context = {
        "allocation": allocation,
        "title": allocation.application.title,
        "organization": allocation.organization,
        "threshold": threshold,
        "used": f"{allocation.used_gpu_hours:,.2f}",
        "granted": f"{allocation.granted_gpu_hours:,}",
        "link": allocations_link(),
    }
    return compose("usage_threshold", _active_admins(allocation.organization), context)


def allocation_expiring(allocation: Allocation) -> list[EmailMessage]:
    """To the organization's members: an allocation ends within seven days."""
    members = [
        membership.user
        for membership in allocation.organization.memberships.filter(
            user__is_active=True
        ).select_related("user")
    ]
    context = {
        "allocation": allocation,
        "title": allocation.application.title,
        "organization": allocation.organization,
        "remaining": f"{allocation.remaining_gpu_hours:,.2f}",
        "granted": f"{allocation.granted_gpu_hours:,}",
        "link": allocations_link(),
    }
    return compose("allocation_expiring", members, context)


def application_for_mail(application_id: str) -> Application | None:
    """The application with what its mails name (applicant, organization, program, pool)."""
    return (
        Application.objects.select_related("applicant", "organization", "program", "pool")
        .filter(pk=application_id)
        .first()
    )


def allocation_for_mail(allocation_id: str) -> Allocation | None:
    """The allocation with what its mails name (organization, application)."""
    return (
        Allocation.objects.select_related("organization", "application")
        .filter(pk=allocation_id)
        .first()
    )
