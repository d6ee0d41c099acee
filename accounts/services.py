"""Writes of the accounts app: tokens, organizations, invitations, memberships, verification."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from accounts import authz, effects
from accounts.authz import Actor
from accounts.models import (
    AccessToken,
    IdempotencyKey,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipRole,
    Organization,
    TokenScope,
    User,
)
from audit.services import audit_record, snapshot
from portal.errors import (
    AlreadyInvited,
    AlreadyMember,
    InvalidCredentials,
    InvalidTransition,
    InvitationExpired,
    LastAdmin,
    NotVisible,
    ScopeNotAllowed,
    SourceTaken,
)

TOKEN_PREFIX = "pap_"


def token_digest(secret: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough (no brute force possible)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: AccessToken
    secret: str


def _check_scope(user: User, scope: str) -> None:
    """`usage:write` is the scope of scheduler service accounts, and the only one they hold."""
    if user.is_scheduler and scope != TokenScope.USAGE_WRITE:
        raise ScopeNotAllowed(
            gettext("A scheduler service account holds `usage:write` tokens only.")
        )
    if not user.is_scheduler and scope == TokenScope.USAGE_WRITE:
        raise ScopeNotAllowed()


def token_create(
    *,
    user: User,
    name: str,
    scope: str = TokenScope.FULL,
    expires_in_days: int | None = None,
    actor: Actor | None = None,
) -> IssuedToken:
    """Issue an access token. The secret is returned once and never stored.

    People hold `full` tokens; scheduler service accounts hold `usage:write` tokens, issued
    by an operator (`actor`, recorded in the audit trail). Any other pairing raises
    `ScopeNotAllowed` and writes nothing.
    """
    _check_scope(user, scope)
    days = expires_in_days or settings.PORTAL_TOKEN_DEFAULT_DAYS
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = AccessToken.objects.create(
            user=user,
            name=name,
            scope=scope,
            prefix=secret[:12],
            digest=token_digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit_record(
            actor=actor or user,
            verb="token.create",
            target=token,
            after=snapshot(token, ["name", "scope", "prefix", "expires_at"]),
        )
    return IssuedToken(token=token, secret=secret)


def token_obtain(
    *,
    request: HttpRequest | None,
    email: str,
    password: str,
    name: str,
    scope: str = TokenScope.FULL,
    expires_in_days: int | None = None,
) -> IssuedToken:
    """Exchange an email and password for a new token; wrong credentials write nothing.

    The email matches in any case, as invitations do: users added in the admin keep
    the case they were typed in, while the authentication backend compares exactly. Only
    people have passwords, so a `usage:write` scope is refused before anything is checked.
    """
    if scope == TokenScope.USAGE_WRITE:
        raise ScopeNotAllowed()
    stored = (
        User.objects.filter(email__iexact=email, is_active=True)
        .values_list("email", flat=True)
        .first()
    )
    user = authenticate(request, username=stored or email, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    assert isinstance(user, User)
    return token_create(user=user, name=name, scope=scope, expires_in_days=expires_in_days)


def scheduler_account_create(*, source: str, actor: Actor, name: str = "") -> User:
    """Create the scheduler service account of one usage source (a cluster). Operators only.

    The account has no usable password, no membership and is never staff: it only holds the
    `usage:write` tokens an operator issues it (`scheduler_token_issue`). One account per
    source (`SourceTaken` otherwise). The caller validated the source's form.
    """
    authz.require_operator(actor=actor)
    try:
        with transaction.atomic():
            account = User(
                email=f"{source}@scheduler.invalid",
                full_name=name or f"Scheduler {source}",
                scheduler_source=source,
            )
            account.set_unusable_password()
            account.save()
            audit_record(
                actor=actor,
                verb="scheduler_account.create",
                target=account,
                after={"scheduler_source": source, "email": account.email},
            )
    except IntegrityError as error:
        raise SourceTaken() from error
    return account


def scheduler_account_update(*, account: User, actor: Actor, name: str, is_active: bool) -> User:
    """Rename a scheduler service account or switch it off and on (operators). While it is
    off its tokens are refused and it is issued none. Audited; no change writes nothing."""
    authz.require_operator(actor=actor)
    with transaction.atomic():
        current = User.objects.select_for_update().get(
            pk=account.pk, scheduler_source__isnull=False
        )
        before = snapshot(current, ["full_name", "is_active"])
        current.full_name, current.is_active = name, is_active
        after = snapshot(current, ["full_name", "is_active"])
        if after != before:
            current.save(update_fields=["full_name", "is_active"])
            audit_record(
                actor=actor,
                verb="scheduler_account.update",
                target=current,
                before=before,
                after=after,
            )
    return current


def scheduler_token_issue(
    *, account: User, actor: Actor, name: str, expires_in_days: int | None = None
) -> IssuedToken:
    """An operator issues a `usage:write` token to a scheduler service account; the secret
    is returned once. A person's account raises `ScopeNotAllowed`; a deactivated scheduler
    account (whose tokens are refused) raises `InvalidTransition`."""
    authz.require_operator(actor=actor)
    if account.is_scheduler and not account.is_active:
        raise InvalidTransition(gettext("The scheduler account is deactivated: activate it first."))
    return token_create(
        user=account,
        name=name,
        scope=TokenScope.USAGE_WRITE,
        expires_in_days=expires_in_days,
        actor=actor,
    )


def token_revoke(*, token: AccessToken, actor: User) -> AccessToken:
    """Revoke a token; revoking a revoked token changes nothing."""
    with transaction.atomic():
        token = AccessToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(actor=actor, verb="token.revoke", target=token)
    return token


def token_touch(*, token: AccessToken) -> None:
    """Note when a token was last used, at most once a minute (one cheap UPDATE)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def token_purge_expired(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete tokens that expired or were revoked more than `older_than` ago."""
    cutoff = timezone.now() - older_than
    deleted, _ = AccessToken.objects.filter(expires_at__lt=cutoff).delete()
    revoked, _ = AccessToken.objects.filter(revoked_at__lt=cutoff).delete()
    return deleted + revoked


def idempotency_key_purge_expired() -> int:
    """Delete the idempotency keys whose time is up (a retry with one would act afresh
    anyway: an expired key is never replayed). Returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def organization_create(
    *, creator: User, name: str, kind: str, country: str, registry_number: str = ""
) -> Organization:
    """Create an organization; its creator becomes its first admin. Unverified."""
    with transaction.atomic():
        organization = Organization.objects.create(
            name=name, kind=kind, country=country, registry_number=registry_number
        )
        Membership.objects.create(
            user=creator, organization=organization, role=MembershipRole.ADMIN
        )
        audit_record(
            actor=creator,
            verb="organization.create",
            target=organization,
            after=snapshot(organization),
        )
    return organization


def organization_verify(*, organization: Organization, actor: Actor) -> Organization:
    """Mark an organization verified (operators only) and tell its admins, after commit.

    Verifying a verified organization changes nothing and sends nothing.
    """
    authz.require_operator(actor=actor)
    with transaction.atomic():
        organization = Organization.objects.select_for_update().get(pk=organization.pk)
        if organization.verified_at is not None:
            return organization
        before = snapshot(organization, ["verified_at", "verified_by_id"])
        organization.verified_at = timezone.now()
        organization.verified_by = authz.person(actor)
        organization.save(update_fields=["verified_at", "verified_by"])
        audit_record(
            actor=actor,
            verb="organization.verify",
            target=organization,
            before=before,
            after=snapshot(organization, ["verified_at", "verified_by_id"]),
        )
        effects.notify_organization_verified(organization_id=organization.pk)
    return organization


def organization_scheduler_sync(organization_id: Any) -> None:
    """The organization's members changed: its scheduler accounts follow them (the calls
    are queued in the caller's transaction and run after commit)."""
    from allocations.services.scheduler import scheduler_users_changed

    scheduler_users_changed(organization_id=organization_id)


def invitation_create(
    *, organization: Organization, email: str, role: str, actor: Actor
) -> Invitation:
    """Invite an email to the organization with a role (its admins, or operators) and mail
    the invitee after commit. Nothing tells whether the email has an account: the answer is
    the same either way. An email of a current member is refused (the admins see their
    members); so is one with a pending invitation. Earlier pending invitations of the email
    that expired are marked so first.

    Locks the organization's row, so that two admins inviting the same email at once make
    one invitation.
    """
    authz.require_organization_admin(actor=actor, organization_id=organization.pk)
    email = email.strip().lower()
    now = timezone.now()
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
            raise AlreadyMember()
        pending = Invitation.objects.filter(
            organization=organization, email=email, status=InvitationStatus.PENDING
        )
        pending.filter(expires_at__lte=now).update(status=InvitationStatus.EXPIRED)
        if pending.exists():
            raise AlreadyInvited()
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            invited_by=authz.person(actor),
            created_at=now,
            expires_at=now + timedelta(days=settings.PORTAL_INVITATION_DAYS),
        )
        audit_record(
            actor=actor,
            verb="invitation.create",
            target=organization,
            after={"invitation": str(invitation.pk), "email": email, "role": role},
        )
        effects.send_invitation(invitation_id=invitation.pk)
    return invitation


