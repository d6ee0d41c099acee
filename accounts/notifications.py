"""The mails of the accounts app, in each recipient's language with a link to the page where
they act: an organization verified (to its admins), an invitation (to the invitee). The tasks
send what these functions compose; `portal.mail` composes them from
`accounts/email/<name>.<language>.txt`."""

from __future__ import annotations

from django.core.mail import EmailMessage

from accounts.models import Invitation, MembershipRole, Organization, User
from portal import mail


def organization_verified(organization: Organization) -> list[EmailMessage]:
    """To the organization's active admins: it is verified, and where to apply now."""
    admins = [
        membership.user
        for membership in organization.memberships.filter(
            role=MembershipRole.ADMIN, user__is_active=True
        ).select_related("user")
    ]
    context = {
        "organization": organization,
        "link": mail.page_link("pages:programs", "/api/v1/programs/"),
    }
    return mail.compose("accounts/email/organization_verified", admins, context)


def invitation(invitation: Invitation) -> list[EmailMessage]:
    """To the invitee: who invites them, as what, and the page where they accept. An address
    with an account gets its holder's language; one without gets every language the portal
    speaks, since nothing says which one they read."""
    inviter = invitation.invited_by
    holder = User.objects.filter(email__iexact=invitation.email, is_active=True).first()
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "inviter": (
            f"{inviter.full_name} ({inviter.email})"
            if inviter and inviter.full_name
            else (inviter.email if inviter else "")
        ),
        "admin": invitation.role == MembershipRole.ADMIN,
        "has_account": holder is not None,
        "link": mail.page_link("pages:invitations", "/api/v1/invitations/"),
    }
    if holder is None:
        return [mail.compose_for_all("accounts/email/invitation", invitation.email, context)]
    [message] = mail.compose("accounts/email/invitation", [holder], context)
    message.to = [invitation.email]
    return [message]
