"""The transactional outbox: effects written with their cause, published and marked by the
relay, claimed by one delivery at a time, re-driven when their worker died or their lease
ran out, and never multiplied by the beat's re-queue."""

from __future__ import annotations

import multiprocessing
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from allocations import effects, tasks
from allocations.models import Application
from allocations.services import applications as services
from outbox import services as outbox
from outbox import tasks as outbox_tasks
from outbox.models import Effect, Worker
from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any], str, int]]:
    """The messages the outbox publishes, as (task, args, queue, delivery): the broker is the
    outside world."""
    messages: list[tuple[str, list[Any], str, int]] = []

    def send(effect: Effect, producer: Any = None) -> None:
        messages.append((effect.task, effect.args, effect.queue, effect.delivery))

    monkeypatch.setattr(outbox, "_send", send)
    return messages


def _later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


# --- written with the cause --------------------------------------------------------------------


def test_a_submission_writes_its_decision_in_its_own_transaction(draft, founder):
    # when
    submitted = services.application_submit(application=draft(), actor=founder)

    # then
    effect = Effect.objects.get()
    assert (effect.task, effect.args, effect.queue, effect.state) == (
        "allocations.tasks.decide_application",
        [str(submitted.pk), 1],
        "decisions",
        "pending",
    )
    assert effect.key == f"decide:{submitted.pk}:1"


def test_an_effect_rolls_back_with_its_cause(draft, founder):
    # given
    application = draft()

    def submit_then_fail() -> None:
        with transaction.atomic():
            services.application_submit(application=application, actor=founder)
            raise RuntimeError("the request failed after the submit")

    # when: the submission's transaction fails after the service wrote its effect
    with pytest.raises(RuntimeError):
        submit_then_fail()

    # then: neither the submission nor its effect
    assert Application.objects.get(pk=application.pk).status == "draft"
    assert not Effect.objects.exists()


def test_a_broker_away_at_commit_leaves_the_effect_pending_and_raises_nothing(
    draft, founder, monkeypatch, django_capture_on_commit_callbacks
):
    # given: a broker that refuses every message
    def refuse(effect: Effect, producer: Any = None) -> None:
        raise ConnectionRefusedError("the broker is away")

    monkeypatch.setattr(outbox, "_send", refuse)
    monkeypatch.setattr(outbox, "_broker_quiet_until", 0.0)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        services.application_submit(application=draft(), actor=founder)

    # then
    assert Effect.objects.get().state == "pending"
    assert Effect.objects.get().delivery == 0


