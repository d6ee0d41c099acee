"""The admin shows invitations and revokes pending ones through the service."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import services
from accounts.models import Invitation, MembershipRole, Organization
from audit.models import AuditEvent
from tests.factories import MembershipFactory, OperatorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending() -> Invitation:
    organization = OrganizationFactory(name="Fjord AI AS")
    admin = MembershipFactory(organization=organization, role=MembershipRole.ADMIN).user
    return services.invitation_create(
        organization=organization, email="newcomer@uit.example", role="member", actor=admin
    )


def test_the_admin_lists_invitations_and_shows_them_on_the_organization(
    browser, admin_url, pending
):
    # when
    listed = browser.get(admin_url(Invitation, "changelist"))
    organization = browser.get(admin_url(Organization, "change", pending.organization_id))

    # then
    assert listed.status_code == 200
    assert "newcomer@uit.example" in listed.content.decode()
    assert organization.status_code == 200
    assert "newcomer@uit.example" in organization.content.decode()


def test_the_revoke_action_revokes_pending_invitations_through_the_service(
    browser, admin_url, superuser, pending, messages_of
):
    # when
    response = browser.post(
        admin_url(Invitation, "changelist"),
        {"action": "revoke_invitations", "_selected_action": [str(pending.pk)]},
    )

    # then
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == "revoked"
    event = AuditEvent.objects.get(verb="invitation.revoke")
    assert event.actor == superuser
    assert messages_of(response) == ["1 invitation(s) revoked."]


def test_staff_without_the_permission_cannot_revoke_invitations(admin_url, pending):
    # given
    client = Client()
    client.force_login(OperatorFactory())

    # when
    response = client.post(
        admin_url(Invitation, "changelist"),
        {"action": "revoke_invitations", "_selected_action": [str(pending.pk)]},
    )

    # then
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == "pending"
