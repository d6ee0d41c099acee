"""Tasks of the accounts app: thin, taking ids, owning only their retry policy."""

from __future__ import annotations

from celery import shared_task

from accounts import notifications
from accounts.services import idempotency_key_purge_expired, token_purge_expired
from portal.mail import mail_task, send


@mail_task
def notify_organization_verified(organization_id: str) -> int:
    """Tell the admins of an organization that it was verified. Returns mails sent."""
    from accounts.models import Organization

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or organization.verified_at is None:
        return 0
    return send(notifications.organization_verified(organization))


@mail_task
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
    return send(notifications.invitation(invitation))


@shared_task
def purge_expired_tokens() -> int:
    return token_purge_expired()


@shared_task
def purge_expired_idempotency_keys() -> int:
    return idempotency_key_purge_expired()
