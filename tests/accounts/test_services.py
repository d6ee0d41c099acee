"""The accounts services, selectors, validators, audit helpers and tasks, called directly."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts import selectors, services, tasks
from accounts.models import (
    AccessToken,
    Invitation,
    Membership,
    MembershipRole,
    Organization,
)
from accounts.validators import validate_norwegian_organization_number
from audit.models import AuditEvent
from audit.services import audit_record, snapshot
from portal.errors import (
    AlreadyMember,
    InvalidCredentials,
    InvitationExpired,
    LastAdmin,
    NotAllowed,
    NotVisible,
)
from tests.accounts.bodies import audit_rows
from tests.bodies import audit_when
from tests.effects import queued as queued_effects
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _age(
    token: AccessToken, *, expired_days_ago: int | None = None, revoked_days_ago: int | None = None
) -> None:
    """Move a token into the past: expired and/or revoked that many days ago."""
    now = timezone.now()
    changes: dict[str, object] = {}
    if expired_days_ago is not None:
        changes["created_at"] = now - timedelta(days=expired_days_ago + 90)
        changes["expires_at"] = now - timedelta(days=expired_days_ago)
    if revoked_days_ago is not None:
        changes["revoked_at"] = now - timedelta(days=revoked_days_ago)
    AccessToken.objects.filter(pk=token.pk).update(**changes)


# --- validators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "923609016",
        "923 609 016",
        "974760673",  # the Brønnøysund registers themselves
        "923609040",  # a remainder of 0 makes the check digit 0
    ],
)
def test_a_norwegian_number_with_a_correct_check_digit_is_valid(number):
    # when / then: no error
    validate_norwegian_organization_number(number)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("923609017", "This Norwegian organization number fails its check digit."),
        ("923609130", "This Norwegian organization number fails its check digit."),  # check 10
        ("92360901", "A Norwegian organization number has nine digits."),
        ("9236090160", "A Norwegian organization number has nine digits."),
        ("92360901a", "A Norwegian organization number has nine digits."),
        ("", "A Norwegian organization number has nine digits."),
    ],
)
def test_a_norwegian_number_that_fails_its_check_is_invalid(number, message):
    # when
    with pytest.raises(ValidationError) as raised:
        validate_norwegian_organization_number(number)

    # then
    assert raised.value.code == "invalid_registry_number"
    assert raised.value.messages == [message]


# --- tokens ------------------------------------------------------------------------------------


def test_the_token_digest_is_the_sha256_of_the_secret():
    # when
    digest = services.token_digest("pap_secret")

    # then
    assert digest == hashlib.sha256(b"pap_secret").hexdigest()


def test_a_created_token_keeps_only_its_prefix_and_digest(member):
    # when
    issued = services.token_create(user=member, name="laptop")

    # then
    token = AccessToken.objects.get()
    assert re.fullmatch(r"pap_[A-Za-z0-9_-]{43}", issued.secret)
    assert token.prefix == issued.secret[:12]
    assert token.digest == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in repr(list(AccessToken.objects.values()))
    assert token.scope == "full"
    assert token.expires_at - token.created_at == timedelta(days=settings.PORTAL_TOKEN_DEFAULT_DAYS)


def test_two_tokens_never_share_a_secret(member):
    # when
    first = services.token_create(user=member, name="a")
    second = services.token_create(user=member, name="b")

    # then
    assert first.secret != second.secret
    assert first.token.digest != second.token.digest


def test_obtaining_a_token_with_the_right_password_creates_one(member):
    # when
    issued = services.token_obtain(
        request=None, email="Researcher@Fjord.Example", password=PASSWORD, name="cli"
    )

    # then
    assert issued.token.user == member
    assert AuditEvent.objects.filter(verb="token.create", actor=member).count() == 1


def test_obtaining_a_token_with_a_wrong_password_writes_nothing(member, counts):
    # given
    before = counts()

    # when
    with pytest.raises(InvalidCredentials):
        services.token_obtain(request=None, email=member.email, password="wrong", name="cli")

    # then
    assert counts() == before


def test_revoking_twice_records_one_revocation(member):
    # given
    issued = services.token_create(user=member, name="laptop")

    # when
    first = services.token_revoke(token=issued.token, actor=member)
    second = services.token_revoke(token=issued.token, actor=member)

    # then
    assert first.revoked_at is not None
    assert second.revoked_at == first.revoked_at
    assert [row["verb"] for row in audit_rows()] == ["token.create", "token.revoke"]


def test_touching_a_token_writes_at_most_once_a_minute(member, django_assert_num_queries):
    # given
    token = services.token_create(user=member, name="laptop").token

    # when / then: the first use writes, the next within a minute does not
    with django_assert_num_queries(1):
        services.token_touch(token=token)
    first = token.last_used_at
    with django_assert_num_queries(0):
        services.token_touch(token=token)
    assert token.last_used_at == first

    # when / then: more than a minute later it writes again
    token.last_used_at = timezone.now() - timedelta(minutes=2)
    with django_assert_num_queries(1):
        services.token_touch(token=token)
    token.refresh_from_db()
    assert token.last_used_at > first


def test_purging_deletes_tokens_expired_or_revoked_over_thirty_days_ago(member):
    # given
    issued = {
        name: services.token_create(user=member, name=name).token
        for name in ("active", "expired_long", "expired_lately", "revoked_long", "revoked_lately")
    }
    both = services.token_create(user=member, name="both_long").token
    _age(issued["expired_long"], expired_days_ago=31)
    _age(issued["expired_lately"], expired_days_ago=29)
    _age(issued["revoked_long"], revoked_days_ago=31)
    _age(issued["revoked_lately"], revoked_days_ago=29)
    _age(both, expired_days_ago=40, revoked_days_ago=45)

    # when
    purged = tasks.purge_expired_tokens()

    # then
    assert purged == 3
    assert sorted(AccessToken.objects.values_list("name", flat=True)) == [
        "active",
        "expired_lately",
        "revoked_lately",
    ]


# --- organizations -----------------------------------------------------------------------------


def test_a_created_organization_is_unverified_and_its_creator_is_admin(outsider):
    # when
    organization = services.organization_create(
        creator=outsider, name="Nordlys AS", kind="startup", country="NO", registry_number="1"
    )

    # then
    assert organization.verified_at is None
    assert list(organization.memberships.values_list("user", "role")) == [(outsider.pk, "admin")]
    assert [row["verb"] for row in audit_rows()] == ["organization.create"]


def test_verifying_sets_who_and_when_and_queues_the_mail_on_commit(
    operator, unverified, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        verified = services.organization_verify(organization=unverified, actor=operator)

    # then
    assert verified.verified_by == operator
    assert verified.verified_at is not None
    assert queued_effects(callbacks) == [
        ("accounts.tasks.notify_organization_verified", (str(unverified.pk),))
    ]
    assert audit_rows()[0]["after"] == {
        "verified_at": audit_when(verified.verified_at),
        "verified_by_id": str(operator.pk),
    }


def test_a_verification_rolled_back_queues_no_mail(
    operator, unverified, django_capture_on_commit_callbacks
):
    # given
    def verify_then_fail() -> None:
        with transaction.atomic():
            services.organization_verify(organization=unverified, actor=operator)
            raise RuntimeError("a later step of the same transaction failed")

    # when
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(RuntimeError),
    ):
        verify_then_fail()

    # then
    assert callbacks == []
    unverified.refresh_from_db()
    assert unverified.verified_at is None
    assert AuditEvent.objects.count() == 0


def test_verifying_twice_records_and_queues_once(
    operator, unverified, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = services.organization_verify(organization=unverified, actor=operator)
        second = services.organization_verify(organization=unverified, actor=operator)

    # then
    assert second.verified_at == first.verified_at
    assert len(callbacks) == 1
    assert AuditEvent.objects.filter(verb="organization.verify").count() == 1


# --- memberships -------------------------------------------------------------------------------


def test_an_invitation_is_matched_to_the_invitees_email_in_any_case(
    org_admin, organization, outsider
):
    # given
    invitation = services.invitation_create(
        organization=organization, email="SOMEONE@elsewhere.example", role="member", actor=org_admin
    )

    # when
    membership = services.invitation_accept(invitation=invitation, actor=outsider)

    # then
    assert invitation.email == "someone@elsewhere.example"
    assert (membership.user, membership.organization, membership.role) == (
        outsider,
        organization,
        "member",
    )


def test_inviting_an_existing_member_raises_and_leaves_the_transaction_usable(
    org_admin, member, organization, counts
):
    # given
    before = counts()

    # when: inside the caller's transaction, as in a request
    with transaction.atomic():
        with pytest.raises(AlreadyMember):
            services.invitation_create(
                organization=organization, email=member.email, role="admin", actor=org_admin
            )
        still_usable = Membership.objects.filter(user=member).count()

    # then
    assert still_usable == 1
    assert counts() == before
    assert not Invitation.objects.exists()


def test_an_invitation_to_an_unknown_email_makes_no_user(org_admin, organization, counts):
    # given
    before = counts()

    # when
    invitation = services.invitation_create(
        organization=organization, email="nobody@example.org", role="member", actor=org_admin
    )

    # then
    assert invitation.status == "pending"
    assert counts() == {
        **before,
        "audit_events": before["audit_events"] + 1,
        "invitations": before["invitations"] + 1,
    }


def test_only_the_invitee_accepts_and_an_expired_invitation_is_refused(
    org_admin, organization, outsider, member
):
    # given
    invitation = services.invitation_create(
        organization=organization, email=outsider.email, role="member", actor=org_admin
    )

    # when / then: someone else, even a member, is told it does not exist
    with pytest.raises(NotVisible):
        services.invitation_accept(invitation=invitation, actor=member)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    with pytest.raises(InvitationExpired):
        services.invitation_accept(invitation=invitation, actor=outsider)
    assert not Membership.objects.filter(user=outsider).exists()


def test_a_member_who_is_no_admin_cannot_invite_or_revoke(org_admin, member, organization):
    # given
    invitation = services.invitation_create(
        organization=organization, email="new@uit.example", role="member", actor=org_admin
    )

    # when / then
    with pytest.raises(NotAllowed):
        services.invitation_create(
            organization=organization, email="x@uit.example", role="admin", actor=member
        )
    with pytest.raises(NotAllowed):
        services.invitation_revoke(invitation=invitation, actor=member)
    assert list(Invitation.objects.values_list("email", "status")) == [
        ("new@uit.example", "pending")
    ]


def test_removing_the_only_admin_raises_and_keeps_them(org_admin, member, counts):
    # given
    membership = Membership.objects.get(user=org_admin)
    before = counts()

    # when / then
    with pytest.raises(LastAdmin):
        services.membership_remove(membership=membership, actor=org_admin)
    assert counts() == before


def test_removing_a_plain_member_needs_no_other_admin(org_admin, member):
    # given
    membership = Membership.objects.get(user=member)

    # when
    services.membership_remove(membership=membership, actor=org_admin)

    # then
    assert not Membership.objects.filter(user=member).exists()
    assert [row["verb"] for row in audit_rows()] == ["membership.remove"]


def test_removing_a_membership_already_gone_records_nothing(org_admin, member):
    # given
    membership = Membership.objects.get(user=member)
    Membership.objects.filter(pk=membership.pk).delete()

    # when
    services.membership_remove(membership=membership, actor=org_admin)

    # then
    assert AuditEvent.objects.count() == 0


# --- selectors ---------------------------------------------------------------------------------


def test_a_user_sees_only_organizations_they_belong_to(member, organization, operator):
    # given
    other = OrganizationFactory(name="Aurora")

    # when
    theirs = list(selectors.organization_list_for_user(user=member))
    everything = list(selectors.organization_list_for_user(user=operator))

    # then
    assert theirs == [organization]
    assert everything == [other, organization]
    with pytest.raises(Http404):
        selectors.organization_get_for_user(user=member, organization_id=other.pk)


def test_admins_and_operators_administer_an_organization_and_members_do_not(
    org_admin, member, operator, outsider, organization
):
    # when
    answers = {
        user.email: selectors.organization_is_admin(user=user, organization=organization)
        for user in (org_admin, member, operator, outsider)
    }

    # then
    assert answers == {
        org_admin.email: True,
        member.email: False,
        operator.email: True,
        outsider.email: False,
    }


def test_another_users_token_is_not_found(member, outsider):
    # given
    issued = services.token_create(user=outsider, name="theirs")

    # when / then
    with pytest.raises(Http404):
        selectors.token_get_for_user(user=member, token_id=issued.token.pk)


# --- audit -------------------------------------------------------------------------------------


def test_a_snapshot_is_plain_json(organization):
    # when
    values = snapshot(organization, ["name", "country", "verified_at", "verified_by_id"])

    # then
    assert values == {
        "name": "Fjord AI AS",
        "country": "NO",
        "verified_at": audit_when(organization.verified_at),
        "verified_by_id": None,
    }


def test_an_anonymous_actor_is_recorded_as_nobody(organization):
    # when
    event = audit_record(actor=AnonymousUser(), verb="test.event", target=organization)

    # then
    assert event.actor is None
    assert (event.target_id, event.target_repr) == (organization.pk, "Fjord AI AS (NO)")


# --- tasks -------------------------------------------------------------------------------------


def test_the_notification_mails_the_active_admins_only(organization, org_admin, member, mailoutbox):
    # given
    gone = UserFactory(email="former@fjord.example", is_active=False)
    MembershipFactory(user=gone, organization=organization, role=MembershipRole.ADMIN)

    # when
    sent = tasks.notify_organization_verified(str(organization.pk))

    # then
    assert sent == 1
    assert [mail.to for mail in mailoutbox] == [["cto@fjord.example"]]
    assert mailoutbox[0].from_email == settings.DEFAULT_FROM_EMAIL


@pytest.mark.parametrize("case", ["unknown", "unverified", "no_admins"])
def test_the_notification_sends_nothing_when_there_is_nothing_to_tell(
    organization, member, mailoutbox, case
):
    # given
    organization_id = str(organization.pk)
    if case == "unknown":
        organization_id = "00000000-0000-0000-0000-000000000000"
    elif case == "unverified":
        MembershipFactory(organization=organization, role=MembershipRole.ADMIN)
        Organization.objects.filter(pk=organization.pk).update(verified_at=None)

    # when
    sent = tasks.notify_organization_verified(organization_id)

    # then
    assert sent == 0
    assert mailoutbox == []
