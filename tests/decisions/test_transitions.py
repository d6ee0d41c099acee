"""The application's statuses: every allowed move, and every other one refused (409
`invalid_transition` through the API) with nothing changed."""

from __future__ import annotations

import pytest

from accounts.authz import SYSTEM
from allocations.models import Allocation, Application
from allocations.services import applications as services
from audit.models import AuditEvent
from portal.errors import InvalidTransition
from tests.decisions.support import queued_tasks, said

pytestmark = pytest.mark.django_db


def _row(application: Application) -> dict:
    """The application's columns a transition may change."""
    fresh = Application.objects.get(pk=application.pk)
    return {
        "status": fresh.status,
        "title": fresh.title,
        "submission": fresh.submission,
        "reasons": fresh.reasons,
        "holds_capacity": fresh.holds_capacity,
        "submitted_at": fresh.submitted_at,
        "decided_at": fresh.decided_at,
        "updated_at": fresh.updated_at,
    }


@pytest.fixture
def in_review(draft, decide) -> Application:
    """12,000 GPU-hours over days 1..10, held for a reviewer."""
    application = decide(draft(gpu_hours=12_000))
    assert application.status == "in_review"
    return application


@pytest.fixture
def waitlisted(draft, decide, window) -> Application:
    """More than the fast lane may take in a day."""
    application = decide(draft(gpu_hours=1_600, **window(1, 1)))
    assert application.status == "waitlisted"
    return application


# --- refused moves -------------------------------------------------------------------------------


def test_approving_a_draft_is_refused_and_changes_nothing(draft, reviewer, snapshot):
    # given
    application = draft()
    before, row, events = snapshot(), _row(application), AuditEvent.objects.count()

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_approve(application=application, actor=reviewer, note="fine")

    # then
    assert refused.value.message == (
        "Only an application in review can be approved; this one is draft."
    )
    assert (snapshot(), _row(application)) == (before, row)
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("state", ["submitted", "approved", "waitlisted", "rejected"])
def test_only_an_application_in_review_can_be_approved(
    draft, decide, founder, reviewer, window, snapshot, state
):
    # given
    if state == "submitted":
        application = services.application_submit(application=draft(), actor=founder)
    elif state == "approved":
        application = decide(draft())
    elif state == "waitlisted":
        application = decide(draft(gpu_hours=1_600, **window(1, 1)))
    else:
        application = decide(draft(risk_category="prohibited"))
    assert application.status == state
    before, row = snapshot(), _row(application)

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_approve(application=application, actor=reviewer, note="fine")

    # then
    assert refused.value.code == "invalid_transition"
    assert refused.value.message == (
        f"Only an application in review can be approved; this one is {state}."
    )
    assert (snapshot(), _row(application)) == (before, row)


def test_submitting_twice_is_refused_and_queues_nothing(
    draft, founder, snapshot, django_capture_on_commit_callbacks
):
    # given
    application = services.application_submit(application=draft(), actor=founder)
    before, row = snapshot(), _row(application)

    # when
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(InvalidTransition) as refused,
    ):
        services.application_submit(application=application, actor=founder)

    # then
    assert refused.value.message == (
        "Only a draft can be submitted; this application is submitted."
    )
    assert (snapshot(), _row(application)) == (before, row)
    assert row["submission"] == 1
    assert callbacks == []


def test_a_decided_application_cannot_be_submitted_again(draft, decide, founder, snapshot):
    # given
    application = decide(draft())
    before, row = snapshot(), _row(application)

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_submit(application=application, actor=founder)

    # then
    assert refused.value.message == "Only a draft can be submitted; this application is approved."
    assert (snapshot(), _row(application)) == (before, row)


@pytest.mark.parametrize("decided", [False, True])
def test_editing_after_submission_is_refused_and_changes_nothing(
    draft, decide, founder, snapshot, decided
):
    # given
    application = draft()
    if decided:
        application = decide(application)
    else:
        application = services.application_submit(application=application, actor=founder)
    before, row, events = snapshot(), _row(application), AuditEvent.objects.count()

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_update(
            application=application, values={"title": "Changed", "gpu_hours": 5}, actor=founder
        )

    # then
    assert refused.value.message == (
        f"Only drafts can be edited; this one is {application.status}."
    )
    assert (snapshot(), _row(application)) == (before, row)
    assert AuditEvent.objects.count() == events


