"""Reads of the accounts app, each scoped to who asks."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import (
    AccessToken,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipRole,
    Organization,
    User,
)
from portal.queries import first_or_404


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    """Operators see every organization; others those they belong to."""
    organizations = Organization.objects.all()
    if not user.is_staff:
        organizations = organizations.filter(memberships__user=user)
    return organizations.order_by("name", "id")


def organization_get_for_user(*, user: User, organization_id: UUID | str) -> Organization:
    """One organization the user may see; any other answers 404."""
    return first_or_404(organization_list_for_user(user=user).filter(pk=organization_id))


def organization_is_admin(*, user: User, organization: Organization) -> bool:
    return (
        user.is_staff
        or Membership.objects.filter(
            user=user, organization=organization, role=MembershipRole.ADMIN
        ).exists()
    )


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email")
    )


def membership_get(*, organization: Organization, user_id: UUID | str) -> Membership:
    return first_or_404(membership_list(organization=organization).filter(user_id=user_id))


def token_list_for_user(*, user: User) -> QuerySet[AccessToken]:
    return AccessToken.objects.filter(user=user).order_by("-created_at")


def token_get_for_user(*, user: User, token_id: UUID | str) -> AccessToken:
    return first_or_404(token_list_for_user(user=user).filter(pk=token_id))


def user_with_memberships(*, user: User) -> User:
    return User.objects.prefetch_related("memberships__organization").get(pk=user.pk)


def scheduler_account_list() -> QuerySet[User]:
    """The scheduler service accounts (operators only: the caller checks)."""
    return User.objects.filter(scheduler_source__isnull=False).order_by("scheduler_source", "id")


def scheduler_account_get(*, account_id: UUID | str) -> User:
    return first_or_404(scheduler_account_list().filter(pk=account_id))


def invitation_list(*, organization: Organization) -> QuerySet[Invitation]:
    """Every invitation of the organization, newest first (for its admins)."""
    return (
        Invitation.objects.filter(organization=organization)
        .select_related("invited_by")
        .order_by("-created_at", "id")
    )


def invitation_get(*, organization: Organization, invitation_id: UUID | str) -> Invitation:
    return first_or_404(invitation_list(organization=organization).filter(pk=invitation_id))


def invitation_list_for_invitee(*, user: User) -> QuerySet[Invitation]:
    """The invitations sent to the user's email that can still be answered, newest first."""
    return (
        Invitation.objects.filter(
            email=user.email.lower(),
            status=InvitationStatus.PENDING,
            expires_at__gt=timezone.now(),
        )
        .select_related("organization")
        .order_by("-created_at", "id")
    )


def invitation_get_for_invitee(*, user: User, invitation_id: UUID | str) -> Invitation:
    """One invitation sent to the user's email, in any status (answering a used one is a
    conflict, not a mystery); anyone else's answers 404."""
    return first_or_404(
        Invitation.objects.filter(pk=invitation_id, email=user.email.lower()).select_related(
            "organization"
        )
    )
