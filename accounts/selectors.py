"""Reads of the accounts app, each scoped to who asks."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404
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


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    """Operators see every organization; others those they belong to."""
    organizations = Organization.objects.all()
    if not user.is_staff:
        organizations = organizations.filter(memberships__user=user)
    return organizations.order_by("name", "id")


def organization_get_for_user(*, user: User, organization_id: UUID | str) -> Organization:
    """One organization the user may see; any other answers 404."""
    organization = organization_list_for_user(user=user).filter(pk=organization_id).first()
    if organization is None:
        raise Http404
    return organization


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
    membership = membership_list(organization=organization).filter(user_id=user_id).first()
    if membership is None:
        raise Http404
    return membership


def token_list_for_user(*, user: User) -> QuerySet[AccessToken]:
    return AccessToken.objects.filter(user=user).order_by("-created_at")


def token_get_for_user(*, user: User, token_id: UUID | str) -> AccessToken:
    token = token_list_for_user(user=user).filter(pk=token_id).first()
    if token is None:
        raise Http404
    return token


def user_with_memberships(*, user: User) -> User:
    return User.objects.prefetch_related("memberships__organization").get(pk=user.pk)


def scheduler_account_list() -> QuerySet[User]:
    """The scheduler service accounts (operators only: the caller checks)."""
    return User.objects.filter(scheduler_source__isnull=False).order_by("scheduler_source", "id")


def scheduler_account_get(*, account_id: UUID | str) -> User:
    account = scheduler_account_list().filter(pk=account_id).first()
    if account is None:
        raise Http404
    return account


def invitation_list(*, organization: Organization) -> QuerySet[Invitation]:
    """Every invitation of the organization, newest first (for its admins)."""
    return (
        Invitation.objects.filter(organization=organization)
        .select_related("invited_by")
        .order_by("-created_at", "id")
    )


def invitation_get(*, organization: Organization, invitation_id: UUID | str) -> Invitation:
    invitation = invitation_list(organization=organization).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404
    return invitation


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
    invitation = (
        Invitation.objects.filter(pk=invitation_id, email=user.email.lower())
        .select_related("organization")
        .first()
    )
    if invitation is None:
        raise Http404
    return invitation