def test_a_submit_answers_202_while_the_broker_is_away(
    client_for, draft, founder, django_capture_on_commit_callbacks
):
    # given: this process publishes to a port where nothing listens
    from tests.faults.harness import free_port
    from tests.workers.harness import publishing_to

    application = draft()
    outbox._broker_quiet_until = 0.0

    # when
    with (
        publishing_to(celery_app, f"redis://127.0.0.1:{free_port()}/0"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        started = time.monotonic()
        response = client_for(founder).post(f"/api/v1/applications/{application.pk}/submit/")
        seconds = time.monotonic() - started
    outbox._broker_quiet_until = 0.0

    # then: accepted at once, its decision waits in the outbox
    assert response.status_code == 202, response.json()
    assert seconds < 5
    assert Effect.objects.get().state == "pending"


def test_under_always_eager_an_effect_runs_at_commit_through_its_claim_and_finish(
    draft, founder, django_capture_on_commit_callbacks
):
    # given: no broker at all, tasks run in the caller (a test's live server, a script)
    celery_app.conf.task_always_eager = True

    # when
    try:
        with django_capture_on_commit_callbacks(execute=True):
            submitted = services.application_submit(application=draft(), actor=founder)
    finally:
        celery_app.conf.task_always_eager = False

    # then: decided at once, and its row marked done under its first delivery
    assert Application.objects.get(pk=submitted.pk).status == "approved"
    decision = Effect.objects.get(key=f"decide:{submitted.pk}:1")
    assert (decision.state, decision.delivery) == ("done", 1)


# --- the relay ---------------------------------------------------------------------------------


def test_the_relay_publishes_pending_rows_once_and_marks_them(draft, founder, sent):
    # given
    first = services.application_submit(application=draft(), actor=founder)
    second = services.application_submit(application=draft(), actor=founder)

    # when: two passes
    published = outbox.effects_publish()
    again = outbox.effects_publish()

    # then
    assert (published, again) == (2, 0)
    assert sent == [
        ("allocations.tasks.decide_application", [str(first.pk), 1], "decisions", 1),
        ("allocations.tasks.decide_application", [str(second.pk), 1], "decisions", 1),
    ]
    assert set(Effect.objects.values_list("state", "delivery")) == {("published", 1)}


def test_the_relay_stops_at_a_broker_that_refuses_and_keeps_the_rest_pending(
    draft, founder, monkeypatch
):
    # given: a broker that takes one message, then goes away
    taken: list[int] = []

    def send(effect: Effect, producer: Any = None) -> None:
        if taken:
            raise ConnectionRefusedError("the broker is away")
        taken.append(effect.pk)

    monkeypatch.setattr(outbox, "_send", send)
    for _ in range(3):
        services.application_submit(application=draft(), actor=founder)

    # when
    published = outbox.effects_publish()

    # then
    assert published == 1
    assert sorted(Effect.objects.values_list("state", flat=True)) == [
        "pending",
        "pending",
        "published",
    ]
    with pytest.raises(outbox.BrokerAway):
        outbox.effects_publish()


def test_a_row_claimed_by_a_worker_unseen_for_ten_seconds_is_published_again(draft, founder, sent):
    # given: published, claimed by a worker whose heartbeat then stops
    services.application_submit(application=draft(), actor=founder)
    outbox.effects_publish()
    effect = Effect.objects.get()
    outbox.worker_heartbeat(name="w1@host", started_at=timezone.now())
    assert outbox.effect_claim(effect_id=effect.pk, delivery=1, worker="w1@host")

    # when: 5 s later (not yet), then 11 s later
    early = outbox.effects_publish(now=_later(5))
    late = outbox.effects_publish(now=_later(11))

    # then: published again under delivery 2; the old message is no longer current
    assert (early, late) == (0, 1)
    effect.refresh_from_db()
    assert (effect.state, effect.delivery, effect.claimed_by) == ("published", 2, "")
    assert [message[3] for message in sent] == [1, 2]
    assert not outbox.effect_claim(effect_id=effect.pk, delivery=1, worker="w1@host")
    assert outbox.effect_claim(effect_id=effect.pk, delivery=2, worker="w2@host")


def test_a_relay_back_from_a_database_outage_does_not_take_silence_for_death(draft, founder, sent):
    # given: claimed by a worker whose heartbeats could not be written (the database away)
    services.application_submit(application=draft(), actor=founder)
    outbox.effects_publish()
    effect = Effect.objects.get()
    assert outbox.effect_claim(effect_id=effect.pk, delivery=1, worker="w1@host")

    # when: a relay that has just reached the database again passes
    published = outbox.effects_publish(now=_later(30), heartbeats=False)

    # then
    assert published == 0
    assert Effect.objects.get().delivery == 1


def test_a_row_of_a_live_worker_is_published_again_only_once_its_lease_ran_out(
    draft, founder, sent, settings
):
    # given: a worker that keeps beating, and a lease of 60 s
    settings.PORTAL_OUTBOX_LEASE_SECONDS = 60
    services.application_submit(application=draft(), actor=founder)
    outbox.effects_publish()
    effect = Effect.objects.get()
    assert outbox.effect_claim(effect_id=effect.pk, delivery=1, worker="w1@host")

    # when
    Worker.objects.create(name="w1@host", started_at=timezone.now(), seen_at=_later(30))
    within = outbox.effects_publish(now=_later(30))
    Worker.objects.filter(name="w1@host").update(seen_at=_later(61))
    past = outbox.effects_publish(now=_later(61))

    # then
    assert (within, past) == (0, 1)
    assert Effect.objects.get().delivery == 2


def test_a_published_row_never_taken_is_published_again_once_its_queue_is_empty(
    draft, founder, sent, monkeypatch
):
    # given: published; the broker then loses the message (a restart without persistence)
    services.application_submit(application=draft(), actor=founder)
    outbox.effects_publish()
    queue_sizes = {"decisions": 1}
    monkeypatch.setattr(
        outbox, "_empty_queues", lambda names: {n for n in names if not queue_sizes.get(n)}
    )

    # when: while the queue holds a message, it may be this one: no re-drive; then empty
    waiting = outbox.effects_publish(now=_later(30))
    queue_sizes["decisions"] = 0
    lost = outbox.effects_publish(now=_later(31))

    # then
    assert (waiting, lost) == (0, 1)
    assert Effect.objects.get().delivery == 2


def test_the_task_of_an_older_delivery_does_nothing_and_the_current_one_marks_done(
    draft, founder, sent
):
    # given: published twice (the first worker died)
    submitted = services.application_submit(application=draft(), actor=founder)
    outbox.effects_publish()
    effect = Effect.objects.get()
    Effect.objects.filter(pk=effect.pk).update(state="pending")
    outbox.effects_publish()

    # when: the late copy of delivery 1, then delivery 2
    late = tasks.decide_application.apply(
        args=[str(submitted.pk), 1], kwargs={"outbox": [effect.pk, 1]}
    )
    status_after_late = Application.objects.get(pk=submitted.pk).status
    current = tasks.decide_application.apply(
        args=[str(submitted.pk), 1], kwargs={"outbox": [effect.pk, 2]}
    )

    # then
    assert late.result is None
    assert status_after_late == "submitted"
    assert current.result == "approved"
    effect.refresh_from_db()
    assert (effect.state, effect.finished_at is not None) == ("done", True)


def test_a_task_whose_claim_fails_on_the_database_runs_once_the_database_is_back(
    draft, founder, sent, monkeypatch
):
    # given: published; the database refuses the first two claims (a retry sent during an
    # outage, its row still leased to the run that stopped)
    submitted = services.application_submit(application=draft(), actor=founder)
    outbox.effects_publish()
    effect = Effect.objects.get()
    claim = outbox.effect_claim
    refusals = [OperationalError("the database system is shutting down")] * 2

    def flaky_claim(**kwargs: Any) -> bool:
        if refusals:
            raise refusals.pop()
        return claim(**kwargs)

    monkeypatch.setattr(outbox, "effect_claim", flaky_claim)
    monkeypatch.setattr(outbox_tasks, "FINISH_PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(outbox_tasks, "connection", SimpleNamespace(close=lambda: None))

    # when
    result = tasks.decide_application.apply(
        args=[str(submitted.pk), 1], kwargs={"outbox": [effect.pk, 1]}
    )

    # then: decided by this delivery, once, and marked done; nothing published again
    assert result.result == "approved"
    effect.refresh_from_db()
    assert (effect.state, effect.delivery) == ("done", 1)
    assert len(sent) == 1


# --- the beat's re-queue -----------------------------------------------------------------------


def test_requeueing_30_stale_submissions_five_times_leaves_30_messages(draft, founder, sent):
    # given: 30 submissions an hour old whose decisions were published and never ran (their
    # worker is alive and busy elsewhere)
    for _ in range(30):
        services.application_submit(application=draft(), actor=founder)
    Application.objects.update(submitted_at=timezone.now() - timedelta(hours=1))
    outbox.effects_publish()

    # when: the beat re-queues five times, the relay passing after each
    requeued = []
    for _ in range(5):
        requeued.append(services.application_requeue_stale(older_than_seconds=120))
        outbox.effects_publish()

    # then
    assert requeued == [0] * 5
    assert len(sent) == 30
    assert Effect.objects.count() == 30


def test_the_waitlist_beat_adds_no_recheck_while_one_waits_to_start(
    draft, decide, window, pool, sent
):
    # given: a waitlist
    decide(draft(gpu_hours=1_600, **window(1, 1)))
    decide(draft(gpu_hours=1_600, **window(1, 1)))

    # when: the beat runs three times
    counts = [services.waitlists_recheck_all() for _ in range(3)]

    # then
    assert counts == [1, 0, 0]
    assert Effect.objects.filter(task="allocations.tasks.recheck_waitlist").count() == 1


# --- two relays on PostgreSQL ------------------------------------------------------------------


def _relay_in_a_process(results: Any) -> None:
    connections.close_all()
    published: list[tuple[int, int]] = []

    def send(effect: Effect, producer: Any = None) -> None:
        time.sleep(0.005)  # long enough for the other relay to want the same rows
        published.append((effect.pk, effect.delivery))

    outbox._send = send  # type: ignore[assignment]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Effect.objects.filter(state="pending").exists():
            outbox.effects_publish(limit=10)
    finally:
        connections.close_all()
    results.put(published)


@pytest.mark.django_db(transaction=True)
def test_two_relays_on_postgresql_never_publish_a_row_twice(postgres, draft, founder, monkeypatch):
    # given: 120 pending effects (this process publishes none at commit)
    monkeypatch.setattr(outbox, "_broker_quiet_until", time.monotonic() + 3600)
    with transaction.atomic():
        for _ in range(120):
            effects.decide(application_id=draft().pk, submission=1)

    # when: two relays run at once, each in a process of its own
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    connections.close_all()
    relays = [context.Process(target=_relay_in_a_process, args=(results,)) for _ in range(2)]
    for relay in relays:
        relay.start()
    published = [results.get(timeout=120) for _ in relays]
    for relay in relays:
        relay.join(30)

    # then: each row published once, by one relay or the other
    every = [item for part in published for item in part]
    assert len(every) == 120
    assert len({effect for effect, _ in every}) == 120
    assert {delivery for _, delivery in every} == {1}
    assert all(part for part in published), "one relay published nothing: no contention"
    assert set(Effect.objects.values_list("state", "delivery")) == {("published", 1)}