def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    """Withdraw a pending invitation (the organization's admins, or operators)."""
    authz.require_organization_admin(actor=actor, organization_id=invitation.organization_id)
    with transaction.atomic():
        current = Invitation.objects.select_for_update().get(pk=invitation.pk)
        _check_pending(current, "revoked")
        _close(current, status=InvitationStatus.REVOKED, verb="invitation.revoke", actor=actor)
    return current


def _close(invitation: Invitation, *, status: str, verb: str, actor: Actor) -> None:
    """Mark a pending, locked invitation answered without a membership, and audit it."""
    invitation.status = status
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    audit_record(
        actor=actor,
        verb=verb,
        target=invitation.organization,
        after={"invitation": str(invitation.pk), "email": invitation.email},
    )


def _check_pending(invitation: Invitation, verb: str) -> None:
    if invitation.status != InvitationStatus.PENDING:
        raise InvalidTransition(
            gettext("The invitation is %(status)s: it cannot be %(verb)s.")
            % {"status": invitation.status, "verb": verb}
        )
    if invitation.expires_at <= timezone.now():
        raise InvitationExpired()


def _lock_for_invitee(invitation: Invitation, user: User) -> Invitation:
    """The invitation, locked, if it was sent to this user's email; anyone else is told it
    does not exist."""
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    # A scheduler service account is no person: it joins no organization.
    person = user.is_active and user.scheduler_source is None
    if not person or current.email != user.email.lower():
        raise NotVisible()
    return current


