"""The decision tasks, called directly: idempotent decisions, the re-queue of lost ones, the
beats, and the decision mails. The broker is the outside world: where a task queues another,
the effects it wrote to the outbox are read back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.authz import SYSTEM
from accounts.models import MembershipRole
from allocations import notifications, tasks
from allocations.models import Allocation, Application
from allocations.services import applications as services
from audit.models import AuditEvent
from outbox.models import Effect
from tests.decisions.support import queued_tasks
from tests.effects import queued as queued_effects
from tests.effects import run_effects
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded():
    """`recorded(*names)` answers a function that lists the effects of the named tasks
    written to the outbox since, as (name, arguments)."""
    from outbox.models import Effect

    def record(*names: str) -> Callable[[], list[tuple[str, tuple]]]:
        since = Effect.objects.order_by("-id").values_list("id", flat=True).first() or 0
        tasks = {f"allocations.tasks.{name}" for name in names}

        def calls() -> list[tuple[str, tuple]]:
            effects = Effect.objects.filter(id__gt=since, task__in=tasks).order_by("id")
            return [(effect.task.rsplit(".", 1)[-1], tuple(effect.args)) for effect in effects]

        return calls

    return record


def _approved_events(application: Application) -> int:
    return AuditEvent.objects.filter(target_id=application.pk, verb="application.approved").count()


# --- idempotent decisions ------------------------------------------------------------------------


def test_the_decide_task_decides_once_however_often_it_is_delivered(draft, founder, totals):
    # given
    submitted = services.application_submit(application=draft(), actor=founder)

    # when
    first = tasks.decide_application(str(submitted.pk), 1)
    redelivered = tasks.decide_application(str(submitted.pk), 1)

    # then
    assert first == redelivered == "approved"
    assert _approved_events(submitted) == 1
    assert Allocation.objects.count() == 1
    assert totals()["pool"] == (1_000, 0)
    assert totals()["quota"] == 1_000


def test_a_decision_for_an_old_submission_number_is_a_no_op(draft, founder, snapshot):
    # given
    submitted = services.application_submit(application=draft(), actor=founder)
    before, events = snapshot(), AuditEvent.objects.count()

    # when
    stale = services.application_decide(application_id=submitted.pk, submission=0)

    # then
    assert stale.status == "submitted"
    assert (snapshot(), AuditEvent.objects.count()) == (before, events)


def test_deciding_twice_and_with_a_stale_number_records_one_approval(draft, founder, totals):
    # given
    submitted = services.application_submit(application=draft(), actor=founder)

    # when
    decisions = [
        services.application_decide(application_id=submitted.pk, submission=number)
        for number in (1, 1, 0, 2)
    ]

    # then
    assert [decision.status for decision in decisions] == ["approved"] * 4
    assert _approved_events(submitted) == 1
    assert Allocation.objects.count() == 1
    assert totals()["pool"] == (1_000, 0)


def test_a_repeated_decision_queues_no_second_mail(
    draft, founder, django_capture_on_commit_callbacks
):
    # given
    submitted = services.application_submit(application=draft(), actor=founder)

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        services.application_decide(application_id=submitted.pk, submission=1)
        services.application_decide(application_id=submitted.pk, submission=1)

    # then
    mails = [task for task in queued_tasks(callbacks) if task[0] == "notify_application_decided"]
    assert mails == [("notify_application_decided", (str(submitted.pk), "approved"))]


def test_a_decision_for_a_deleted_application_does_nothing(draft, founder):
    # given
    application = draft()
    identifier = str(application.pk)
    AuditEvent.objects.filter(target_id=application.pk).delete()
    Application.objects.filter(pk=application.pk).delete()

    # when
    result = tasks.decide_application(identifier, 1)

    # then
    assert result is None


def test_a_submission_through_the_api_is_decided_by_the_task_it_queues(
    draft, client_for, founder, django_capture_on_commit_callbacks
):
    # given
    application = draft()

    # when: the submission, then the decision it wrote to the outbox, run here
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(founder).post(f"/api/v1/applications/{application.pk}/submit/")
    ran = run_effects(tasks={"allocations.tasks.decide_application"})

    # then
    assert response.status_code == 202
    assert response.json()["status"] == "submitted"
    assert queued_effects(callbacks) == [
        ("allocations.tasks.decide_application", (str(application.pk), 1))
    ]
    assert ran == 1
    assert Application.objects.get(pk=application.pk).status == "approved"


# --- lost decisions are queued again -------------------------------------------------------------


def test_requeue_queues_only_applications_submitted_too_long_ago(
    draft, decide, founder, recorded, settings
):
    # given: the timeout is two minutes
    settings.PORTAL_DECISION_TIMEOUT_SECONDS = 120
    an_hour_ago = timezone.now() - timedelta(hours=1)
    # decided first: a decision runs its pool's admission cycle, which would decide the two
    # left submitted as well
    decided = decide(draft(title="Decided"))
    in_review = decide(draft(title="In review", gpu_hours=12_000))
    lost = services.application_submit(application=draft(title="Lost"), actor=founder)
    fresh = services.application_submit(application=draft(title="Fresh"), actor=founder)
    never_submitted = draft(title="Draft")
    Application.objects.filter(pk__in=[lost.pk, decided.pk, in_review.pk]).update(
        submitted_at=an_hour_ago
    )
    # the lost one's decision gave up (its retries spent on a database that was away)
    Effect.objects.filter(key=f"decide:{lost.pk}:1").update(state="failed")
    calls = recorded("decide_application")

    # when
    count = tasks.requeue_stale_applications()

    # then
    assert count == 1
    assert calls() == [("decide_application", (str(lost.pk), 1))]
    assert {fresh.status, never_submitted.status} == {"submitted", "draft"}


def test_a_requeued_decision_of_an_application_decided_meanwhile_changes_nothing(
    draft, founder, snapshot
):
    # given: queued again, but the first message got through in the meantime
    submitted = services.application_submit(application=draft(), actor=founder)
    tasks.decide_application(str(submitted.pk), 1)
    before, events = snapshot(), AuditEvent.objects.count()

    # when
    result = tasks.decide_application(str(submitted.pk), 1)

    # then
    assert result == "approved"
    assert (snapshot(), AuditEvent.objects.count()) == (before, events)


# --- the beats -----------------------------------------------------------------------------------


def test_the_waitlist_beat_queues_one_recheck_per_pool_with_a_waitlist(
    draft, decide, window, pool, recorded
):
    # given: two waiting in the pool, nothing waiting elsewhere
    calls = recorded("recheck_waitlist")
    decide(draft(gpu_hours=1_600, **window(1, 1)))
    decide(draft(gpu_hours=1_600, **window(2, 2)))
    decide(draft(gpu_hours=1_000, **window(3, 3)))

    # when
    count = tasks.recheck_all_waitlists()

    # then
    assert count == 1
    assert calls() == [("recheck_waitlist", (str(pool.pk),))]


def test_the_recheck_task_returns_how_many_left_the_waitlist(
    draft, decide, window, pool, today, founder
):
    # given
    from allocations.models import CapacityEvent
    from allocations.services import inventory

    waiting = decide(draft(gpu_hours=1_600, **window(1, 1)))
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today, "gpus_in_service": 200},
        actor=SYSTEM,
    )

    # when
    moved = tasks.recheck_waitlist(str(pool.pk))

    # then
    assert moved == 1
    assert Application.objects.get(pk=waiting.pk).status == "approved"


def test_the_daily_beat_starts_allocations_due_today(draft, decide, window):
    # given
    allocation = Allocation.objects.get(application=decide(draft(**window(0, 9))))
    Allocation.objects.filter(pk=allocation.pk).update(status="scheduled")

    # when
    result = tasks.advance_allocations()

    # then
    assert result["started"] == 1
    assert Allocation.objects.get(pk=allocation.pk).status == "active"


def test_the_hold_beat_rejects_holds_whose_window_has_started(
    draft, decide, today, totals, monkeypatch
):
    # given: held yesterday for a window from yesterday on
    yesterday = today - timedelta(days=1)
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: yesterday)
    held = decide(draft(gpu_hours=12_000, start_date=yesterday, end_date=today + timedelta(8)))
    monkeypatch.undo()
    assert held.status == "in_review"

    # when
    count = tasks.expire_holds()

    # then
    assert count == 1
    held.refresh_from_db()
    assert (held.status, held.reasons[0]["code"]) == ("rejected", "hold_expired")
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}


# --- decision mails ------------------------------------------------------------------------------


@pytest.fixture
def second_admin(startup):
    user = UserFactory(email="ceo@fjord.example")
    MembershipFactory(user=user, organization=startup, role=MembershipRole.ADMIN)
    return user


def test_a_decision_is_mailed_to_the_applicant_and_the_org_admins(
    draft, decide, startup, researcher, second_admin, mailoutbox, settings
):
    # given: a plain member applied; a member who did not apply hears nothing
    MembershipFactory(user=UserFactory(email="intern@fjord.example"), organization=startup)
    decided = decide(draft(applicant=researcher))

    # when
    sent = tasks.notify_application_decided(str(decided.pk), "approved")

    # then
    assert sent == 1
    [mail] = mailoutbox
    assert mail.to == ["ceo@fjord.example", "founder@fjord.example", "researcher@fjord.example"]
    assert mail.from_email == settings.DEFAULT_FROM_EMAIL
    assert mail.subject == 'Application "Norwegian LLM fine-tune" approved'
    link = notifications.application_link(decided)
    assert link.startswith(settings.PORTAL_PUBLIC_URL)
    assert link.endswith(f"/{decided.pk}/")
    assert mail.body == (
        "Fjord AI AS applied for 1,000 GPU-hours in Fast lane, on narvik-test from "
        f"{decided.start_date} to {decided.end_date}.\n\n"
        "It is approved: the allocation is made and the GPU-hours are yours in that window. "
        "The scheduler's account is set up for your organization's members; usage shows on "
        "your allocations page.\n\n"
        "Why:\n- Eligible, within quota and capacity: approved.\n\n"
        "Next step:\n"
        f"Nothing to do: run your jobs from {decided.start_date}. You will hear at 75, 90 and "
        "100 % of the hours used.\n\n"
        f"Your application: {link}\n"
    )


def test_a_review_mail_names_every_reason(draft, decide, founder, mailoutbox):
    # given
    decided = decide(draft(gpu_hours=12_000, risk_category="high"))

    # when
    tasks.notify_application_decided(str(decided.pk), "in_review")

    # then
    [mail] = mailoutbox
    assert mail.to == ["founder@fjord.example"]
    assert mail.subject == 'Application "Norwegian LLM fine-tune" is in review'
    assert (
        "Why:\n"
        "- A high-risk AI use is decided by a reviewer.\n"
        "- Above 10000 GPU-hours, Fast lane is decided by a reviewer.\n"
    ) in mail.body
    # the next step with the program's published decision time
    due = timezone.localdate(decided.submitted_at) + timedelta(days=decided.program.turnaround_days)
    assert (
        f"Fast lane publishes a decision time of {decided.program.turnaround_days} days: "
        f"expect a decision by {due}."
    ) in mail.body


def test_an_inactive_admin_gets_no_mail(draft, decide, researcher, founder, mailoutbox):
    # given
    founder.is_active = False
    founder.save(update_fields=["is_active"])
    decided = decide(draft(applicant=researcher))

    # when
    tasks.notify_application_decided(str(decided.pk), "approved")

    # then
    assert mailoutbox[0].to == ["researcher@fjord.example"]


def test_a_mail_for_a_status_the_application_has_left_is_not_sent(
    draft, decide, reviewer, mailoutbox
):
    # given: in review, then approved before the first mail went out
    decided = decide(draft(gpu_hours=12_000))
    services.application_approve(application=decided, actor=reviewer, note="ok")

    # when
    stale = tasks.notify_application_decided(str(decided.pk), "in_review")
    current = tasks.notify_application_decided(str(decided.pk), "approved")

    # then
    assert (stale, current) == (0, 1)
    assert [mail.subject for mail in mailoutbox] == [
        'Application "Norwegian LLM fine-tune" approved'
    ]
