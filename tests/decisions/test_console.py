"""The operators' console in the admin: the index's counts and risks, deciding on the page of
an application beside its figures, readable reasons, names and labels, pages without Save,
charts with per-day values, the audit trail in pages."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from allocations.models import Allocation, Application, ApplicationStatus, UsageRecord
from allocations.services.usage import usage_ingest
from audit.services import audit_record
from tests.factories import UserFactory


@pytest.fixture
def operator(reviewer: User) -> User:
    """The program's reviewer, as an operator who may sign in to the admin."""
    reviewer.is_staff = True
    reviewer.is_superuser = True
    reviewer.save(update_fields=["is_staff", "is_superuser"])
    return reviewer


@pytest.fixture
def console(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def in_review(draft: Any, decide: Any) -> Application:
    application = decide(draft(title="Large training run", gpu_hours=12_000))
    assert application.status == ApplicationStatus.IN_REVIEW
    return application


def page(application: Application) -> str:
    return reverse("admin:allocations_application_change", args=[application.pk])


def decide_url(application: Application) -> str:
    return reverse("admin:allocations_application_decide", args=[application.pk])


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- the index ------------------------------------------------------------------------------


def test_index_shows_the_queue_the_waitlist_and_their_oldest_age_against_the_target(
    console: Client, in_review: Application, too_big: Application
) -> None:
    # given: the one in review waited longer than its program's target of 2 days
    Application.objects.filter(pk=in_review.pk).update(
        submitted_at=timezone.now() - timedelta(days=3)
    )

    # when
    response = console.get(reverse("admin:index"))

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'id="count-in-review".*?<strong>1</strong>', html, re.S)
    assert re.search(r'id="count-waitlisted".*?<strong>1</strong>', html, re.S)
    waiting = html[html.index('id="console-waiting"') :]
    assert re.search(r'class="number late">3\.0 days', waiting)
    assert "Fast lane" in waiting
    assert "2 days" in waiting
    assert reverse("admin-capacity-chart") in html


def test_index_shows_headroom_overcommitted_days_at_risk_and_recent_decisions(
    console: Client, in_review: Application, operator: User, pool: Any, today: date
) -> None:
    # given: an approval, then the pool shrinks to 10 GPUs under it for its window
    from allocations.models import CapacityEvent
    from allocations.services import applications as services
    from allocations.services.inventory import inventory_create

    services.application_approve(application=in_review, actor=operator, note="Fine.")
    inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today + timedelta(days=1), "gpus_in_service": 10},
        actor=operator,
    )

    # when
    html = console.get(reverse("admin:index")).content.decode()

    # then: 10 days of the window are overcommitted, its allocation is at risk
    headroom = html[html.index('id="console-headroom"') :]
    assert "narvik-test" in headroom
    assert "free, next 30 days" in headroom
    assert re.search(r'id="count-overcommitted".*?<strong class="late">10</strong>', html, re.S)
    assert re.search(r'id="count-at-risk".*?<strong class="late">1</strong>', html, re.S)
    decisions = html[html.index('id="console-decisions"') :]
    assert "Large training run" in decisions
    assert "Approved" in decisions


# --- deciding on the application's page -----------------------------------------------------------


