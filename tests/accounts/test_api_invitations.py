"""Members join by invitation: an organization's admin invites an email with a role, the
person with that email (signed in) accepts or declines; only an acceptance makes the
membership. `organizations/{id}/invitations/`, `…/{invitation_id}/revoke/`, `invitations/`,
`invitations/{id}/accept/` and `…/decline/`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Invitation, Membership, MembershipRole, Organization, User
from accounts.tasks import send_invitation
from tests.accounts.bodies import NOT_AN_ADMIN, organization_body
from tests.bodies import MALFORMED_JSON, NOT_AUTHENTICATED, NOT_FOUND, invalid, page, when
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

NEWCOMER = "newcomer@uit.example"
METHOD_NOT_ALLOWED = {"code": "method_not_allowed", "message": 'Method "POST" not allowed.'}


def _queued(callbacks: list) -> list[tuple[str, tuple]]:
    """The tasks whose outbox rows the captured on-commit callbacks publish."""
    from outbox.models import Effect

    effects = [Effect.objects.get(pk=callback.args[0]) for callback in callbacks]
    return [(effect.task, tuple(effect.args)) for effect in effects]


def _invitations(organization: Organization) -> str:
    return f"/api/v1/organizations/{organization.pk}/invitations/"


def _invite(client, organization: Organization, email: str, role: str = "member") -> Any:
    return client.post(_invitations(organization), {"email": email, "role": role}, format="json")


def invitation_body(invitation: Invitation) -> dict[str, Any]:
    """As the organization's admins read it."""
    invitation.refresh_from_db()
    return {
        "id": str(invitation.pk),
        "email": invitation.email,
        "role": invitation.role,
        "status": invitation.status,
        "invited_by": invitation.invited_by.email if invitation.invited_by else None,
        "created_at": when(invitation.created_at),
        "expires_at": when(invitation.expires_at),
        "responded_at": when(invitation.responded_at),
    }


def received_body(invitation: Invitation, status: str | None = None) -> dict[str, Any]:
    """As the invitee reads it."""
    invitation.refresh_from_db()
    return {
        "id": str(invitation.pk),
        "organization": organization_body(invitation.organization),
        "role": invitation.role,
        "status": status or invitation.status,
        "created_at": when(invitation.created_at),
        "expires_at": when(invitation.expires_at),
    }


def _state() -> dict[str, Any]:
    """Everything an invitation request may write."""
    return {
        "users": sorted(User.objects.values_list("email", flat=True)),
        "memberships": sorted(
            Membership.objects.values_list("organization__name", "user__email", "role")
        ),
        "invitations": sorted(
            (str(row.pk), row.email, row.role, row.status, row.responded_at)
            for row in Invitation.objects.all()
        ),
    }


@pytest.fixture
def newcomer(db: None) -> User:
    return UserFactory(email=NEWCOMER)


@pytest.fixture
def invited(client_for, org_admin, organization) -> Invitation:
    """Invited as the admin typed the address, in capitals: the invitee still matches it."""
    response = _invite(client_for(org_admin), organization, NEWCOMER.upper())
    assert response.status_code == 201, response.json()
    return Invitation.objects.get(pk=response.json()["id"])


# --- members are no longer added by email ---------------------------------------------------


def test_members_are_no_longer_added_by_email(client_for, org_admin, organization, newcomer):
    # given
    before = _state()

    # when
    response = client_for(org_admin).post(
        f"/api/v1/organizations/{organization.pk}/members/", {"email": NEWCOMER}, format="json"
    )

    # then
    assert response.status_code == 405
    assert response.json() == METHOD_NOT_ALLOWED
    assert _state() == before


# --- POST organizations/{id}/invitations/ ---------------------------------------------------