def invitation_accept(*, invitation: Invitation, actor: User) -> Membership:
    """The invitee (signed in with the invited email) accepts: the membership is made now,
    with the invited role. Single use; an expired or answered invitation is refused.

    Locks the invitation, so that two acceptances at once make one membership.
    """
    with transaction.atomic():
        current = _lock_for_invitee(invitation, actor)
        _check_pending(current, "accepted")
        if Membership.objects.filter(user=actor, organization_id=current.organization_id).exists():
            raise AlreadyMember()
        membership = Membership.objects.create(
            user=actor, organization_id=current.organization_id, role=current.role
        )
        current.status = InvitationStatus.ACCEPTED
        current.accepted_by = actor
        current.responded_at = timezone.now()
        current.save(update_fields=["status", "accepted_by", "responded_at"])
        audit_record(
            actor=actor,
            verb="membership.add",
            target=current.organization,
            after={
                "user": str(actor.pk),
                "email": actor.email,
                "role": current.role,
                "invitation": str(current.pk),
            },
        )
        organization_scheduler_sync(current.organization_id)
    return membership


def invitation_decline(*, invitation: Invitation, actor: User) -> Invitation:
    """The invitee declines; no membership is made, and the invitation is used up."""
    with transaction.atomic():
        current = _lock_for_invitee(invitation, actor)
        _check_pending(current, "declined")
        _close(current, status=InvitationStatus.DECLINED, verb="invitation.decline", actor=actor)
    return current


def membership_remove(*, membership: Membership, actor: Actor) -> None:
    """Remove a member (its admins, or operators). The organization keeps at least one admin.

    Locks the organization's admin memberships so that two admins removing each other
    at once cannot leave it with none: the second finds it is no admin any more.
    """
    with transaction.atomic():
        admins = list(
            Membership.objects.select_for_update()
            .filter(organization_id=membership.organization_id, role=MembershipRole.ADMIN)
            .values_list("pk", flat=True)
        )
        # Checked under the lock: an admin removed a moment ago removes no one.
        authz.require_organization_admin(actor=actor, organization_id=membership.organization_id)
        if membership.role == MembershipRole.ADMIN and admins == [membership.pk]:
            raise LastAdmin()
        deleted, _ = Membership.objects.filter(pk=membership.pk).delete()
        if deleted:
            audit_record(
                actor=actor,
                verb="membership.remove",
                target=membership.organization,
                before={
                    "user": str(membership.user_id),
                    "email": membership.user.email,
                    "role": membership.role,
                },
            )
            organization_scheduler_sync(membership.organization_id)
