"""The applications, allocations and capacity endpoints: happy path, denial, validation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allocations.models import Allocation, Application
from audit.models import AuditEvent
from tests.effects import queued as queued_effects
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def payload(startup, fast_lane, pool, today):
    return {
        "organization": str(startup.pk),
        "program": str(fast_lane.pk),
        "pool": str(pool.pk),
        "title": "Norwegian speech model",
        "summary": "Fine-tuning on NRK archives.",
        "gpu_hours": 2_000,
        "start_date": str(today + timedelta(days=1)),
        "end_date": str(today + timedelta(days=10)),
        "purpose": "speech recognition",
    }


def _body(application: Application) -> dict:
    application.refresh_from_db()
    granted = Allocation.objects.filter(application=application).first()
    return {
        "id": str(application.pk),
        "organization": str(application.organization_id),
        "program": str(application.program_id),
        "pool": str(application.pool_id),
        "applicant": str(application.applicant_id),
        "kind": application.kind,
        "changes_allocation": None,
        "title": application.title,
        "summary": application.summary,
        "gpu_hours": application.gpu_hours,
        "start_date": str(application.start_date),
        "end_date": str(application.end_date),
        "purpose": application.purpose,
        "risk_category": application.risk_category,
        "data_stays_in_eea": application.data_stays_in_eea,
        "model_lineage": application.model_lineage,
        "status": application.status,
        "reasons": application.reasons,
        "failed_day": None,
        "holds_capacity": application.holds_capacity,
        "created_at": application.created_at.astimezone().isoformat(),
        "submitted_at": application.submitted_at.astimezone().isoformat()
        if application.submitted_at
        else None,
        "decided_at": application.decided_at.astimezone().isoformat()
        if application.decided_at
        else None,
        "allocation": str(granted.pk) if granted else None,
    }


def test_a_member_drafts_submits_and_the_decision_is_queued_once(
    client_for, founder, payload, django_capture_on_commit_callbacks
):
    # given
    client = client_for(founder)

    # when
    created = client.post("/api/v1/applications/", payload, format="json")
    application = Application.objects.get()
    with django_capture_on_commit_callbacks() as callbacks:
        submitted = client.post(f"/api/v1/applications/{application.pk}/submit/")

    # then
    assert created.status_code == 201
    assert submitted.status_code == 202
    assert submitted.json() == _body(application)
    assert submitted.json()["status"] == "submitted"
    queued = queued_effects(callbacks)
    assert queued == [("allocations.tasks.decide_application", (str(application.pk), 1))]


def test_another_organizations_id_is_refused_like_an_unknown_one(client_for, founder, payload):
    # given
    payload["organization"] = str(OrganizationFactory(name="Elsewhere").pk)

    # when
    response = client_for(founder).post("/api/v1/applications/", payload, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "organization": [
            {
                "code": "does_not_exist",
                "message": f'Invalid pk "{payload["organization"]}" - object does not exist.',
            }
        ]
    }
    assert Application.objects.count() == 0


def test_a_window_that_ends_before_it_starts_is_a_field_error(client_for, founder, payload, today):
    # given
    payload["end_date"] = str(today)

    # when
    response = client_for(founder).post("/api/v1/applications/", payload, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "end_date": [
            {"code": "before_start", "message": "The window ends on or after its first day."}
        ]
    }


def test_an_outsider_sees_nothing_and_a_member_cannot_approve(
    client_for, draft, decide, founder, outsider
):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    hidden = client_for(outsider).get(f"/api/v1/applications/{application.pk}/")
    approve = client_for(founder).post(
        f"/api/v1/applications/{application.pk}/approve/", {"reason": "mine"}, format="json"
    )

    # then
    assert hidden.status_code == 404
    assert hidden.json() == {"code": "not_found", "message": "Not found."}
    assert approve.status_code == 403
    assert approve.json() == {
        "code": "permission_denied",
        "message": "Only reviewers of the application's program may decide it.",
    }
    assert Application.objects.get(pk=application.pk).status == "in_review"


def test_a_reviewer_approves_with_a_reason_and_sees_the_trail(client_for, draft, decide, reviewer):
    # given
    application = decide(draft(gpu_hours=12_000))
    client = client_for(reviewer)

    # when
    missing = client.post(f"/api/v1/applications/{application.pk}/approve/", {}, format="json")
    approved = client.post(
        f"/api/v1/applications/{application.pk}/approve/", {"reason": "Sound plan."},
        format="json",
    )  # fmt: skip
    events = client.get(f"/api/v1/applications/{application.pk}/events/")

    # then
    assert missing.status_code == 400
    assert missing.json()["fields"] == {
        "reason": [{"code": "required", "message": "This field is required."}]
    }
    assert approved.status_code == 200
    assert approved.json() == _body(application)
    assert approved.json()["status"] == "approved"
    assert [e["verb"] for e in events.json()["results"]] == [
        "application.create",
        "application.submit",
        "application.in_review",
        "application.approved",
    ]
    assert events.json()["results"][-1]["actor"] == reviewer.email


def test_editing_after_submission_answers_409_and_changes_nothing(
    client_for, draft, decide, founder
):
    # given
    application = decide(draft())
    events = AuditEvent.objects.count()

    # when
    response = client_for(founder).patch(
        f"/api/v1/applications/{application.pk}/", {"title": "changed"}, format="json"
    )

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "Only drafts can be edited; this one is approved.",
    }
    assert Application.objects.get(pk=application.pk).title == "Norwegian LLM fine-tune"
    assert AuditEvent.objects.count() == events


def test_lists_cost_the_same_queries_for_one_or_five(
    client_for, draft, decide, founder, django_assert_num_queries
):
    # given
    client = client_for(founder)
    decide(draft())

    def counts() -> list[int]:
        sizes = []
        for url in ("/api/v1/applications/", "/api/v1/allocations/"):
            with django_assert_num_queries(1):
                sizes.append(len(client.get(url).json()["results"]))
        return sizes

    # then
    assert counts() == [1, 1]
    for _ in range(4):
        decide(draft())
    assert counts() == [5, 5]


def test_only_an_org_admin_releases(client_for, draft, decide, founder, startup, today):
    # given
    application = decide(draft(start_date=today, end_date=today + timedelta(days=9)))
    allocation = Allocation.objects.get(application=application)
    researcher = UserFactory()
    MembershipFactory(user=researcher, organization=startup)

    # when
    denied = client_for(researcher).post(f"/api/v1/allocations/{allocation.pk}/release/")
    released = client_for(founder).post(f"/api/v1/allocations/{allocation.pk}/release/")

    # then
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert released.status_code == 200
    assert released.json()["granted_gpu_hours"] == 100
    assert released.json()["end_date"] == str(today)


def test_capacity_shows_free_hours_per_program(client_for, founder, draft, decide, pool, today):
    # given
    decide(draft(gpu_hours=1_000, start_date=today + timedelta(days=1),
                 end_date=today + timedelta(days=1)))  # fmt: skip

    # when
    response = client_for(founder).get(
        "/api/v1/capacity/",
        {"pool": str(pool.pk), "start": str(today + timedelta(days=1)),
         "end": str(today + timedelta(days=1))},
    )  # fmt: skip
    bad = client_for(founder).get("/api/v1/capacity/", {"pool": "nope"})

    # then
    (day,) = response.json()
    assert day["capacity_gpu_hours"] == 2_280
    assert day["committed_gpu_hours"] == 1_000
    assert day["free_gpu_hours"] == 1_280
    assert day["programs"][0]["program_slug"] == "fast-lane"
    assert day["programs"][0]["nominal_gpu_hours"] == 1_140
    assert day["programs"][0]["free_gpu_hours"] == 596
    assert bad.status_code == 400
    # a pool is also named by its name: "nope" names none
    assert bad.json()["fields"]["pool"][0]["code"] == "does_not_exist"