def test_an_admin_invites_an_email_and_no_membership_exists_yet(
    client_for, org_admin, organization, newcomer, django_capture_on_commit_callbacks, mailoutbox
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = _invite(client_for(org_admin), organization, "NewComer@UiT.example", "admin")
    invitation = Invitation.objects.get()
    send_invitation(str(invitation.pk))

    # then
    assert response.status_code == 201
    assert _queued(callbacks) == [("accounts.tasks.send_invitation", (str(invitation.pk),))]
    assert response.json() == invitation_body(invitation)
    assert (invitation.email, invitation.role, invitation.status) == (NEWCOMER, "admin", "pending")
    assert invitation.expires_at - invitation.created_at == timedelta(days=14)
    assert not Membership.objects.filter(user=newcomer).exists()
    [mail] = mailoutbox
    assert mail.to == [NEWCOMER]
    assert mail.subject == "You are invited to join Fjord AI AS"
    assert (
        "(cto@fjord.example) invites you to join Fjord AI AS on the priority-access compute "
        "portal as an admin."
    ) in mail.body
    assert f"accept or decline: {settings.PORTAL_PUBLIC_URL}/invitations/" in mail.body
    assert f"portal invitations accept {invitation.pk}" in mail.body
    assert "No account has this address yet" not in mail.body


def test_no_mail_goes_out_for_an_invitation_revoked_before_it_was_sent(
    client_for, org_admin, organization, invited, mailoutbox
):
    # given
    client_for(org_admin).post(f"{_invitations(organization)}{invited.pk}/revoke/")

    # when
    sent = send_invitation(str(invited.pk))

    # then
    assert sent == 0
    assert mailoutbox == []


def test_the_answer_to_an_invitation_is_the_same_whether_or_not_the_email_has_an_account(
    client_for, org_admin, organization, newcomer
):
    # when: one email with an account, one without
    known = _invite(client_for(org_admin), organization, NEWCOMER)
    unknown = _invite(client_for(org_admin), organization, "nobody@uit.example")

    # then: the same status and the same fields, nothing about any account
    assert (known.status_code, unknown.status_code) == (201, 201)
    assert set(known.json()) == set(unknown.json())
    for body, email in ((known.json(), NEWCOMER), (unknown.json(), "nobody@uit.example")):
        assert {key: value for key, value in body.items() if key not in ("id",)} == {
            "email": email,
            "role": "member",
            "status": "pending",
            "invited_by": org_admin.email,
            "created_at": body["created_at"],
            "expires_at": body["expires_at"],
            "responded_at": None,
        }
    assert not User.objects.filter(email="nobody@uit.example").exists()


def test_an_operator_invites_to_any_organization(client_for, operator, newcomer):
    # given
    elsewhere = OrganizationFactory(name="Elsewhere AB", country="SE")

    # when
    response = _invite(client_for(operator), elsewhere, NEWCOMER)

    # then
    assert response.status_code == 201
    assert response.json() == invitation_body(Invitation.objects.get(organization=elsewhere))


def test_a_plain_member_may_not_invite_and_nothing_changes(
    client_for, member, organization, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    before = _state()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = _invite(client_for(member), organization, NEWCOMER)

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN
    assert _state() == before
    assert callbacks == []


def test_inviting_to_another_organization_answers_404_and_changes_nothing(client_for, org_admin):
    # given
    elsewhere = OrganizationFactory(name="Elsewhere AB", country="SE")
    before = _state()

    # when
    response = _invite(client_for(org_admin), elsewhere, NEWCOMER)

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert _state() == before


def test_inviting_needs_a_signed_in_user(api, organization):
    # when
    response = _invite(api, organization, NEWCOMER)

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_inviting_a_current_member_answers_409_like_the_members_list_shows(
    client_for, org_admin, member, organization
):
    # given
    before = _state()

    # when
    response = _invite(client_for(org_admin), organization, member.email.upper(), "admin")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "already_member",
        "message": "This user is already a member of the organization.",
    }
    assert _state() == before


def test_inviting_an_email_with_a_pending_invitation_answers_409(
    client_for, org_admin, organization, invited
):
    # given
    before = _state()

    # when
    response = _invite(client_for(org_admin), organization, NEWCOMER, "admin")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "already_invited",
        "message": "This email has a pending invitation; revoke it to invite again.",
    }
    assert _state() == before


def test_an_expired_invitation_does_not_stand_in_the_way_of_a_new_one(
    client_for, org_admin, organization, invited
):
    # given
    Invitation.objects.filter(pk=invited.pk).update(expires_at=timezone.now())

    # when
    response = _invite(client_for(org_admin), organization, NEWCOMER)

    # then
    assert response.status_code == 201
    assert Invitation.objects.get(pk=invited.pk).status == "expired"
    assert Invitation.objects.get(pk=response.json()["id"]).status == "pending"


def test_inviting_with_invalid_fields_answers_each_field(client_for, org_admin, organization):
    # given
    before = _state()

    # when
    response = client_for(org_admin).post(
        _invitations(organization),
        {"email": "not-an-email", "role": "owner", "user": "x"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "email": [("invalid", "Enter a valid email address.")],
            "role": [("invalid_choice", '"owner" is not a valid choice.')],
            "user": [("unknown_field", "This field is not one the request accepts.")],
        }
    )
    assert _state() == before


