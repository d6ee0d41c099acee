"""The accounts' mails in the reader's language, with a link to the page where they act: an
organization verified (to its admins), an invitation (to the invitee; both languages where
the address has no account, since nothing says which one its holder reads)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.mail import EmailMessage

from accounts.models import MembershipRole
from accounts.services import invitation_create, organization_verify
from accounts.tasks import notify_organization_verified, send_invitation
from tests.factories import MembershipFactory, OperatorFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization() -> Any:
    organization = OrganizationFactory(name="Fjord AI AS", verified_at=None)
    admin = UserFactory(email="cto@fjord.example", full_name="Kari Nordmann", language="nb")
    MembershipFactory(user=admin, organization=organization, role=MembershipRole.ADMIN)
    other = UserFactory(email="ceo@fjord.example", language="en")
    MembershipFactory(user=other, organization=organization, role=MembershipRole.ADMIN)
    return organization


def test_the_verified_mail_goes_to_each_admin_in_their_stored_language(
    organization: Any, mailoutbox: list[EmailMessage]
) -> None:
    organization_verify(organization=organization, actor=OperatorFactory())

    sent = notify_organization_verified(str(organization.pk))

    assert sent == 2
    by_reader = {tuple(message.to): message for message in mailoutbox}
    norwegian, english = by_reader[("cto@fjord.example",)], by_reader[("ceo@fjord.example",)]
    assert norwegian.subject == "Fjord AI AS er verifisert"
    assert f"Se hva programmene deres fortsatt kan gi, og søk: {settings.PORTAL_PUBLIC_URL}" in (
        norwegian.body
    )
    assert english.subject == "Fjord AI AS is verified"
    assert f"and apply: {settings.PORTAL_PUBLIC_URL}/programs/" in english.body


def test_an_invitation_to_an_account_is_in_its_language_with_the_link(
    organization: Any, mailoutbox: list[EmailMessage]
) -> None:
    # given: the invitee has an account and chose Norwegian
    UserFactory(email="forsker@uit.example", language="nb")
    inviter = organization.memberships.get(user__email="cto@fjord.example").user
    invitation = invitation_create(
        organization=organization, email="forsker@uit.example", role="member", actor=inviter
    )

    # when
    send_invitation(str(invitation.pk))

    # then
    [mail] = mailoutbox
    assert mail.to == ["forsker@uit.example"]
    assert mail.subject == "Du er invitert til Fjord AI AS"
    assert (
        "Kari Nordmann (cto@fjord.example) inviterer deg til å bli med i Fjord AI AS" in mail.body
    )
    assert "som medlem." in mail.body
    assert f"takk ja eller nei: {settings.PORTAL_PUBLIC_URL}/invitations/" in mail.body
    assert "Ingen konto har denne adressen" not in mail.body
    assert "You are invited" not in mail.body


def test_an_invitation_to_an_address_without_an_account_is_in_both_languages(
    organization: Any, mailoutbox: list[EmailMessage]
) -> None:
    inviter = organization.memberships.get(user__email="ceo@fjord.example").user
    invitation = invitation_create(
        organization=organization, email="new@uio.example", role="admin", actor=inviter
    )

    send_invitation(str(invitation.pk))

    [mail] = mailoutbox
    assert mail.subject == "You are invited to join Fjord AI AS / Du er invitert til Fjord AI AS"
    english, norwegian = mail.body.index("invites you to join"), mail.body.index("inviterer deg")
    assert english < norwegian  # the site's default language first
    assert "No account has this address yet" in mail.body
    assert "Ingen konto har denne adressen ennå" in mail.body
    assert "as an admin." in mail.body
    assert "som administrator." in mail.body
    assert mail.body.count(f"{settings.PORTAL_PUBLIC_URL}/invitations/") == 2
