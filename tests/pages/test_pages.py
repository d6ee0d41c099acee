"""The applicants' pages, through Django's test client: what they show, who sees what, and
that the apply form refuses what can never pass with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from accounts.models import MembershipRole
from allocations.models import Application
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(startup, fast_lane, pool, today, **overrides) -> dict:
    return {
        "organization": str(startup.pk),
        "program": str(fast_lane.pk),
        "pool": str(pool.pk),
        "title": "Sámi speech model",
        "gpu_hours": "2000",
        "start_date": str(today + timedelta(days=3)),
        "end_date": str(today + timedelta(days=12)),
        "risk_category": "minimal",
        "data_stays_in_eea": "on",
        **overrides,
    }


def test_the_home_page_says_what_the_site_offers_and_who_may_apply(fast_lane, pool):
    # when
    response = Client().get("/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "Who may apply" in page
    assert fast_lane.name in page
    assert "NO · startups · verified organizations" in " ".join(page.split())
    assert pool.name in page
    assert 'href="/sign-in/"' in page


def test_pages_for_people_ask_anonymous_visitors_to_sign_in():
    # when
    response = Client().get("/applications/")

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/sign-in/?next=/applications/")


def test_an_applicant_signs_in_with_a_password(founder):
    # given
    founder.set_password("a-long-password-9")
    founder.save()

    # when
    response = Client().post(
        "/sign-in/", {"username": founder.email, "password": "a-long-password-9"}
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_programs_page_shows_what_the_program_can_still_take_beside_the_pool(
    founder, fast_lane, pool, today
):
    # when
    response = _client(founder).get("/programs/")

    # then: the program's part (half the pool's 2,280 GPU-hours a day, and what others
    # lend) is told apart from the pool's free GPU-hours
    assert response.status_code == 200
    (row,) = response.context["rows"]
    (take,) = row.pools
    assert take.pool_free_today == 2280
    assert take.program_free_today < take.pool_free_today
    assert row.quota_left == fast_lane.org_cap_gpu_hours


def test_the_apply_form_refuses_what_can_never_pass_and_writes_nothing(
    founder, startup, fast_lane, pool, today
):
    # when
    response = _client(founder).post(
        "/apply/",
        _form(
            startup,
            fast_lane,
            pool,
            today,
            gpu_hours="60000",
            start_date=str(today - timedelta(days=1)),
        ),
    )

    # then
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["gpu_hours"] == ["Fast lane takes 10 to 50,000 GPU-hours per application."]
    assert errors["start_date"] == ["The window starts in the past."]
    assert Application.objects.count() == 0


def test_applying_submits_and_queues_the_decision(
    founder, startup, fast_lane, pool, today, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _client(founder).post("/apply/", _form(startup, fast_lane, pool, today))

    # then
    application = Application.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/applications/{application.pk}/"
    assert application.status == "submitted"
    assert len(callbacks) == 1


def test_the_application_page_polls_while_pending_and_stops_once_decided(draft, decide, founder):
    # given
    application = draft()
    client = _client(founder)
    from allocations.services.applications import application_submit

    application_submit(application=application, actor=founder)

    # when
    pending = client.get(f"/applications/{application.pk}/").content.decode()

    # then
    assert 'hx-trigger="every 2s"' in pending
    Application.objects.filter(pk=application.pk).update(
        status="approved", reasons=[{"code": "auto_approved", "message": "Fits."}]
    )
    decided = client.get(f"/applications/{application.pk}/status/").content.decode()
    assert "hx-trigger" not in decided
    assert "Approved automatically" in decided


def test_another_organizations_application_is_not_found(draft, rival):
    # given
    application = draft()
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=rival, role=MembershipRole.ADMIN)

    # when
    response = _client(stranger).get(f"/applications/{application.pk}/")

    # then
    assert response.status_code == 404


def test_the_waitlist_position_counts_who_is_ahead_in_the_pool(draft, founder, today):
    # given: two waitlisted applications of the same program, submitted one after the other
    from django.utils import timezone

    first, second = draft(title="first"), draft(title="second")
    now = timezone.now()
    Application.objects.filter(pk=first.pk).update(status="waitlisted", submitted_at=now)
    Application.objects.filter(pk=second.pk).update(
        status="waitlisted", submitted_at=now + timedelta(seconds=1)
    )

    # when
    response = _client(founder).get(f"/applications/{second.pk}/")

    # then
    assert response.context["position"] == 2
    assert "Place 2 on the pool" in response.content.decode()


def test_an_organization_admin_invites_and_a_member_may_not(founder, researcher, startup):
    # when
    response = _client(founder).post(
        f"/organizations/{startup.pk}/", {"email": "new@fjord.example", "role": "member"}
    )
    refused = _client(researcher).post(
        f"/organizations/{startup.pk}/", {"email": "other@fjord.example", "role": "member"}
    )

    # then
    assert response.status_code == 302
    assert startup.invitations.filter(email="new@fjord.example").exists()
    assert refused.status_code == 404
    assert not startup.invitations.filter(email="other@fjord.example").exists()


def test_an_organization_admin_removes_a_member(founder, researcher, startup):
    # when
    response = _client(founder).post(f"/organizations/{startup.pk}/members/{researcher.pk}/remove/")

    # then
    assert response.status_code == 302
    assert not startup.memberships.filter(user=researcher).exists()


def test_a_token_is_shown_once_and_can_be_revoked(founder):
    # given
    client = _client(founder)

    # when
    response = client.post("/tokens/", {"name": "laptop", "expires_in_days": "30"})

    # then
    secret = response.context["issued"].secret
    assert secret in response.content.decode()
    token = founder.tokens.get()
    assert secret not in client.get("/tokens/").content.decode()
    client.post(f"/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_the_admins_view_site_link_leads_to_a_page(operator):
    # when
    admin = _client(operator).get("/admin/")

    # then: "View site" links to /, which answers
    assert 'href="/"' in admin.content.decode()
    assert _client(operator).get("/").status_code == 200


def _invite(startup, founder, email, role="member"):
    from accounts.services import invitation_create

    return invitation_create(organization=startup, email=email, role=role, actor=founder)


def test_an_invitee_sees_the_invitation_at_home_and_accepts_it_on_the_invitations_page(
    founder, startup
):
    # given: an invitation to someone with an account and no membership
    newcomer = UserFactory(email="newcomer@uit.example")
    invitation = _invite(startup, founder, "newcomer@uit.example", role="admin")
    browser = _client(newcomer)

    # when: home points to it, the invitations page lists it, and the invitee accepts
    home = browser.get("/").content.decode()
    listed = browser.get("/invitations/").content.decode()
    accepted = browser.post(f"/invitations/{invitation.pk}/accept/")

    # then: the membership exists with the invited role; the page of the organization follows
    assert "You have an invitation to answer." in home
    assert startup.name in home
    assert f'action="/invitations/{invitation.pk}/accept/"' in listed
    assert founder.full_name in listed
    assert accepted.status_code == 302
    assert accepted["Location"] == f"/organizations/{startup.pk}/"
    membership = startup.memberships.get(user=newcomer)
    assert membership.role == MembershipRole.ADMIN
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert "No invitations to answer." in browser.get("/invitations/").content.decode()


def test_an_invitee_declines_and_no_membership_is_made(founder, startup):
    newcomer = UserFactory(email="newcomer@uit.example", language="nb")
    invitation = _invite(startup, founder, "newcomer@uit.example")
    browser = _client(newcomer)

    answer = browser.post(f"/invitations/{invitation.pk}/decline/", follow=True)

    assert "Du takket nei til invitasjonen fra" in answer.content.decode()
    assert not startup.memberships.filter(user=newcomer).exists()
    invitation.refresh_from_db()
    assert invitation.status == "declined"


def test_someone_elses_invitation_cannot_be_answered_and_a_used_one_says_why(
    founder, startup, researcher
):
    # given
    invitation = _invite(startup, founder, "newcomer@uit.example")
    newcomer = UserFactory(email="newcomer@uit.example")

    # when: another signed-in person tries, then the invitee answers twice
    stranger = _client(researcher).post(f"/invitations/{invitation.pk}/accept/")
    _client(newcomer).post(f"/invitations/{invitation.pk}/decline/")
    again = _client(newcomer).post(f"/invitations/{invitation.pk}/accept/", follow=True)

    # then
    assert stranger.status_code == 404
    assert "The invitation is declined: it cannot be accepted." in again.content.decode()
    assert not startup.memberships.filter(user=newcomer).exists()


def test_answering_an_invitation_needs_a_post(founder, startup):
    invitation = _invite(startup, founder, "newcomer@uit.example")
    newcomer = UserFactory(email="newcomer@uit.example")

    assert _client(newcomer).get(f"/invitations/{invitation.pk}/accept/").status_code == 405