def test_a_draft_can_be_edited_and_the_edit_is_audited(draft, founder):
    # given
    application = draft()

    # when
    edited = services.application_update(
        application=application, values={"title": "Changed", "gpu_hours": 2_000}, actor=founder
    )

    # then
    assert (edited.title, edited.gpu_hours) == ("Changed", 2_000)
    event = AuditEvent.objects.get(target_id=application.pk, verb="application.update")
    assert (event.before, event.after) == (
        {"title": "Norwegian LLM fine-tune", "gpu_hours": "1000"},
        {"title": "Changed", "gpu_hours": "2000"},
    )


@pytest.mark.parametrize("state", ["approved", "rejected", "withdrawn"])
def test_a_final_application_cannot_be_withdrawn(draft, decide, founder, snapshot, state):
    # given
    if state == "approved":
        application = decide(draft())
    elif state == "rejected":
        application = decide(draft(risk_category="prohibited"))
    else:
        application = services.application_withdraw(application=draft(), actor=founder)
    before, row, events = snapshot(), _row(application), AuditEvent.objects.count()

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_withdraw(application=application, actor=founder)

    # then
    assert refused.value.message == f"The application is {state}: it cannot be withdrawn."
    assert (snapshot(), _row(application)) == (before, row)
    assert AuditEvent.objects.count() == events


def test_withdrawing_an_approved_application_keeps_its_allocation(draft, decide, founder):
    # given
    application = decide(draft())
    allocation = Allocation.objects.get(application=application)

    # when
    with pytest.raises(InvalidTransition):
        services.application_withdraw(application=application, actor=founder)

    # then
    kept = Allocation.objects.get(pk=allocation.pk)
    assert (kept.status, kept.granted_gpu_hours) == ("scheduled", 1_000)


@pytest.mark.parametrize("state", ["draft", "submitted", "approved"])
def test_only_an_application_in_review_or_waitlisted_can_be_rejected(
    draft, decide, founder, reviewer, snapshot, state
):
    # given
    application = draft()
    if state == "submitted":
        application = services.application_submit(application=application, actor=founder)
    elif state == "approved":
        application = decide(application)
    before, row = snapshot(), _row(application)

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_reject(application=application, actor=reviewer, note="no")

    # then
    assert refused.value.message == (
        f"Only an application in review or waitlisted can be rejected; this one is {state}."
    )
    assert (snapshot(), _row(application)) == (before, row)


# --- allowed moves -------------------------------------------------------------------------------


def test_submitting_a_draft_numbers_the_submission_and_queues_its_decision(
    draft, founder, django_capture_on_commit_callbacks
):
    # given
    application = draft()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        submitted = services.application_submit(application=application, actor=founder)

    # then
    assert (submitted.status, submitted.submission, submitted.reasons) == ("submitted", 1, [])
    assert submitted.submitted_at is not None
    assert queued_tasks(callbacks) == [("decide_application", (str(application.pk), 1))]
    event = AuditEvent.objects.get(target_id=application.pk, verb="application.submit")
    assert (event.actor, event.before, event.after) == (
        founder,
        {"status": "draft", "submission": 0, "holds_capacity": False},
        {"status": "submitted", "submission": 1, "holds_capacity": False},
    )


def test_withdrawing_from_review_releases_the_hold_and_the_quota(
    in_review, founder, totals, django_capture_on_commit_callbacks
):
    # given
    assert totals()["pool"] == (0, 12_000)
    assert totals()["quota"] == 12_000

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        withdrawn = services.application_withdraw(application=in_review, actor=founder)

    # then
    assert withdrawn.status == "withdrawn"
    assert said(withdrawn.reasons) == [
        {"code": "withdrawn", "message": "Withdrawn by the applicant."}
    ]
    assert not withdrawn.holds_capacity
    assert withdrawn.decided_by == founder
    assert totals() == {
        "pool": (0, 0),
        "program": (0, 0),
        "site_wh": (0, 0),
        "quota": 0,
    }
    # capacity freed: the waitlist is looked at again; a withdrawal mails nobody
    assert queued_tasks(callbacks) == [("recheck_waitlist", (str(in_review.pool_id),))]


