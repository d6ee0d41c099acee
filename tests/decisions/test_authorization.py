"""Who may decide, release, suspend and resume: the services check it themselves, so the
API, the admin's actions and the tasks obey the same rules."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.authz import SYSTEM
from accounts.models import Membership, MembershipRole, User
from allocations.models import Allocation, AllocationStatus, Application, BackendCall
from allocations.models.demand import ReviewQueueItem
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from audit.models import AuditEvent
from portal.errors import NotAllowed
from tests.decisions.bodies import NOT_AN_ADMIN
from tests.factories import MembershipFactory, OperatorFactory

pytestmark = pytest.mark.django_db

RELEASE = "/api/v1/allocations/{}/release/"


@pytest.fixture
def in_review(draft, decide) -> Application:
    return decide(draft(gpu_hours=12_000))


@pytest.fixture
def granted(draft, decide, window) -> Allocation:
    return Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(1, 10))))


def _staff_with(*codenames: str, email: str = "staff@narvik.example") -> User:
    """A staff user holding exactly these permissions of the allocations app."""
    user = OperatorFactory(email=email)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="allocations", codename__in=codenames)
    )
    return User.objects.get(pk=user.pk)  # a fresh row: no cached permissions


def _browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _changelist(model: type) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- the services directly -------------------------------------------------------------------


def test_a_member_who_is_no_reviewer_cannot_approve_through_the_service(
    in_review, founder, snapshot
):
    # given
    before = snapshot()

    # when / then
    with pytest.raises(NotAllowed) as refusal:
        services.application_approve(application=in_review, actor=founder, note="mine")
    assert refusal.value.message == "Only reviewers of the application's program may decide it."
    assert Application.objects.get(pk=in_review.pk).status == "in_review"
    assert snapshot() == before


@pytest.mark.parametrize("decide_with", ["approve", "reject"])
def test_a_reviewer_cannot_decide_their_own_organizations_application_through_the_service(
    in_review, reviewer, startup, snapshot, decide_with
):
    # given: the reviewer also works at the applying startup
    MembershipFactory(user=reviewer, organization=startup, role=MembershipRole.MEMBER)
    before = snapshot()
    decide = getattr(services, f"application_{decide_with}")

    # when / then
    with pytest.raises(NotAllowed) as refusal:
        decide(application=in_review, actor=reviewer, note="mine")
    assert refusal.value.message == (
        "Reviewers do not decide their own organization's applications."
    )
    assert Application.objects.get(pk=in_review.pk).status == "in_review"
    assert snapshot() == before


def test_a_rejection_without_an_actor_is_refused(in_review, snapshot):
    # given
    before = snapshot()

    # when / then: no identity is no bypass
    with pytest.raises(NotAllowed):
        services.application_reject(application=in_review, actor=None, note="none")  # type: ignore[arg-type]
    assert Application.objects.get(pk=in_review.pk).status == "in_review"
    assert snapshot() == before


def test_the_system_rejects_and_the_trail_names_no_person(in_review):
    # when
    services.application_reject(
        application=in_review, actor=SYSTEM, note="The window started.", code="hold_expired"
    )

    # then
    assert Application.objects.get(pk=in_review.pk).status == "rejected"
    event = AuditEvent.objects.filter(target_id=in_review.pk).latest("created_at")
    assert event.actor is None


def test_a_member_who_is_no_admin_cannot_release_through_the_service(granted, researcher, snapshot):
    # given
    before = snapshot()

    # when / then
    with pytest.raises(NotAllowed) as refusal:
        allocation_services.allocation_release(allocation=granted, actor=researcher)
    assert refusal.value.message == NOT_AN_ADMIN["message"]
    assert snapshot() == before


def test_an_outsider_cannot_release_through_the_service(granted, outsider, snapshot):
    # given
    before = snapshot()

    # when / then: the service does not tell an outsider the allocation exists
    with pytest.raises(NotAllowed) as refusal:
        allocation_services.allocation_release(allocation=granted, actor=outsider)
    assert refusal.value.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("action", ["suspend", "resume"])
def test_only_operators_suspend_and_resume_through_the_service(granted, founder, action):
    # given
    if action == "resume":
        allocation_services.allocation_suspend(allocation=granted, actor=OperatorFactory())
    status = Allocation.objects.get(pk=granted.pk).status

    # when / then: even the organization's own admin may not
    with pytest.raises(NotAllowed) as refusal:
        getattr(allocation_services, f"allocation_{action}")(allocation=granted, actor=founder)
    assert refusal.value.message == "Only operators may do this."
    assert Allocation.objects.get(pk=granted.pk).status == status


# --- the API ---------------------------------------------------------------------------------


def test_an_operator_without_the_allocation_permission_may_not_release_by_api(
    client_for, granted, snapshot
):
    # given: staff who sees every allocation, but is no admin of its organization
    operator = OperatorFactory()
    before = snapshot()

    # when
    response = client_for(operator).post(RELEASE.format(granted.pk))

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN
    assert snapshot() == before


def test_an_operator_with_the_allocation_permission_releases_by_api(client_for, granted):
    # given
    operator = _staff_with("change_allocation")

    # when
    response = client_for(operator).post(RELEASE.format(granted.pk))

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "released"


# --- the admin's actions ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ["release_selected", "suspend_selected", "resume_selected"])
def test_staff_without_the_change_permission_cannot_act_on_allocations_in_the_admin(
    granted, snapshot, action
):
    # given: staff who may only look at allocations
    if action == "resume_selected":
        allocation_services.allocation_suspend(allocation=granted, actor=OperatorFactory())
    viewer = _staff_with("view_allocation")
    before = snapshot()
    calls = BackendCall.objects.count()

    # when
    response = _browser(viewer).post(
        _changelist(Allocation), {"action": action, "_selected_action": [str(granted.pk)]}
    )

    # then
    assert response.status_code in (200, 302, 403)
    assert snapshot() == before
    assert BackendCall.objects.count() == calls


def test_staff_with_the_change_permission_suspend_and_resume_in_the_admin(granted):
    # given
    operator = _staff_with("view_allocation", "change_allocation")
    browser = _browser(operator)

    # when
    suspended = browser.post(
        _changelist(Allocation), {"action": "suspend_selected", "_selected_action": [granted.pk]}
    )
    status_after_suspend = Allocation.objects.get(pk=granted.pk).status
    resumed = browser.post(
        _changelist(Allocation), {"action": "resume_selected", "_selected_action": [granted.pk]}
    )

    # then
    assert suspended.status_code == 302
    assert status_after_suspend == AllocationStatus.SUSPENDED
    assert resumed.status_code == 302
    assert Allocation.objects.get(pk=granted.pk).status == AllocationStatus.SCHEDULED
    assert _messages(resumed)[-1] == "1 allocation(s) resumed."


def test_staff_with_the_change_permission_release_in_the_admin(granted):
    # given
    operator = _staff_with("view_allocation", "change_allocation")

    # when
    response = _browser(operator).post(
        _changelist(Allocation), {"action": "release_selected", "_selected_action": [granted.pk]}
    )

    # then
    assert response.status_code == 302
    assert Allocation.objects.get(pk=granted.pk).status == AllocationStatus.RELEASED


def test_a_reviewer_cannot_decide_their_own_organizations_application_in_the_admin(
    in_review, fast_lane, startup, snapshot
):
    # given: a staff reviewer of the program, with every permission on applications, who
    # also works at the applying startup
    reviewer = _staff_with("view_reviewqueueitem", "change_reviewqueueitem", "change_application")
    fast_lane.reviewers.add(reviewer)
    MembershipFactory(user=reviewer, organization=startup, role=MembershipRole.MEMBER)
    before = snapshot()

    # when
    response = _browser(reviewer).post(
        _changelist(ReviewQueueItem),
        {"action": "approve_selected", "_selected_action": [in_review.pk], "reason": "Mine."},
    )

    # then
    assert response.status_code == 302
    assert Application.objects.get(pk=in_review.pk).status == "in_review"
    assert snapshot() == before
    assert _messages(response) == [
        f"{in_review}: Reviewers do not decide their own organization's applications."
    ]


def test_a_reviewer_without_the_change_permission_cannot_decide_in_the_admin(
    in_review, fast_lane, snapshot
):
    # given: a staff reviewer of the program who may only look at the queue
    reviewer = _staff_with("view_reviewqueueitem")
    fast_lane.reviewers.add(reviewer)
    before = snapshot()

    # when
    _browser(reviewer).post(
        _changelist(ReviewQueueItem),
        {"action": "approve_selected", "_selected_action": [in_review.pk], "reason": "Fine."},
    )

    # then
    assert Application.objects.get(pk=in_review.pk).status == "in_review"
    assert snapshot() == before


def test_a_staff_reviewer_with_the_permission_approves_in_the_admin(in_review, fast_lane):
    # given
    reviewer = _staff_with("view_reviewqueueitem", "change_reviewqueueitem", "change_application")
    fast_lane.reviewers.add(reviewer)

    # when
    response = _browser(reviewer).post(
        _changelist(ReviewQueueItem),
        {"action": "approve_selected", "_selected_action": [in_review.pk], "reason": "Fine."},
    )

    # then
    assert response.status_code == 302
    approved = Application.objects.get(pk=in_review.pk)
    assert approved.status == "approved"
    assert approved.reasons == [{"code": "approved_by_reviewer", "message": "Fine."}]
    assert _messages(response) == ["1 application(s) approved."]


# --- invitations -----------------------------------------------------------------------------


def test_a_program_reviewer_invited_to_an_organization_still_decides_its_applications(
    client_for, in_review, reviewer, founder, startup
):
    # given: the applicant's admin invites the program's reviewer, who never accepts
    invited = client_for(founder).post(
        f"/api/v1/organizations/{startup.pk}/invitations/",
        {"email": reviewer.email, "role": "member"},
        format="json",
    )

    # when
    response = client_for(reviewer).post(
        f"/api/v1/applications/{in_review.pk}/approve/", {"reason": "Sound plan."}, format="json"
    )

    # then
    assert invited.status_code == 201
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert not Membership.objects.filter(user=reviewer).exists()
