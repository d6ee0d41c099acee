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


@shared_task(
    autoretry_for=(SMTPException, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def send_invitation(invitation_id: str) -> int:
    """Mail the invitee, while the invitation is still pending. Returns mails sent."""
    from django.utils import timezone

    from accounts.models import Invitation, InvitationStatus

    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=invitation_id, status=InvitationStatus.PENDING)
        .first()
    )
    if invitation is None or invitation.expires_at <= timezone.now():
        return 0
    organization = invitation.organization
    role = "an admin" if invitation.role == "admin" else "a member"
    inviter = invitation.invited_by.email if invitation.invited_by else "The site's operators"
    return send_mail(
        subject=f"You are invited to join {organization.name}",
        message=(
            f"{inviter} invites you to join {organization.name} on the GPU portal as {role}.\n\n"
            f"Sign in with this email address ({invitation.email}) and accept or decline: "
            f"POST /api/v1/invitations/{invitation.pk}/accept/ (or decline/), or "
            f"`portal invitations accept {invitation.pk}`. Your pending invitations are "
            "listed at GET /api/v1/invitations/.\n\n"
            f"The invitation expires on {invitation.expires_at:%Y-%m-%d %H:%M %Z}. If you did "
            "not expect it, ignore this mail: nothing happens unless you accept."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


@shared_task
def purge_expired_tokens() -> int:
    from accounts.services import token_purge_expired

    return token_purge_expired()


@shared_task
def purge_expired_idempotency_keys() -> int:
    from accounts.services import idempotency_key_purge_expired

    return idempotency_key_purge_expired()