def test_withdrawing_before_the_decision_makes_the_queued_decision_a_no_op(
    draft, founder, snapshot
):
    # given
    submitted = services.application_submit(application=draft(), actor=founder)
    withdrawn = services.application_withdraw(application=submitted, actor=founder)
    before = snapshot()

    # when: the worker gets to it
    late = services.application_decide(application_id=submitted.pk, submission=1)

    # then
    assert withdrawn.status == late.status == "withdrawn"
    assert snapshot() == before
    assert Allocation.objects.count() == 0


@pytest.mark.parametrize("state", ["draft", "waitlisted"])
def test_withdrawing_what_holds_nothing_frees_nothing_and_queues_no_recheck(
    draft, waitlisted, founder, snapshot, django_capture_on_commit_callbacks, state
):
    # given
    application = draft() if state == "draft" else waitlisted
    before = snapshot()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        withdrawn = services.application_withdraw(application=application, actor=founder)

    # then
    assert withdrawn.status == "withdrawn"
    assert snapshot() == before
    assert callbacks == []


def test_rejecting_from_review_releases_the_hold_and_tells_the_applicant(
    in_review, reviewer, totals, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        rejected = services.application_reject(
            application=in_review, actor=reviewer, note="Not a research use."
        )

    # then
    assert rejected.status == "rejected"
    assert said(rejected.reasons) == [
        {"code": "rejected_by_reviewer", "message": "Not a research use."}
    ]
    assert (rejected.decided_by, rejected.holds_capacity) == (reviewer, False)
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}
    assert queued_tasks(callbacks) == [
        ("notify_application_decided", (str(in_review.pk), "rejected")),
        ("recheck_waitlist", (str(in_review.pool_id),)),
    ]


def test_rejecting_from_the_waitlist_changes_no_ledger_row(
    waitlisted, reviewer, snapshot, django_capture_on_commit_callbacks
):
    # given
    before = snapshot()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        rejected = services.application_reject(application=waitlisted, actor=reviewer, note="no")

    # then
    assert rejected.status == "rejected"
    assert said(rejected.reasons) == [{"code": "rejected_by_reviewer", "message": "no"}]
    assert rejected.failed_day is None
    assert snapshot() == before
    assert queued_tasks(callbacks) == [
        ("notify_application_decided", (str(waitlisted.pk), "rejected"))
    ]


def test_approving_from_review_commits_the_hold_and_grants_the_allocation(
    in_review, reviewer, totals
):
    # when
    approved = services.application_approve(application=in_review, actor=reviewer, note="Good.")

    # then
    assert approved.status == "approved"
    assert said(approved.reasons) == [{"code": "approved_by_reviewer", "message": "Good."}]
    assert (approved.decided_by, approved.holds_capacity) == (reviewer, False)
    assert totals()["pool"] == (12_000, 0)
    assert totals()["program"] == (12_000, 0)
    assert totals()["quota"] == 12_000
    allocation = Allocation.objects.get(application=approved)
    assert (allocation.granted_gpu_hours, allocation.status) == (12_000, "scheduled")
    assert list(
        AuditEvent.objects.filter(target_id=approved.pk)
        .order_by("created_at")
        .values_list("verb", flat=True)
    ) == [
        "application.create",
        "application.submit",
        "application.in_review",
        "application.approved",
    ]


def test_a_second_approval_is_refused_and_grants_nothing_more(in_review, reviewer, snapshot):
    # given
    services.application_approve(application=in_review, actor=reviewer, note="Good.")
    before = snapshot()

    # when
    with pytest.raises(InvalidTransition):
        services.application_approve(application=in_review, actor=reviewer, note="Again.")

    # then
    assert snapshot() == before
    assert Allocation.objects.count() == 1


# --- the same refusals through the API -----------------------------------------------------------


def _conflict(message: str) -> dict:
    return {"code": "invalid_transition", "message": message}