def test_reviewer_approves_from_the_page_with_a_reason(
    console: Client, in_review: Application, operator: User
) -> None:
    # given
    html = console.get(page(in_review)).content.decode()
    assert 'id="approve-button"' in html
    assert 'id="reject-button"' in html

    # when
    response = console.post(
        decide_url(in_review), {"decision": "approve", "reason": "Peer review passed."}
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == page(in_review)
    in_review.refresh_from_db()
    assert in_review.status == ApplicationStatus.APPROVED
    assert in_review.reasons == [{"code": "approved_by_reviewer", "message": "Peer review passed."}]
    assert in_review.decided_by == operator
    assert Allocation.objects.filter(application=in_review).exists()
    assert LogEntry.objects.filter(object_id=str(in_review.pk)).get().get_change_message() == (
        "Approved: Peer review passed."
    )
    assert messages_of(response) == ["Approved “Large training run”."]


def test_reject_without_a_reason_is_refused_and_changes_nothing(
    console: Client, in_review: Application
) -> None:
    response = console.post(decide_url(in_review), {"decision": "reject", "reason": "  "})

    in_review.refresh_from_db()
    assert in_review.status == ApplicationStatus.IN_REVIEW
    assert messages_of(response) == ["Say why: the applicant reads the reason."]
    assert not LogEntry.objects.exists()


def test_reviewer_rejects_a_waitlisted_application_from_its_page(
    console: Client, too_big: Application
) -> None:
    html = console.get(page(too_big)).content.decode()
    assert 'id="approve-button"' not in html
    assert 'id="reject-button"' in html

    console.post(decide_url(too_big), {"decision": "reject", "reason": "Out of scope."})

    too_big.refresh_from_db()
    assert too_big.status == ApplicationStatus.REJECTED
    assert too_big.reasons[0]["message"] == "Out of scope."


def test_an_operator_who_does_not_review_the_program_sees_why_and_cannot_decide(
    in_review: Application,
) -> None:
    # given
    other = UserFactory(email="ops@narvik.example", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(other)

    # when
    html = client.get(page(in_review)).content.decode()
    response = client.post(decide_url(in_review), {"decision": "approve", "reason": "x"})

    # then
    assert 'id="approve-button"' not in html
    assert "You cannot decide this application" in html
    in_review.refresh_from_db()
    assert in_review.status == ApplicationStatus.IN_REVIEW
    assert "reviewer" in messages_of(response)[0]


def test_application_page_draws_the_request_against_program_pool_and_quota(
    console: Client, in_review: Application
) -> None:
    html = console.get(page(in_review)).content.decode()

    # 12,000 GPU-hours over 10 days: 1,200 a day; the quota is 100,000 in the program
    assert "1,200 GPU-hours a day" in html
    assert "12,000 of 100,000" in html
    assert "Its capacity is held while it is in review" in html
    chart = html[html.index('id="request-chart"') :]
    assert chart.count('class="day"') == 10
    assert "this request 1,200" in chart
    assert "program can still take" in chart


def test_application_page_reads_reasons_labels_and_no_save(
    console: Client, in_review: Application
) -> None:
    html = console.get(page(in_review)).content.decode()

    assert "Above 10000 GPU-hours, Fast lane is decided by a reviewer." in html
    assert "(above auto approve)" in html
    assert '"code"' not in html  # no raw JSON
    assert "GPU-hours:" in html
    assert "Data stays in the EEA:" in html
    assert 'name="_save"' not in html
    # no decision time while it waits for one
    assert re.search(r"Decided at:</label>\s*<div class=\"readonly\">-</div>", html)


def test_review_queue_shows_age_against_target_and_narrow_columns(
    console: Client, in_review: Application
) -> None:
    html = console.get(reverse("admin:allocations_reviewqueueitem_changelist")).content.decode()

    assert re.search(r"0\.0 of 2 days", html)
    assert "above auto approve" in html
    assert "Submitted at" not in html  # the age column carries it, with the time on hover


# --- names, labels, read-only pages, charts, the audit trail --------------------------------


@pytest.fixture
def approved_with_usage(in_review: Application, operator: User, today: date) -> Allocation:
    from allocations.services import applications as services

    services.application_approve(application=in_review, actor=operator, note="Fine.")
    allocation = Allocation.objects.get(application=in_review)
    Allocation.objects.filter(pk=allocation.pk).update(status="active")
    # 01:00 local time tomorrow, whatever the time of day the test runs at
    started = timezone.make_aware(datetime.combine(today + timedelta(days=1), time(1)))
    usage_ingest(
        records=[
            {
                "source": "slurm-test",
                "external_id": "job-1",
                "allocation": allocation.pk,
                "gpu_seconds": 2_880_000,
                "started_at": started,
                "ended_at": started + timedelta(hours=2),
                "energy_kwh": None,
            }
        ],
        source="slurm-test",
    )
    allocation.refresh_from_db()
    return allocation


def test_allocations_are_named_by_title_and_organization_everywhere(
    console: Client, approved_with_usage: Allocation
) -> None:
    allocation = approved_with_usage
    name = "Large training run (Fjord AI AS)"
    assert str(allocation) == name

    change = console.get(reverse("admin:allocations_allocation_change", args=[allocation.pk]))
    usage = console.get(reverse("admin:allocations_usagerecord_changelist"))
    calls = console.get(reverse("admin:allocations_backendcall_changelist"))

    for response in (change, usage, calls):
        html = response.content.decode()
        assert name in html
        # the visible text: the id stays in links and hidden fields only
        assert str(allocation.pk) not in re.sub(r"<[^>]*>", "", html)


def test_allocation_page_shows_used_gpu_hours_not_seconds_and_no_save(
    console: Client, approved_with_usage: Allocation
) -> None:
    html = console.get(
        reverse("admin:allocations_allocation_change", args=[approved_with_usage.pk])
    ).content.decode()

    assert "Used GPU-hours:" in html
    assert "800.00" in html  # 2,880,000 GPU-seconds
    assert "2880000" not in html
    assert "Used gpu seconds" not in html
    assert "Energy (kWh):" in html
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html


def test_usage_records_list_gpu_hours(console: Client, approved_with_usage: Allocation) -> None:
    html = console.get(reverse("admin:allocations_usagerecord_changelist")).content.decode()
    assert "800.00" in html
    assert UsageRecord.objects.count() == 1


def test_capacity_chart_shows_committed_held_used_with_values_per_day(
    console: Client, approved_with_usage: Allocation, pool: Any, today: date
) -> None:
    html = console.get(
        reverse("admin-capacity-chart") + f"?site={pool.site_id}&days=30&back=0"
    ).content.decode()

    assert "Committed, held and used per day" in html
    day = today + timedelta(days=1)
    hover = re.search(rf'data-day="{day}"[^>]*><title>([^<]*)</title>', html)
    assert hover is not None
    assert "committed 1,200" in hover.group(1)
    assert "capacity 2,280" in hover.group(1)
    assert "used 800" in hover.group(1)


def test_audit_trail_is_paginated(console: Client, in_review: Application) -> None:
    for index in range(60):
        audit_record(actor=None, verb=f"test.{index}", target=in_review)

    html = console.get(reverse("admin:audit_auditevent_changelist")).content.decode()

    assert html.count('class="field-verb"') == 50
    assert 'class="paginator"' in html


def test_the_application_pages_trail_links_to_its_events_alone(
    console: Client, in_review: Application, too_big: Application
) -> None:
    # given
    for index in range(12):
        audit_record(actor=None, verb=f"test.{index}", target=in_review)
    html = console.get(page(in_review)).content.decode()
    link = re.search(r'<a href="([^"]*target_id=[^"]*)">All (\d+) events</a>', html)
    assert link is not None

    # when
    response = console.get(link.group(1).replace("&amp;", "&"))

    # then: that application's events only (create, submit, in review, and the 12)
    assert response.status_code == 200
    listed = response.content.decode().count('class="field-verb"')
    assert listed == int(link.group(2)) == 15


def test_an_approved_applications_quota_is_counted_once(
    console: Client, in_review: Application, operator: User
) -> None:
    from allocations.services import applications as services

    services.application_approve(application=in_review, actor=operator, note="Fine.")

    html = console.get(page(in_review)).content.decode()

    assert "12,000 of 100,000" in html
    assert "its GPU-hours are committed" in html
