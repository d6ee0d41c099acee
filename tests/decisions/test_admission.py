"""Admission cycles: a pool's pending applications decided in one transaction, in program
priority then submission order, with a number of queries that does not grow with them."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocations import effects, locks
from allocations.models import Allocation, Application
from allocations.services import admission
from allocations.services import applications as services
from audit.models import AuditEvent
from outbox.models import Effect
from tests.races import race

pytestmark = pytest.mark.django_db


def _submit(drafts: list[Application], founder: Any) -> list[Application]:
    return [services.application_submit(application=draft, actor=founder) for draft in drafts]


def test_a_cycle_decides_in_program_priority_then_submission_order(
    draft, founder, make_program, window
):
    # given: 2,280 GPU-hours on day 1, room for the fast lane's 1,500 or the other program's
    # 1,000, not both; the fast lane (priority 20) submits first, a program of priority 10
    # after it
    first_program = make_program(
        name="First",
        slug="first",
        priority=10,
        nominal_share=Decimal("0.3"),
        lending_limit=Decimal("0.5"),
        borrowing_limit=Decimal("0.2"),
    )
    early, late = _submit(
        [
            draft(gpu_hours=1_500, **window(1, 1)),
            draft(program=first_program, gpu_hours=1_000, **window(1, 1)),
        ],
        founder,
    )

    # when: the first one's message runs the pool's cycle
    services.application_decide(application_id=early.pk, submission=1)

    # then: the program of higher priority was decided first and took the room
    early.refresh_from_db()
    late.refresh_from_db()
    assert (late.status, early.status) == ("approved", "waitlisted")
    order = list(
        AuditEvent.objects.filter(verb__in=["application.approved", "application.waitlisted"])
        .order_by("created_at", "id")
        .values_list("target_id", flat=True)
    )
    assert order == [late.pk, early.pk]


def test_a_cycle_decides_every_pending_application_of_its_pool_once(draft, founder, totals):
    # given
    submitted = _submit([draft(gpu_hours=100 + index) for index in range(5)], founder)

    # when: one message decides all; the others find theirs decided
    for application in submitted:
        services.application_decide(application_id=application.pk, submission=1)

    # then
    assert set(
        Application.objects.filter(pk__in=[a.pk for a in submitted]).values_list(
            "status", flat=True
        )
    ) == {"approved"}
    assert Allocation.objects.count() == 5
    events = AuditEvent.objects.filter(verb="application.approved")
    assert sorted(events.values_list("target_id", flat=True)) == sorted(a.pk for a in submitted)
    assert totals()["pool"] == (sum(100 + index for index in range(5)), 0)
    assert totals()["quota"] == sum(100 + index for index in range(5))


def _queries_of_a_cycle(draft, founder, count: int, gpu_hours: int) -> int:
    submitted = _submit([draft(gpu_hours=gpu_hours) for _ in range(count)], founder)
    with CaptureQueriesContext(connection) as queries:
        services.application_decide(application_id=submitted[0].pk, submission=1)
    assert not Application.objects.filter(status="submitted").exists()
    return len(queries.captured_queries)


@pytest.mark.parametrize("gpu_hours", [100, 12_000])
def test_a_cycle_costs_the_same_number_of_queries_for_one_application_or_thirty(
    draft, founder, gpu_hours
):
    # given: the ledger rows of the window already made (the first decision makes them)
    _queries_of_a_cycle(draft, founder, 1, gpu_hours)

    # when
    one = _queries_of_a_cycle(draft, founder, 1, gpu_hours)
    thirty = _queries_of_a_cycle(draft, founder, 30, gpu_hours)

    # then: the message's read, the cycle's reads and locks, one write per table
    assert one == thirty
    # the message's read, the cycle's reads and locks (the admission lock and the pool's
    # FOR SHARE on PostgreSQL only), one write per table, and the test transaction's
    # savepoint around the cycle's; the outbox's rows of the mails (and of an approval's
    # scheduler calls) in one INSERT; an approval writes its allocation, scheduler call and
    # their audit events too
    expected = 27 if gpu_hours <= 10_000 else 21
    assert one == (expected if connection.vendor == "postgresql" else expected - 2)


def test_a_cycle_writes_its_decisions_mails_and_scheduler_calls_as_effects_once(draft, founder):
    # given: three submissions, each with its decision effect on its way
    submitted = _submit([draft(gpu_hours=100) for _ in range(3)], founder)

    # when: the first one's message runs the cycle, which decides all three
    services.application_decide(application_id=submitted[0].pk, submission=1)

    # then: each decision's mail and scheduler call is on its way, once; the decision
    # effects are left to their messages, which find their applications decided
    mails = Effect.objects.filter(task="allocations.tasks.notify_application_decided")
    assert sorted(args[0] for args in mails.values_list("args", flat=True)) == sorted(
        str(application.pk) for application in submitted
    )
    assert Effect.objects.filter(task="allocations.tasks.run_backend_call").count() == 3
    keys = [effects.decision_key(application.pk, 1) for application in submitted]
    assert Effect.objects.filter(key__in=keys).count() == 3


def test_a_message_for_a_decided_application_runs_its_pool_s_cycle_if_others_wait(draft, founder):
    # given: a decided application, and two submitted in its pool five seconds ago whose own
    # messages have not come (queued behind others, or their cycle's worker killed)
    (decided,) = _submit([draft(gpu_hours=100)], founder)
    services.application_decide(application_id=decided.pk, submission=1)
    waiting = _submit([draft(gpu_hours=101), draft(gpu_hours=102)], founder)
    fresh = _submit([draft(gpu_hours=103)], founder)
    Application.objects.filter(pk__in=[a.pk for a in waiting]).update(
        submitted_at=timezone.now() - timedelta(seconds=5)
    )

    # when: a late copy of the decided one's message runs
    result = services.application_decide(application_id=decided.pk, submission=1)

    # then: it stays as it was, and the pool's cycle decided the two (and, with them, the
    # fresh one, pending in the same pool)
    assert result is not None
    assert result.status == "approved"
    statuses = Application.objects.filter(pk__in=[a.pk for a in waiting]).values_list(
        "status", flat=True
    )
    assert set(statuses) == {"approved"}
    assert Application.objects.get(pk=fresh[0].pk).status == "approved"
    assert AuditEvent.objects.filter(verb="application.approved", target_id=decided.pk).count() == 1


def test_a_message_for_a_decided_application_leaves_fresh_submissions_to_their_own(draft, founder):
    # given: a decided application, and one submitted just now in its pool
    (decided,) = _submit([draft(gpu_hours=100)], founder)
    services.application_decide(application_id=decided.pk, submission=1)
    (fresh,) = _submit([draft(gpu_hours=101)], founder)

    # when: a late copy of the decided one's message runs
    with CaptureQueriesContext(connection) as queries:
        services.application_decide(application_id=decided.pk, submission=1)

    # then: one read; the fresh one waits for its own message
    assert len(queries.captured_queries) == 1
    assert Application.objects.get(pk=fresh.pk).status == "submitted"


def test_a_message_for_a_decided_application_costs_one_read(draft, founder, decide):
    # given
    decided = decide(draft())

    # when
    with CaptureQueriesContext(connection) as queries:
        result = services.application_decide(application_id=decided.pk, submission=1)

    # then
    assert result is not None
    assert result.status == "approved"
    assert len(queries.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_a_cycle_waits_for_the_pool_s_admission_lock(draft, founder, pool):
    # given: another transaction holds the pool's admission lock
    (submitted,) = _submit([draft()], founder)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                locks.lock_admission(pool_id=pool.pk)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    outcome: dict[str, float] = {}

    def cycle() -> None:
        began = time.monotonic()
        try:
            admission.admission_run(pool_id=pool.pk)
        finally:
            outcome["seconds"] = time.monotonic() - began
            connections.close_all()

    # when: a cycle of the pool starts, and the lock is released a second later
    runner = threading.Thread(target=cycle)
    runner.start()
    time.sleep(1.0)
    still_submitted = Application.objects.get(pk=submitted.pk).status
    release.set()
    holder.join(10)
    runner.join(10)

    # then: it waited, then decided
    assert still_submitted == "submitted"
    assert outcome["seconds"] >= 0.9
    assert Application.objects.get(pk=submitted.pk).status == "approved"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_four_processes_decide_forty_applications_exactly_once(draft, founder, pool, totals):
    # given: forty applications of 100 to 139 GPU-hours, all submitted
    submitted = _submit([draft(gpu_hours=100 + index) for index in range(40)], founder)
    ids = [application.pk for application in submitted]

    def deciding(offset: int):
        def run() -> None:
            for application_id in ids[offset::4]:
                services.application_decide(application_id=application_id, submission=1)

        return run

    # when: four processes take their messages at the same moment
    outcomes = race({str(offset): deciding(offset) for offset in range(4)})

    # then: one decision, one allocation each; the ledger holds each once
    assert set(outcomes.values()) == {"ok"}
    assert set(Application.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "approved"
    }
    decided = AuditEvent.objects.filter(verb="application.approved", target_id__in=ids)
    assert sorted(decided.values_list("target_id", flat=True)) == sorted(ids)
    assert Allocation.objects.filter(application_id__in=ids).count() == 40
    assert totals()["pool"] == (sum(range(100, 140)), 0)
    assert totals()["quota"] == sum(range(100, 140))
