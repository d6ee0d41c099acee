"""Outages of Redis and PostgreSQL under a running portal, as clients see them.

Redis away (broker and rate-limit cache on it, as `.env.example` sets them): everything that
needs only the database keeps answering, submissions included (their decisions wait in the
outbox), and the rate limits let requests through, saying so in a log line and a metric.
PostgreSQL away: the API answers 503 JSON `unavailable` with Retry-After, never 500, and
recovers without any process restarted.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tests.faults.conftest import Stack
from tests.faults.harness import Answer, Dropped, http, wait_until


def _draft(
    stack: Stack, member: dict[str, str], *, gpu_hours: int = 100, start_in_days: int = 3
) -> dict[str, Any]:
    from django.utils import timezone

    start = timezone.localdate() + timedelta(days=start_in_days)
    return {
        "organization": member["organization"],
        "program": stack.seeded["programs"][0],
        "pool": stack.seeded["pools"][0],
        "title": "Outage",
        "summary": "",
        "gpu_hours": gpu_hours,
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=1)).isoformat(),
        "purpose": "Fine-tuning a Norwegian language model",
        "data_stays_in_eea": True,
    }


def _metric(stack: Stack, name: str) -> float:
    """The sum of a metric's samples over the web workers that answered (one scrape each
    of a few, since each gunicorn worker counts for itself)."""
    answer = http(
        "GET",
        f"{stack.portal.url}/metrics",
        headers={"Authorization": f"Bearer {stack.portal.env['PORTAL_METRICS_TOKEN']}"},
    )
    assert answer.status == 200, answer.body
    return sum(
        float(value)
        for value in re.findall(rf"(?m)^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", answer.body)
    )


def test_with_redis_away_reads_and_database_writes_keep_answering(fault_stack: Stack) -> None:
    # given: a portal whose broker and rate-limit cache are on Redis
    member = fault_stack.seed(organizations=1)["members"][0]
    portal = fault_stack.portal
    portal.start_web(workers=2)
    token = member["token"]
    draft = http(
        "POST", f"{portal.url}/api/v1/applications/", token=token, body=_draft(fault_stack, member)
    )
    assert draft.status == 201, draft.body

    # when: Redis goes away and clients keep reading, creating and editing
    fault_stack.redis.stop()
    answers: list[tuple[str, Answer]] = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        for method, path, body in (
            ("GET", "programs/", None),
            ("GET", "applications/", None),
            ("GET", "me/", None),
            ("POST", "applications/", _draft(fault_stack, member)),
            ("PATCH", f"applications/{draft.body['id']}/", {"title": "Edited while Redis is away"}),
        ):
            answers.append(
                (
                    f"{method} {path}",
                    http(method, f"{portal.url}/api/v1/{path}", token=token, body=body),
                )
            )
    ready = http("GET", f"{portal.url}/readyz")
    let_through = _metric(fault_stack, "portal_rate_limit_unavailable_total")

    # then: every answer a success, fast; /readyz names what is away; the fail-open counted
    statuses = Counter((what, answer.status) for what, answer in answers)
    assert all(answer.status < 300 for _, answer in answers), statuses
    assert max(answer.seconds for _, answer in answers) < 5
    assert ready.status == 200, ready.body
    assert ready.body["status"] == "degraded"
    assert set(ready.body["unavailable"]) == {"broker", "cache"}
    assert ready.body["checks"]["database"] == "ok"
    assert let_through > 0
    assert "rate limit store unavailable" in portal.web.log_text()  # type: ignore[union-attr]

    # when: Redis is back
    fault_stack.redis.start()

    # then
    def answers_ok() -> bool:
        return http("GET", f"{portal.url}/readyz").body["status"] == "ok"

    wait_until(answers_ok, timeout=30, what="/readyz to say ok")
    assert http("GET", f"{portal.url}/api/v1/programs/", token=token).status == 200


# --- the database away for 30 seconds -----------------------------------------------------------

DECISIONS = ("application.approved", "application.waitlisted", "application.in_review",
             "application.rejected")  # fmt: skip


def _counts(stack: Stack, verbs: list[str]) -> dict[str, int]:
    """Audit events with these verbs, per application."""
    rows = stack.sql(
        "SELECT target_id, count(*) FROM accounts_auditevent WHERE verb = ANY(%s) "
        "GROUP BY target_id",
        verbs,
    )
    return {str(target): count for target, count in rows}


def _undecided_effects(stack: Stack) -> list[tuple[Any, ...]]:
    """The outbox rows of the decisions of applications still `submitted`, to say why."""
    return stack.sql(
        "SELECT e.key, e.state, e.delivery, e.claimed_by, e.claimed_at, e.lease_until, "
        "e.published_at, e.error FROM outbox_effect e JOIN allocations_application a "
        "ON e.key = 'decide:' || a.id || ':' || a.submission WHERE a.status = 'submitted'"
    )


@dataclass
class Client:
    """A client that creates, submits and reads, retrying each write with its key after a
    503 (as long as Retry-After says) or a dropped connection; it records every answer."""

    stack: Stack
    member: dict[str, str]
    answers: list[tuple[float, str, Answer]] = field(default_factory=list)
    dropped: int = 0
    created: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    pause: float = 0.2

    def call(self, method: str, path: str, body: Any = None, *, keyed: bool = False) -> Answer:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else {}
        while True:
            try:
                answer = http(
                    method,
                    f"{self.stack.portal.url}/api/v1/{path}",
                    token=self.member["token"],
                    body=body,
                    headers=headers,
                )
            except Dropped:
                self.dropped += 1
                time.sleep(0.5)
                continue
            self.answers.append((time.monotonic(), f"{method} {path}", answer))
            if answer.status == 503 or (
                answer.status == 409 and answer.body.get("code") == "idempotency_key_in_use"
            ):
                time.sleep(float(answer.header("Retry-After") or 1))
                continue
            return answer

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            created = self.call(
                "POST", "applications/", _draft(self.stack, self.member), keyed=True
            )
            assert created.status == 201, created.body
            self.created.append(created.body["id"])
            submitted = self.call("POST", f"applications/{created.body['id']}/submit/", keyed=True)
            assert submitted.status == 202, submitted.body
            self.submitted.append(created.body["id"])
            read = self.call("GET", f"applications/{created.body['id']}/")
            assert read.status == 200, read.body
            time.sleep(self.pause)


def test_a_30_second_database_outage_answers_503_and_recovers_losing_and_repeating_nothing(
    fault_stack: Stack,
) -> None:
    # given: web, two workers and beat on the private cluster, three clients at work
    seeded = fault_stack.seed(organizations=3, gpus_per_pool=5000)
    portal = fault_stack.portal
    portal.env["PORTAL_DECISION_TIMEOUT_SECONDS"] = "20"
    web = portal.start_web(workers=2)
    portal.start_worker()
    portal.start_worker()
    portal.start_beat()
    pids = {process.name: process.pid for process in portal.processes()}
    web_workers = sorted(web.children())
    clients = [Client(fault_stack, member) for member in seeded["members"]]
    stop = threading.Event()
    threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
    for thread in threads:
        thread.start()

    try:
        # when: PostgreSQL stops for 30 s in the middle of it
        time.sleep(5)
        outage_started = time.monotonic()
        fault_stack.postgres.stop()
        time.sleep(30)
        fault_stack.postgres.start()
        back = time.monotonic()
        time.sleep(15)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"

    # then: every answer a success or a JSON 503 `unavailable` with Retry-After
    answers = [answer for client in clients for answer in client.answers]
    statuses = Counter(f"{what.split(' ')[0]} {a.status}" for _, what, a in answers)
    unexpected = [(what, a.status, a.body) for _, what, a in answers if 300 <= a.status != 503]
    assert not unexpected, unexpected[:5]
    unavailable = [answer for _, _, answer in answers if answer.status == 503]
    assert unavailable, f"the outage was not seen: {statuses}"
    for answer in unavailable:
        assert answer.body["code"] == "unavailable"
        assert int(answer.header("Retry-After") or 0) > 0
    # and the portal recovered without any process restarted
    assert {process.name: process.pid for process in portal.processes()} == pids
    assert portal.all_running()
    assert sorted(web.children()) == web_workers
    first_success = min((at for at, _, a in answers if at > back and a.status < 300), default=None)
    assert first_success is not None, "nothing succeeded after the database came back"

    # then: nothing lost, nothing done twice
    created = {application for client in clients for application in client.created}
    submitted = {application for client in clients for application in client.submitted}
    in_database = {str(row[0]) for row in fault_stack.sql("SELECT id FROM allocations_application")}
    # each create the clients made (with its retries) made one row, each submit one submit
    assert in_database == created
    submits = _counts(fault_stack, ["application.submit"])
    assert {key: value for key, value in submits.items() if value != 1} == {}
    assert set(submits) == submitted

    def all_decided() -> bool:
        return not fault_stack.scalar(
            "SELECT count(*) FROM allocations_application WHERE status = 'submitted'"
        )

    try:
        wait_until(all_decided, timeout=150, interval=1, what="every submission decided")
    except TimeoutError as error:
        raise AssertionError(f"{error}: {_undecided_effects(fault_stack)}") from error
    decided_at = time.monotonic()
    decisions = _counts(fault_stack, list(DECISIONS))
    assert set(decisions) == submitted
    assert {key: value for key, value in decisions.items() if value != 1} == {}
    print(
        f"\ndatabase outage 30 s: {len(answers)} answers {dict(statuses)}, "
        f"{len(unavailable)} x 503, {sum(c.dropped for c in clients)} dropped; "
        f"first success {first_success - back:.1f} s after the database was back; "
        f"{len(submitted)} submitted, all decided once, the last "
        f"{decided_at - back:.0f} s after the database was back "
        f"(outage began {back - outage_started:.0f} s before)"
    )


# --- the broker away for 60 seconds -------------------------------------------------------------


def test_a_60_second_broker_outage_fails_nothing_loses_nothing_and_decides_all_within_30_s(
    fault_stack: Stack,
) -> None:
    # given: web, two decision workers, one worker for the other queues, beat; three clients
    # that each create, submit and read an application, then pause a second (about two
    # submissions a second together: a busy day's burst, not a benchmark)
    seeded = fault_stack.seed(organizations=3, gpus_per_pool=5000)
    portal = fault_stack.portal
    portal.env["PORTAL_DECISION_TIMEOUT_SECONDS"] = "20"
    portal.start_web(workers=2)
    portal.start_worker(queues=["decisions"])
    portal.start_worker(queues=["decisions"])
    portal.start_worker(queues=["scheduler", "mail", "celery"])
    portal.start_beat()
    clients = [Client(fault_stack, member, pause=1.0) for member in seeded["members"]]
    stop = threading.Event()
    threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
    for thread in threads:
        thread.start()

    try:
        # when: Redis (broker and cache) stops for 60 s, without persistence: what was queued
        # in it is gone when it comes back
        time.sleep(5)
        outage_started = time.monotonic()
        fault_stack.redis.stop()
        time.sleep(60)
        fault_stack.redis.start()
        back = time.monotonic()
        backlog = fault_stack.scalar(
            "SELECT count(*) FROM allocations_application WHERE status = 'submitted'"
        )
        time.sleep(5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"

    def all_decided() -> bool:
        return not fault_stack.scalar(
            "SELECT count(*) FROM allocations_application WHERE status = 'submitted'"
        )

    wait_until(all_decided, timeout=90, interval=0.5, what="every submission decided")
    decided_after = time.monotonic() - back

    # then: no answer a 5xx but 503, and the submissions during the outage answered 202
    answers = [answer for client in clients for answer in client.answers]
    statuses = Counter(f"{what.split(' ')[0]} {a.status}" for _, what, a in answers)
    failed = [
        (what, a.status, a.body) for _, what, a in answers if a.status >= 500 and a.status != 503
    ]
    assert not failed, failed[:5]
    during = [
        answer
        for at, what, answer in answers
        if outage_started <= at <= back and what.endswith("/submit/")
    ]
    assert during, "no submission during the outage"
    assert {answer.status for answer in during} == {202}

    # then: nothing lost, each decided once, all within 30 s of the broker's return
    submitted = {application for client in clients for application in client.submitted}
    submits = _counts(fault_stack, ["application.submit"])
    assert set(submits) == submitted
    decisions = _counts(fault_stack, list(DECISIONS))
    assert set(decisions) == submitted
    assert {key: value for key, value in decisions.items() if value != 1} == {}
    print(
        f"\nbroker outage 60 s: {len(answers)} answers {dict(statuses)}, "
        f"{sum(c.dropped for c in clients)} dropped; {len(during)} submissions during the "
        f"outage, all 202; {backlog} undecided when the broker came back; {len(submitted)} "
        f"submitted in all, each decided once, the last {decided_after:.1f} s after the "
        "broker was back"
    )
    assert decided_after <= 30, f"the last decision came {decided_after:.1f} s after the return"