def test_inviting_with_malformed_json_answers_400(client_for, org_admin, organization):
    # when
    response = client_for(org_admin).post(
        _invitations(organization), "{", content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON
    assert not Invitation.objects.exists()


# --- GET organizations/{id}/invitations/ and revoke -----------------------------------------


def test_admins_list_the_organizations_invitations_newest_first(
    client_for, org_admin, organization, invited
):
    # given
    second = Invitation.objects.get(
        pk=_invite(client_for(org_admin), organization, "second@uit.example").json()["id"]
    )

    # when
    response = client_for(org_admin).get(_invitations(organization))

    # then
    assert response.status_code == 200
    assert response.json() == page([invitation_body(second), invitation_body(invited)])


def test_a_plain_member_does_not_list_invitations(client_for, member, organization, invited):
    # when
    response = client_for(member).get(_invitations(organization))

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN


def test_an_admin_revokes_a_pending_invitation_and_it_can_no_longer_be_accepted(
    client_for, org_admin, organization, invited, newcomer
):
    # when
    revoked = client_for(org_admin).post(f"{_invitations(organization)}{invited.pk}/revoke/")
    accepted = client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/accept/")

    # then
    assert revoked.status_code == 200
    assert revoked.json() == invitation_body(invited)
    assert revoked.json()["status"] == "revoked"
    assert accepted.status_code == 409
    assert accepted.json() == {
        "code": "invalid_transition",
        "message": "The invitation is revoked: it cannot be accepted.",
    }
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_plain_member_may_not_revoke(client_for, member, organization, invited):
    # given
    before = _state()

    # when
    response = client_for(member).post(f"{_invitations(organization)}{invited.pk}/revoke/")

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN
    assert _state() == before


def test_an_invitation_of_another_organization_is_not_found_for_revoking(
    client_for, org_admin, organization, invited
):
    # given: an admin of another organization
    elsewhere = OrganizationFactory(name="Elsewhere AB", country="SE")
    stranger = MembershipFactory(organization=elsewhere, role=MembershipRole.ADMIN).user

    # when
    response = client_for(stranger).post(f"{_invitations(elsewhere)}{invited.pk}/revoke/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert Invitation.objects.get(pk=invited.pk).status == "pending"


# --- the invitee: GET invitations/, accept, decline -----------------------------------------


def test_the_invitee_lists_their_pending_invitations_only(client_for, invited, newcomer):
    # given: one expired, one for someone else
    other = OrganizationFactory(name="Aurora AS")
    admin = MembershipFactory(organization=other, role=MembershipRole.ADMIN).user
    stale = Invitation.objects.get(pk=_invite(client_for(admin), other, NEWCOMER).json()["id"])
    Invitation.objects.filter(pk=stale.pk).update(expires_at=timezone.now())
    _invite(client_for(admin), other, "someone.else@uit.example")

    # when
    response = client_for(newcomer).get("/api/v1/invitations/")

    # then
    assert response.status_code == 200
    assert response.json() == page([received_body(invited)])


def test_the_invitee_accepts_and_becomes_a_member_with_the_role(
    client_for, invited, newcomer, organization
):
    # when
    response = client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/accept/")

    # then
    assert response.status_code == 200
    assert response.json() == {"organization": organization_body(organization), "role": "member"}
    assert Membership.objects.get(user=newcomer).organization == organization
    invited.refresh_from_db()
    assert (invited.status, invited.accepted_by) == ("accepted", newcomer)
    assert invited.responded_at is not None


def test_an_invitation_is_single_use(client_for, invited, newcomer):
    # given
    client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/accept/")
    before = _state()

    # when
    again = client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/accept/")
    declined = client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/decline/")

    # then
    assert again.status_code == 409
    assert again.json() == {
        "code": "invalid_transition",
        "message": "The invitation is accepted: it cannot be accepted.",
    }
    assert declined.status_code == 409
    assert _state() == before


def test_an_expired_invitation_cannot_be_accepted(client_for, invited, newcomer):
    # given
    Invitation.objects.filter(pk=invited.pk).update(expires_at=timezone.now())
    before = _state()

    # when
    response = client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/accept/")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invitation_expired",
        "message": "The invitation has expired; ask the organization's admins for a new one.",
    }
    assert _state() == before


def test_the_invitee_declines_and_no_membership_is_made(client_for, invited, newcomer):
    # when
    response = client_for(newcomer).post(f"/api/v1/invitations/{invited.pk}/decline/")

    # then
    assert response.status_code == 200
    assert response.json() == received_body(invited, status="declined")
    assert not Membership.objects.filter(user=newcomer).exists()


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_someone_with_another_email_cannot_see_or_answer_an_invitation(
    client_for, invited, org_admin, outsider, action
):
    # given
    before = _state()

    # when: neither a stranger nor the admin who sent it may answer for the invitee
    stranger = client_for(outsider).post(f"/api/v1/invitations/{invited.pk}/{action}/")
    inviter = client_for(org_admin).post(f"/api/v1/invitations/{invited.pk}/{action}/")

    # then
    assert (stranger.status_code, inviter.status_code) == (404, 404)
    assert stranger.json() == NOT_FOUND
    assert _state() == before
    assert client_for(outsider).get("/api/v1/invitations/").json() == page([])


def test_answering_an_invitation_needs_a_signed_in_user(api, invited):
    # when
    response = api.post(f"/api/v1/invitations/{invited.pk}/accept/")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert Invitation.objects.get(pk=invited.pk).status == "pending"
