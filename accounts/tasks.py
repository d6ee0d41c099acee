"""Tasks of the accounts app: thin, taking ids, owning only their retry policy."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail


@shared_task(
    autoretry_for=(SMTPException, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def notify_organization_verified(organization_id: str) -> int:
    """Tell the admins of an organization that it was verified. Returns mails sent."""
    from accounts.models import MembershipRole, Organization

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or organization.verified_at is None:
        return 0
    recipients = list(
        organization.memberships.filter(role=MembershipRole.ADMIN, user__is_active=True)
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    if not recipients:
        return 0
    return send_mail(
        subject=f"{organization.name} is verified",
        message=(
            f"{organization.name} has been verified by the site's operators. Its members can "
            "now be granted GPU-hours in the programs it is eligible for."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )


@shared_task
def purge_expired_tokens() -> int:
    from accounts.services import token_purge_expired

    return token_purge_expired()
