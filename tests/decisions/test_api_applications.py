"""The applications API: drafts, edits, submission, withdrawal, review and the audit trail,
each with its happy path, a denial and a validation error, exact bodies and pinned query
counts for lists."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from allocations.models import Allocation, Application
from allocations.services import applications as services
from audit.models import AuditEvent
from tests.bodies import NOT_AUTHENTICATED, NOT_FOUND, does_not_exist, invalid, keyset_page
from tests.decisions.bodies import NOT_A_MEMBER, NOT_A_REVIEWER, application_body, event_body
from tests.decisions.support import queued_tasks
from tests.factories import MembershipFactory, ProgramFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/applications/"


def _url(application: Application, action: str = "") -> str:
    return f"{LIST}{application.pk}/{action + '/' if action else ''}"


@pytest.fixture
def posted(startup, fast_lane, pool, today) -> dict:
    """A draft as a client posts it."""
    return {
        "organization": str(startup.pk),
        "program": str(fast_lane.pk),
        "pool": str(pool.pk),
        "title": "Sámi speech model",
        "summary": "Fine-tuning on public broadcasts.",
        "gpu_hours": 2_000,
        "start_date": str(today + timedelta(days=3)),
        "end_date": str(today + timedelta(days=12)),
        "purpose": "Speech recognition for Northern Sámi.",
        "risk_category": "limited",
        "data_stays_in_eea": True,
        "model_lineage": "",
    }


# --- list ----------------------------------------------------------------------------------------


def test_members_list_their_organizations_applications_newest_first(
    draft, decide, client_for, researcher
):
    # given
    first = draft(title="First")
    second = decide(draft(title="Second"))

    # when
    response = client_for(researcher).get(LIST)

    # then
    assert response.status_code == 200
    assert response.json() == keyset_page([application_body(second), application_body(first)])


def test_reviewers_see_their_programs_submitted_applications_and_outsiders_see_none(
    draft, decide, client_for, reviewer, outsider
):
    # given: a draft, which is its organization's business, and a decided application
    draft()
    application = decide(draft())

    # when
    as_reviewer = client_for(reviewer).get(LIST)
    as_outsider = client_for(outsider).get(LIST)

    # then
    assert as_reviewer.json() == keyset_page([application_body(application)])
    assert (as_outsider.status_code, as_outsider.json()) == (200, keyset_page([]))


def test_listing_applications_needs_a_signed_in_user(api, draft):
    # given
    draft()

    # when
    response = api.get(LIST)

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_the_application_list_filters_by_status(draft, decide, client_for, founder):
    # given
    waiting = draft()
    decide(draft())

    # when
    response = client_for(founder).get(LIST, {"status": "draft"})

    # then
    assert response.json() == keyset_page([application_body(waiting)])


def test_an_unknown_status_filter_is_a_field_error(client_for, founder):
    # when
    response = client_for(founder).get(LIST, {"status": "lost"})

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "status": [
                (
                    "invalid_choice",
                    "Select a valid choice. lost is not one of the available choices.",
                )
            ]
        }
    )


@pytest.mark.parametrize("rows", [1, 5])
def test_the_application_list_costs_the_same_queries_for_one_or_five_rows(
    draft, decide, client_for, founder, django_assert_num_queries, rows
):
    # given: drafts and approved ones (with an allocation) alike
    for index in range(rows):
        application = draft(title=f"Run {index}")
        if index % 2:
            decide(application)
    client = client_for(founder)

    # when / then: the page (no count)
    with django_assert_num_queries(1):
        response = client.get(LIST)
    assert len(response.json()["results"]) == rows


# --- create --------------------------------------------------------------------------------------


def test_a_member_saves_a_draft(client_for, researcher, posted):
    # when
    response = client_for(researcher).post(LIST, posted)

    # then
    assert response.status_code == 201
    application = Application.objects.get()
    assert response.json() == application_body(application)
    assert (application.status, application.applicant, application.kind) == (
        "draft",
        researcher,
        "new",
    )
    assert AuditEvent.objects.filter(target_id=application.pk, verb="application.create").exists()


def test_a_draft_that_ends_before_it_starts_is_a_field_error(client_for, founder, posted, today):
    # given
    posted["end_date"] = str(today + timedelta(days=2))

    # when
    response = client_for(founder).post(LIST, posted)

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"end_date": [("before_start", "The window ends on or after its first day.")]}
    )
    assert Application.objects.count() == 0


def test_an_unknown_or_closed_program_is_a_field_error(client_for, founder, posted):
    # given
    closed = ProgramFactory(is_open=False)

    # when
    unknown = uuid4()
    responses = [
        client_for(founder).post(LIST, {**posted, "program": str(program)})
        for program in (unknown, closed.pk)
    ]

    # then
    assert [response.status_code for response in responses] == [400, 400]
    assert responses[0].json() == invalid({"program": [does_not_exist(unknown)]})
    assert responses[1].json() == invalid({"program": [does_not_exist(closed.pk)]})
    assert Application.objects.count() == 0


def test_a_draft_for_another_organization_is_a_field_error(client_for, founder, posted, rival):
    # when
    response = client_for(founder).post(LIST, {**posted, "organization": str(rival.pk)})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"organization": [does_not_exist(rival.pk)]})
    assert Application.objects.count() == 0


def test_a_supplement_of_another_organizations_allocation_is_a_field_error(
    client_for, founder, posted, rival, fast_lane, pool, today
):
    # given: the rival's allocation
    from allocations.services.applications import application_create
    from tests.factories import UserFactory

    rival_user = UserFactory(email="ml@lofoten.example")
    MembershipFactory(user=rival_user, organization=rival)
    theirs = application_create(
        applicant=rival_user,
        values={
            "organization": rival,
            "program": fast_lane,
            "pool": pool,
            "title": "Theirs",
            "gpu_hours": 100,
            "start_date": today + timedelta(days=1),
            "end_date": today + timedelta(days=2),
        },
    )
    services.application_submit(application=theirs, actor=rival_user)
    services.application_decide(application_id=theirs.pk, submission=1)
    allocation = Allocation.objects.get()

    # when
    response = client_for(founder).post(
        LIST, {**posted, "kind": "supplement", "allocation": str(allocation.pk)}
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"allocation": [does_not_exist(allocation.pk)]})


def test_a_supplement_must_name_its_allocation(client_for, founder, posted):
    # when
    response = client_for(founder).post(LIST, {**posted, "kind": "extension"})

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "allocation": [
                ("required", "A supplement or an extension names the allocation it changes.")
            ]
        }
    )


# --- read and edit one ---------------------------------------------------------------------------


def test_a_member_reads_an_application(draft, decide, client_for, researcher):
    # given
    application = decide(draft())

    # when
    response = client_for(researcher).get(_url(application))

    # then
    assert response.status_code == 200
    body = response.json()
    assert body == application_body(application)
    assert body["allocation"] == str(Allocation.objects.get(application=application).pk)


def test_an_outsider_gets_a_404_for_an_application(draft, client_for, outsider):
    # given
    application = draft()

    # when
    response = client_for(outsider).get(_url(application))

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_a_member_edits_a_draft(draft, client_for, researcher):
    # given
    application = draft()

    # when
    response = client_for(researcher).patch(
        _url(application), {"title": "Sámi ASR", "gpu_hours": 3_000}
    )

    # then
    assert response.status_code == 200
    assert response.json() == application_body(application)
    application.refresh_from_db()
    assert (application.title, application.gpu_hours) == ("Sámi ASR", 3_000)


def test_an_edit_that_ends_before_the_start_is_a_field_error(draft, client_for, founder, today):
    # given
    application = draft()

    # when
    response = client_for(founder).patch(
        _url(application), {"end_date": str(today - timedelta(days=5))}
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"end_date": [("before_start", "The window ends on or after its first day.")]}
    )
    application.refresh_from_db()
    assert application.end_date == today + timedelta(days=10)


def test_neither_an_outsider_nor_a_reviewer_sees_a_draft_to_edit(
    draft, client_for, outsider, reviewer
):
    # given
    application = draft()

    # when
    as_outsider = client_for(outsider).patch(_url(application), {"title": "Mine"})
    as_reviewer = client_for(reviewer).patch(_url(application), {"title": "Mine"})

    # then
    assert (as_outsider.status_code, as_outsider.json()) == (404, NOT_FOUND)
    assert (as_reviewer.status_code, as_reviewer.json()) == (404, NOT_FOUND)
    application.refresh_from_db()
    assert application.title == "Norwegian LLM fine-tune"


# --- submit --------------------------------------------------------------------------------------


def test_submitting_answers_202_and_queues_one_decision_after_commit(
    draft, client_for, researcher, django_capture_on_commit_callbacks
):
    # given
    application = draft()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(researcher).post(_url(application, "submit"))

    # then
    assert response.status_code == 202
    assert response.json() == application_body(application)
    assert response.json()["status"] == "submitted"
    assert queued_tasks(callbacks) == [("decide_application", (str(application.pk), 1))]


def test_neither_an_outsider_nor_a_reviewer_sees_a_draft_to_submit(
    draft, client_for, outsider, reviewer, django_capture_on_commit_callbacks
):
    # given
    application = draft()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        as_outsider = client_for(outsider).post(_url(application, "submit"))
        as_reviewer = client_for(reviewer).post(_url(application, "submit"))

    # then
    assert (as_outsider.status_code, as_outsider.json()) == (404, NOT_FOUND)
    assert (as_reviewer.status_code, as_reviewer.json()) == (404, NOT_FOUND)
    assert Application.objects.get(pk=application.pk).status == "draft"
    assert callbacks == []


def test_submitting_a_malformed_id_is_a_404(client_for, founder):
    # when
    response = client_for(founder).post(f"{LIST}not-a-uuid/submit/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- withdraw ------------------------------------------------------------------------------------


def test_a_member_withdraws_an_application_in_review(draft, decide, client_for, researcher, totals):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(researcher).post(_url(application, "withdraw"))

    # then
    assert response.status_code == 200
    assert response.json() == application_body(application)
    assert response.json()["status"] == "withdrawn"
    assert totals()["pool"] == (0, 0)


def test_an_outsider_cannot_withdraw_and_a_reviewer_who_is_no_member_may_not(
    draft, decide, client_for, outsider, reviewer, totals
):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    as_outsider = client_for(outsider).post(_url(application, "withdraw"))
    as_reviewer = client_for(reviewer).post(_url(application, "withdraw"))

    # then
    assert (as_outsider.status_code, as_outsider.json()) == (404, NOT_FOUND)
    assert (as_reviewer.status_code, as_reviewer.json()) == (403, NOT_A_MEMBER)
    assert Application.objects.get(pk=application.pk).status == "in_review"
    assert totals()["pool"] == (0, 12_000)


# --- approve and reject --------------------------------------------------------------------------


def test_a_reviewer_approves_an_application_in_review(draft, decide, client_for, reviewer):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(reviewer).post(
        _url(application, "approve"), {"reason": "A good use of the Fast lane."}
    )

    # then
    assert response.status_code == 200
    assert response.json() == application_body(application)
    body = response.json()
    assert body["status"] == "approved"
    assert body["reasons"] == [
        {"code": "approved_by_reviewer", "message": "A good use of the Fast lane."}
    ]
    assert body["allocation"] == str(Allocation.objects.get(application=application).pk)


def test_a_member_who_is_no_reviewer_may_not_approve(draft, decide, client_for, founder, snapshot):
    # given
    application = decide(draft(gpu_hours=12_000))
    before = snapshot()

    # when
    response = client_for(founder).post(_url(application, "approve"), {"reason": "Trust me."})

    # then
    assert response.status_code == 403
    assert response.json() == NOT_A_REVIEWER
    assert Application.objects.get(pk=application.pk).status == "in_review"
    assert snapshot() == before


def test_a_reviewer_of_another_program_gets_a_404(draft, decide, client_for, make_program):
    # given
    from tests.factories import UserFactory

    other_reviewer = UserFactory(email="reviewer@elsewhere.example")
    make_program(name="Other", slug="other").reviewers.add(other_reviewer)
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(other_reviewer).post(_url(application, "approve"), {"reason": "ok"})

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_approval_needs_a_reason(draft, decide, client_for, reviewer):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(reviewer).post(_url(application, "approve"), {})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"reason": [("required", "This field is required.")]})
    assert Application.objects.get(pk=application.pk).status == "in_review"


def test_a_reviewer_rejects_an_application_in_review(draft, decide, client_for, reviewer, totals):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(reviewer).post(
        _url(application, "reject"), {"reason": "Outside the program's aims."}
    )

    # then
    assert response.status_code == 200
    assert response.json() == application_body(application)
    assert response.json()["reasons"] == [
        {"code": "rejected_by_reviewer", "message": "Outside the program's aims."}
    ]
    assert totals()["pool"] == (0, 0)


def test_a_member_who_is_no_reviewer_may_not_reject(draft, decide, client_for, researcher):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(researcher).post(_url(application, "reject"), {"reason": "no"})

    # then
    assert response.status_code == 403
    assert response.json() == NOT_A_REVIEWER
    assert Application.objects.get(pk=application.pk).status == "in_review"


def test_a_blank_rejection_reason_is_a_field_error(draft, decide, client_for, reviewer):
    # given
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(reviewer).post(_url(application, "reject"), {"reason": ""})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"reason": [("blank", "This field may not be blank.")]})
    assert Application.objects.get(pk=application.pk).status == "in_review"


# --- events --------------------------------------------------------------------------------------


def test_members_and_reviewers_read_the_audit_trail_in_order(
    draft, decide, client_for, researcher, reviewer
):
    # given
    application = decide(draft(gpu_hours=12_000))
    services.application_approve(application=application, actor=reviewer, note="ok")
    events = list(AuditEvent.objects.filter(target_id=application.pk).order_by("created_at"))

    # when
    as_member = client_for(researcher).get(_url(application, "events"))
    as_reviewer = client_for(reviewer).get(_url(application, "events"))

    # then
    assert as_member.status_code == as_reviewer.status_code == 200
    assert as_member.json() == as_reviewer.json() == keyset_page([event_body(e) for e in events])
    assert [event["verb"] for event in as_member.json()["results"]] == [
        "application.create",
        "application.submit",
        "application.in_review",
        "application.approved",
    ]
    assert as_member.json()["results"][-1]["actor"] == "reviewer@narvik.example"


def test_an_outsider_gets_a_404_for_the_audit_trail(draft, client_for, outsider):
    # given
    application = draft()

    # when
    response = client_for(outsider).get(_url(application, "events"))

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("edits", [0, 4])
def test_the_audit_trail_costs_the_same_queries_for_one_or_five_events(
    draft, client_for, founder, django_assert_num_queries, edits
):
    # given: created, then edited
    application = draft()
    for index in range(edits):
        services.application_update(
            application=application, values={"title": f"Edit {index}"}, actor=founder
        )
    client = client_for(founder)

    # when / then: the application, the page with the actors (no count)
    with django_assert_num_queries(2):
        response = client.get(_url(application, "events"))
    assert len(response.json()["results"]) == edits + 1


def test_a_reviewer_does_not_decide_their_own_organizations_application(
    draft, decide, client_for, reviewer, startup
):
    from accounts.models import MembershipRole
    from tests.factories import MembershipFactory

    # given: the reviewer also works at the applying startup
    MembershipFactory(user=reviewer, organization=startup, role=MembershipRole.MEMBER)
    application = decide(draft(gpu_hours=12_000))

    # when
    response = client_for(reviewer).post(_url(application, "approve"), {"reason": "mine"})

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Reviewers do not decide their own organization's applications.",
    }
    assert Application.objects.get(pk=application.pk).status == "in_review"
