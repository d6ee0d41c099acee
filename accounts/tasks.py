"""Tasks of the accounts app: thin, taking ids, owning only their retry policy."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.core.mail import EmailMessage, get_connection

from accounts import notifications
from outbox.tasks import EffectTask


def _send(messages: list[EmailMessage]) -> int:
    """Send the composed mails (one per language among the recipients); how many went."""
    if not messages:
        return 0
    return get_connection().send_messages(messages) or 0


@shared_task(
    base=EffectTask,
    autoretry_for=(SMTPException, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def notify_organization_verified(organization_id: str) -> int:
    """Tell the admins of an organization that it was verified. Returns mails sent."""
    from accounts.models import Organization

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or organization.verified_at is None:
        return 0
    return _send(notifications.organization_verified(organization))


@shared_task(
    base=EffectTask,
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
    return _send(notifications.invitation(invitation))


@shared_task
def purge_expired_tokens() -> int:
    from accounts.services import token_purge_expired

    return token_purge_expired()


@shared_task
def purge_expired_idempotency_keys() -> int:
    from accounts.services import idempotency_key_purge_expired

    return idempotency_key_purge_expired()