def test_a_reviewer_cannot_reach_a_draft_to_approve_it(draft, reviewer, client_for, snapshot):
    # given
    application = draft()
    before, row = snapshot(), _row(application)

    # when
    response = client_for(reviewer).post(
        f"/api/v1/applications/{application.pk}/approve/", {"reason": "fine"}
    )

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}
    assert (snapshot(), _row(application)) == (before, row)


def test_submitting_twice_through_the_api_is_a_409(
    draft, founder, client_for, snapshot, django_capture_on_commit_callbacks
):
    # given
    application = services.application_submit(application=draft(), actor=founder)
    before, row = snapshot(), _row(application)

    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_for(founder).post(f"/api/v1/applications/{application.pk}/submit/")

    # then
    assert response.status_code == 409
    assert response.json() == _conflict(
        "Only a draft can be submitted; this application is submitted."
    )
    assert (snapshot(), _row(application)) == (before, row)
    assert callbacks == []


def test_editing_after_submission_through_the_api_is_a_409(draft, founder, client_for, snapshot):
    # given
    application = services.application_submit(application=draft(), actor=founder)
    before, row = snapshot(), _row(application)

    # when
    response = client_for(founder).patch(
        f"/api/v1/applications/{application.pk}/", {"title": "Changed"}
    )

    # then
    assert response.status_code == 409
    assert response.json() == _conflict("Only drafts can be edited; this one is submitted.")
    assert (snapshot(), _row(application)) == (before, row)


def test_withdrawing_an_approved_application_through_the_api_is_a_409(
    draft, decide, founder, client_for, snapshot
):
    # given
    application = decide(draft())
    before, row = snapshot(), _row(application)

    # when
    response = client_for(founder).post(f"/api/v1/applications/{application.pk}/withdraw/")

    # then
    assert response.status_code == 409
    assert response.json() == _conflict("The application is approved: it cannot be withdrawn.")
    assert (snapshot(), _row(application)) == (before, row)


def test_a_reviewer_cannot_reach_a_draft_to_reject_it(draft, reviewer, client_for, snapshot):
    # given
    application = draft()
    before, row = snapshot(), _row(application)

    # when
    response = client_for(reviewer).post(
        f"/api/v1/applications/{application.pk}/reject/", {"reason": "no"}
    )

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}
    assert (snapshot(), _row(application)) == (before, row)


# --- a decision that lands between the read and the lock -----------------------------------------


def _as_read_before(application: Application) -> Application:
    """The application as a service reads it before taking its locks."""
    return Application.objects.select_related(
        "program", "pool__site", "pool__accelerator", "organization", "allocation"
    ).get(pk=application.pk)


def test_a_withdrawal_that_races_the_decision_releases_the_hold_it_finds(
    draft, founder, totals, monkeypatch
):
    # given: the withdrawal reads the application while it is still submitted ...
    submitted = services.application_submit(application=draft(gpu_hours=12_000), actor=founder)
    read = _as_read_before(submitted)
    # ... and the worker puts it in review with a hold before the withdrawal's locks are taken
    services.application_decide(application_id=submitted.pk, submission=1)
    assert totals()["pool"] == (0, 12_000)
    monkeypatch.setattr(services, "_load", lambda application_id: read)

    # when
    withdrawn = services.application_withdraw(application=read, actor=founder)

    # then
    assert withdrawn.status == "withdrawn"
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}


def test_a_rejection_that_races_a_recheck_into_review_releases_the_hold_it_finds(
    draft, decide, reviewer, pool, window, today, totals, monkeypatch
):
    # given: a high-risk request waits for capacity; the reviewer's rejection reads it ...
    from allocations.models import CapacityEvent
    from allocations.services import inventory

    waiting = decide(draft(gpu_hours=1_600, risk_category="high", **window(1, 1)))
    assert waiting.status == "waitlisted"
    read = _as_read_before(waiting)
    # ... and a re-check moves it to review, with a hold, before the rejection's locks
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today, "gpus_in_service": 200},
        actor=SYSTEM,
    )
    services.waitlist_recheck(pool_id=pool.pk)
    assert Application.objects.get(pk=waiting.pk).status == "in_review"
    monkeypatch.setattr(services, "_load", lambda application_id: read)

    # when
    rejected = services.application_reject(application=read, actor=reviewer, note="no")

    # then
    assert rejected.status == "rejected"
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}
