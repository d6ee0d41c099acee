"""Decisions by real Celery worker processes on PostgreSQL and a real broker.

What a mocked worker cannot show: several processes deciding at once keep every limit of the
ledger, a worker killed in the middle loses no application, and a task delivered twice
decides once. Each test checks the outcome against the design's rules: the ledger equals
the daily shares of what was decided (committed for the approved, held for those in review),
no limit is passed on any day, each application has exactly one decision in the audit
trail, and replaying the decisions one by one in the order the audit trail recorded them
gives the same decisions.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from django.db import connection, transaction

from accounts.models import User
from accounts.services import token_create
from allocations import tasks
from allocations.models import (
    Allocation,
    Application,
    ApplicationStatus,
    CapacityEvent,
    PoolDay,
    PowerPhase,
    ProgramDay,
    QuotaUsage,
    SiteDay,
)
from allocations.services import applications as services
from allocations.services.ledger import daily_shares
from audit.models import AuditEvent
from tests.workers.harness import (
    DECIDE_TASK,
    NOTIFY_TASK,
    Cluster,
    Workers,
    build_cluster,
    random_requests,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

Status = ApplicationStatus
CAPACITY_CODES = {"capacity_pool", "capacity_program", "capacity_power"}
DECISION_VERBS = [
    f"application.{status}"
    for status in (Status.APPROVED, Status.WAITLISTED, Status.IN_REVIEW, Status.REJECTED)
]
VISIBILITY_TIMEOUT = 5


# --- the ledger as the design states it, in memory ------------------------------------------


@dataclass(frozen=True)
class Terms:
    nominal_share: Decimal
    lending_limit: Decimal
    borrowing_limit: Decimal

    def nominal(self, capacity: int) -> int:
        return math.floor(capacity * self.nominal_share)

    def guaranteed(self, capacity: int) -> int:
        """The part of the nominal share the program never lends."""
        nominal = self.nominal(capacity)
        return nominal - math.floor(nominal * self.lending_limit)

    def ceiling(self, capacity: int) -> int:
        return self.nominal(capacity) + math.floor(capacity * self.borrowing_limit)


Column = str  # "committed" or "held"


class LedgerModel:
    """Pool, program and site-energy use per day, built from the inventory alone, so that
    decisions can be replayed one at a time and compared with what the workers decided."""

    def __init__(self, cluster: Cluster) -> None:
        (phase,) = PowerPhase.objects.filter(site=cluster.site)
        self.envelope_wh = int(phase.power_mw * 1_000_000 * 24)
        self.capacity = {}
        for pool in cluster.pools:
            (event,) = CapacityEvent.objects.filter(pool=pool)
            self.capacity[pool.pk] = math.floor(event.gpus_in_service * 24 * pool.availability)
        pool = cluster.pools[0]
        self.wh_per_gpu_hour = Decimal(pool.accelerator.it_power_w) * cluster.site.pue
        self.terms = {
            program.pk: Terms(program.nominal_share, program.lending_limit, program.borrowing_limit)
            for program in cluster.programs
        }
        self.auto_approve = {
            program.pk: program.auto_approve_max_gpu_hours for program in cluster.programs
        }
        self.pool: dict[Column, Counter[tuple[UUID, date]]] = {}
        self.program: dict[Column, Counter[tuple[UUID, UUID, date]]] = {}
        self.site_wh: dict[Column, dict[date, Decimal]] = {}
        for column in ("committed", "held"):
            self.pool[column], self.program[column], self.site_wh[column] = Counter(), Counter(), {}

    def _reserved_pool(self, key: tuple[UUID, date]) -> int:
        return self.pool["committed"][key] + self.pool["held"][key]

    def _reserved_program(self, key: tuple[UUID, UUID, date]) -> int:
        return self.program["committed"][key] + self.program["held"][key]

    def _reserved_wh(self, day: date) -> Decimal:
        return sum(
            (self.site_wh[column].get(day, Decimal(0)) for column in self.site_wh), Decimal(0)
        )

    def first_failure(self, application: Application) -> tuple[str, date] | None:
        """The first day and constraint the request does not fit, checked in the design's
        order (pool, program, power), or None if every day fits."""
        for day, share in _days(application):
            pool_id, program_id = application.pool_id, application.program_id
            capacity = self.capacity[pool_id]
            pool_free = capacity - self._reserved_pool((pool_id, day))
            if share > pool_free:
                return "capacity_pool", day
            used = {other: self._reserved_program((pool_id, other, day)) for other in self.terms}
            others_unused_guarantees = sum(
                max(terms.guaranteed(capacity) - used[other], 0)
                for other, terms in self.terms.items()
                if other != program_id
            )
            ceiling = self.terms[program_id].ceiling(capacity) - used[program_id]
            if share > min(pool_free - others_unused_guarantees, ceiling):
                return "capacity_program", day
            if share * self.wh_per_gpu_hour > self.envelope_wh - self._reserved_wh(day):
                return "capacity_power", day
        return None

    def decide(self, application: Application) -> tuple[str, str | None, date | None]:
        """(status, failing constraint, failing day) as the design decides the request now;
        a request that fits is reserved: committed if approved, held if sent to review."""
        failure = self.first_failure(application)
        if failure is not None:
            return Status.WAITLISTED, *failure
        if application.gpu_hours <= self.auto_approve[application.program_id]:
            self.reserve(application, "committed")
            return Status.APPROVED, None, None
        self.reserve(application, "held")
        return Status.IN_REVIEW, None, None

    def reserve(self, application: Application, column: Column) -> None:
        site_wh = self.site_wh[column]
        for day, share in _days(application):
            self.pool[column][(application.pool_id, day)] += share
            self.program[column][(application.pool_id, application.program_id, day)] += share
            site_wh[day] = site_wh.get(day, Decimal(0)) + share * self.wh_per_gpu_hour


def _days(application: Application) -> Iterable[tuple[date, int]]:
    shares = daily_shares(
        gpu_hours=application.gpu_hours, start=application.start_date, end=application.end_date
    )
    return ((application.start_date + timedelta(days=i), s) for i, s in enumerate(shares))


# --- checks ------------------------------------------------------------------------------------


def wait_until_decided(ids: Sequence[UUID], workers: Workers, *, timeout: float) -> None:
    pending = Application.objects.filter(pk__in=ids, status=Status.SUBMITTED)
    try:
        wait_until(lambda: not pending.exists(), timeout=timeout, what="every decision")
    except TimeoutError:
        pytest.fail(
            f"{pending.count()} of {len(ids)} still submitted after {timeout} s\n"
            f"{workers.all_logs()}",
            pytrace=False,
        )


def decision_events(ids: Sequence[UUID]) -> list[AuditEvent]:
    """The decision events of the applications, in the order they were recorded."""
    return list(
        AuditEvent.objects.filter(target_id__in=ids, verb__in=DECISION_VERBS).order_by(
            "created_at", "id"
        )
    )


def assert_decided_once_each(ids: Sequence[UUID], events: Sequence[AuditEvent]) -> None:
    """One submission each, so exactly one decision each: a second event would be a task
    that decided an application twice."""
    per_application = Counter(event.target_id for event in events)
    twice = {target: count for target, count in per_application.items() if count > 1}
    assert not twice, f"decided more than once: {twice}"
    assert set(per_application) == set(ids), "some applications have no decision event"
    submits = Counter(
        AuditEvent.objects.filter(target_id__in=ids, verb="application.submit").values_list(
            "target_id", flat=True
        )
    )
    assert set(submits.values()) == {1}


def assert_outcomes_are_capacity_decisions(applications: Sequence[Application]) -> None:
    """Every request was eligible and within quota: only capacity and size decided."""
    for application in applications:
        codes = [entry["code"] for entry in application.reasons]
        if application.status == Status.WAITLISTED:
            (code,) = codes
            assert code in CAPACITY_CODES, application.reasons
            assert application.failed_day is not None
            assert application.reasons[0]["day"] == application.failed_day.isoformat()
        elif application.status == Status.IN_REVIEW:
            assert codes == ["above_auto_approve"]
            assert application.holds_capacity
        else:
            assert application.status == Status.APPROVED, application.reasons
            assert codes == ["auto_approved"]


def assert_serial_replay_agrees(
    cluster: Cluster, applications: Sequence[Application], events: Sequence[AuditEvent]
) -> None:
    """Replay the decisions one at a time in the audit trail's order on a fresh model: each
    must come out as the workers decided it (status, failing constraint and day). Decisions
    whose windows share a pool-day or site-day were serialized by the row locks, so their
    recorded order is the order they saw the ledger in; the others do not affect each other.
    """
    model = LedgerModel(cluster)
    by_id = {application.pk: application for application in applications}
    mismatches = []
    for event in events:
        application = by_id[event.target_id]
        expected = model.decide(application)
        actual = (
            application.status,
            application.reasons[0]["code"] if application.status == Status.WAITLISTED else None,
            application.failed_day,
        )
        if actual != expected:
            mismatches.append((application.title, application.gpu_hours, expected, actual))
    assert not mismatches, f"{len(mismatches)} decisions differ from a serial replay: {mismatches}"
    # Nothing was released, so a waitlisted request still does not fit the final ledger.
    for application in applications:
        if application.status == Status.WAITLISTED:
            assert model.first_failure(application) is not None, application.title


def assert_ledger_is_the_decided_shares(
    cluster: Cluster, applications: Sequence[Application]
) -> None:
    """Day by day, the committed columns hold exactly the approved applications' shares and
    the held columns those in review; the allocations are the approved requests; each
    organization's quota counts what it was granted or holds."""
    model = LedgerModel(cluster)
    for application in applications:
        if application.status == Status.APPROVED:
            model.reserve(application, "committed")
        elif application.status == Status.IN_REVIEW:
            model.reserve(application, "held")
    pool_rows = list(PoolDay.objects.filter(pool__in=cluster.pools))
    program_rows = list(ProgramDay.objects.filter(pool__in=cluster.pools))
    site_rows = list(SiteDay.objects.filter(site=cluster.site))
    for column in ("committed", "held"):
        hours = f"{column}_gpu_hours"
        assert _nonzero({(r.pool_id, r.day): getattr(r, hours) for r in pool_rows}) == (
            _nonzero(model.pool[column])
        ), column
        assert _nonzero(
            {(r.pool_id, r.program_id, r.day): getattr(r, hours) for r in program_rows}
        ) == _nonzero(model.program[column]), column
        assert _nonzero({r.day: getattr(r, f"{column}_wh") for r in site_rows}) == (
            _nonzero(model.site_wh[column])
        ), column
    approved = [a for a in applications if a.status == Status.APPROVED]
    allocations = dict(
        Allocation.objects.filter(pool__in=cluster.pools).values_list(
            "application_id", "granted_gpu_hours"
        )
    )
    assert allocations == {a.pk: a.gpu_hours for a in approved}
    assert sum(r.committed_gpu_hours for r in pool_rows) == sum(allocations.values())
    holding: Counter[tuple[UUID, UUID]] = Counter()
    for application in applications:
        if application.status in (Status.APPROVED, Status.IN_REVIEW):
            holding[(application.organization_id, application.program_id)] += application.gpu_hours
    quotas = QuotaUsage.objects.filter(program__in=cluster.programs)
    assert _nonzero(
        {(q.organization_id, q.program_id): q.held_gpu_hours for q in quotas}
    ) == _nonzero(holding)


def _nonzero(values: Mapping[Any, Any]) -> dict[Any, Any]:
    return {key: value for key, value in values.items() if value}


def assert_no_limit_passed(cluster: Cluster) -> None:
    """On every day: pool within capacity, each program within nominal plus borrowing, the
    other programs' unused guaranteed parts still free (the cohort rule), site energy within
    the envelope."""
    model = LedgerModel(cluster)
    for row in PoolDay.objects.filter(pool__in=cluster.pools):
        capacity = model.capacity[row.pool_id]
        assert row.capacity_gpu_hours == capacity
        reserved = row.committed_gpu_hours + row.held_gpu_hours
        assert reserved <= capacity, (row.day, reserved, capacity)
        used = {
            program_row.program_id: program_row.committed_gpu_hours + program_row.held_gpu_hours
            for program_row in ProgramDay.objects.filter(pool_id=row.pool_id, day=row.day)
        }
        assert sum(used.values()) == reserved
        unused_guarantees = 0
        for program_id, terms in model.terms.items():
            assert used.get(program_id, 0) <= terms.ceiling(capacity), (row.day, program_id)
            unused_guarantees += max(terms.guaranteed(capacity) - used.get(program_id, 0), 0)
        assert reserved + unused_guarantees <= capacity, (row.day, used)
    for site_row in SiteDay.objects.filter(site=cluster.site):
        assert site_row.envelope_wh == model.envelope_wh
        assert site_row.committed_wh + site_row.held_wh <= site_row.envelope_wh, site_row.day


def assert_consistent(cluster: Cluster, ids: Sequence[UUID]) -> list[Application]:
    applications = list(Application.objects.filter(pk__in=ids))
    assert len(applications) == len(ids)
    assert {a.submission for a in applications} == {1}
    events = decision_events(ids)
    assert_decided_once_each(ids, events)
    assert_outcomes_are_capacity_decisions(applications)
    assert_no_limit_passed(cluster)
    assert_ledger_is_the_decided_shares(cluster, applications)
    assert_serial_replay_agrees(cluster, applications, events)
    return applications


# --- the API, as a client tool calls it -------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def draft_and_submit(base: str, token: str, values: dict[str, Any]) -> tuple[int, int, str]:
    """POST a draft, then its submit action; answers both statuses and the draft's id."""
    body = {
        **values,
        "organization": str(values["organization"].pk),
        "program": str(values["program"].pk),
        "pool": str(values["pool"].pk),
        "start_date": values["start_date"].isoformat(),
        "end_date": values["end_date"].isoformat(),
    }
    created, draft = _post(f"{base}/api/v1/applications/", token, body)
    if created != 201:
        return created, 0, json.dumps(draft)
    submitted, answer = _post(f"{base}/api/v1/applications/{draft['id']}/submit/", token)
    assert answer.get("status") != Status.DRAFT, answer
    return created, submitted, draft["id"]


# --- killing a worker -------------------------------------------------------------------------


def kill_inside_a_decision(
    workers: Workers, candidates: Sequence[str], *, timeout: float
) -> tuple[str, bool]:
    """SIGKILL the first of `candidates` that PostgreSQL shows inside a transaction holding
    the pool-day row locks (SELECT … FOR UPDATE takes RowShareLock on the table), between two
    statements of a decision. A pool's admission cycle runs in one worker at a time, so any
    of them may be the one deciding. Returns the worker killed and whether it was caught
    there; kills the first candidate anyway at the timeout."""
    names = {workers.application_names[name]: name for name in candidates}
    query = """
        SELECT activity.application_name
        FROM pg_stat_activity activity JOIN pg_locks held ON held.pid = activity.pid
        WHERE activity.application_name = ANY(%s) AND activity.state = 'idle in transaction'
          AND held.relation = 'allocations_poolday'::regclass AND held.mode = 'RowShareLock'
        LIMIT 1
    """
    deadline = time.monotonic() + timeout
    found = None
    with connection.cursor() as cursor:
        while found is None and time.monotonic() < deadline:
            cursor.execute(query, [list(names)])
            found = cursor.fetchone()
    victim = names[found[0]] if found is not None else candidates[0]
    workers.kill(victim)
    return victim, found is not None


def _sessions_of(workers: Workers, name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [workers.application_names[name]],
        )
        (count,) = cursor.fetchone()
    return int(count)


def _wait_for_quiet(ids: Sequence[UUID], *, quiet: float = 3, timeout: float = 60) -> set[UUID]:
    """The applications still submitted once no decision has been made for `quiet` s."""
    pending = Application.objects.filter(pk__in=ids, status=Status.SUBMITTED)
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = pending.count()
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.2)
    return set(pending.values_list("pk", flat=True))


def _submit_all(drafts: Sequence[Application]) -> None:
    """Submit each draft in its own transaction (its decision is queued at commit)."""
    try:
        applicants = {
            user.pk: user for user in User.objects.filter(pk__in={d.applicant_id for d in drafts})
        }
        for draft in drafts:
            services.application_submit(application=draft, actor=applicants[draft.applicant_id])
    finally:
        connection.close()


# --- the tests ----------------------------------------------------------------------------------


def test_concurrent_api_submissions_decided_by_three_workers_keep_every_limit(
    live_server: Any, start_workers: Any
) -> None:
    # given: two pools of 100 GPUs (2,280 GPU-hours a day each) on a site whose 0.3 MW
    # envelope covers about 3,445 GPU-hours a day of both; 240 requests from 12
    # organizations ask for about twice that over ten days
    cluster = build_cluster(pools=2, gpus_per_pool=100, power_mw=Decimal("0.3"), organizations=12)
    tokens = {
        user.pk: token_create(user=user, name="load test").secret for _, user in cluster.members
    }
    requests = random_requests(cluster, count=240, seed=2026, horizon_days=10, max_gpu_hours=600)
    workers = start_workers(3)
    names = workers.alive()

    # when: eight clients draft and submit at once through the API
    with ThreadPoolExecutor(max_workers=8) as clients:
        answers = list(
            clients.map(
                lambda request: draft_and_submit(
                    live_server.url, tokens[request[0].pk], request[1]
                ),
                requests,
            )
        )
    assert {(created, submitted) for created, submitted, _ in answers} == {(201, 202)}, answers
    ids = [UUID(identifier) for _, _, identifier in answers]
    wait_until_decided(ids, workers, timeout=180)

    # then
    assert workers.alive() == names
    applications = assert_consistent(cluster, ids)
    approved = sum(a.status == Status.APPROVED for a in applications)
    assert 0 < approved < len(applications), "the pool should take only part of the requests"
    stats = workers.stats()
    assert {name: stats[name]["pid"] for name in names} == {n: workers.pid(n) for n in names}
    decided_by = workers.task_totals(DECIDE_TASK)
    assert all(decided_by[name] > 0 for name in names), decided_by
    assert sum(decided_by.values()) >= len(ids)


def test_a_worker_killed_mid_run_loses_no_application_and_decides_none_twice(
    start_workers: Any,
) -> None:
    # given: the same kind of site and 210 drafts; Redis redelivers a dead worker's task
    # after 5 s
    cluster = build_cluster(pools=2, gpus_per_pool=100, power_mw=Decimal("0.3"), organizations=12)
    drafts = [
        services.application_create(applicant=user, values=values)
        for user, values in random_requests(
            cluster, count=210, seed=7, horizon_days=10, max_gpu_hours=600
        )
    ]
    ids = [draft.pk for draft in drafts]
    workers = start_workers(3, visibility_timeout=VISIBILITY_TIMEOUT)
    started = workers.alive()
    decided = Application.objects.filter(pk__in=ids).exclude(status=Status.SUBMITTED)
    decided = decided.exclude(status=Status.DRAFT)

    # when: submissions stream in while the workers decide, and once about a third are
    # decided one worker is killed with SIGKILL inside a decision's transaction
    submitter = threading.Thread(target=_submit_all, args=(drafts,))
    submitter.start()
    try:
        wait_until(lambda: decided.count() >= len(ids) // 3, timeout=120, what="a third decided")
        victim, caught_inside = kill_inside_a_decision(workers, started, timeout=15)
        killed_at = time.monotonic()
        survivors = [name for name in started if name != victim]
    finally:
        submitter.join(timeout=120)
    assert not submitter.is_alive()
    assert caught_inside, "the victim was never seen holding the ledger's row locks"
    # PostgreSQL rolls the dead session's transaction back and drops its locks
    wait_until(lambda: not _sessions_of(workers, victim), timeout=10, what="the session to end")
    # the survivors decide the rest; the killed worker's message (acknowledged late, so
    # still unacknowledged) comes back once its visibility timeout has passed: the broker
    # redelivers it when a worker scans, at the latest when a replacement starts, as a
    # supervisor would start one
    stranded = _wait_for_quiet(ids)
    assert len(stranded) <= 1, stranded
    time.sleep(max(VISIBILITY_TIMEOUT + 1 - (time.monotonic() - killed_at), 0))
    workers.wait_ready(workers.start(1))
    pending = Application.objects.filter(pk__in=ids, status=Status.SUBMITTED)
    try:
        wait_until(lambda: not pending.exists(), timeout=30, what="the redelivery")
    except TimeoutError:
        # the beat's safety net, as `requeue_stale_applications` would run it; said aloud,
        # since the broker should have redelivered (acks_late, reject_on_worker_lost)
        requeued = services.application_requeue_stale(older_than_seconds=VISIBILITY_TIMEOUT)
        warnings.warn(
            f"the broker did not redeliver in 30 s; the beat's re-queue sent {requeued} again",
            stacklevel=1,
        )
    wait_until_decided(ids, workers, timeout=60)

    # then
    assert victim not in workers.alive()
    assert set(survivors) <= set(workers.alive())
    assert_consistent(cluster, ids)


def test_a_decision_delivered_several_times_is_made_once(start_workers: Any) -> None:
    # given: 30 drafts for a pool of 20 GPUs (456 GPU-hours a day), so that some are
    # approved, some go to review holding capacity (above 200 GPU-hours) and some wait
    cluster = build_cluster(
        pools=1,
        gpus_per_pool=20,
        power_mw=Decimal("10"),
        organizations=6,
        auto_approve_max_gpu_hours=200,
    )
    drafts = [
        services.application_create(applicant=user, values=values)
        for user, values in random_requests(
            cluster, count=30, seed=11, horizon_days=10, max_gpu_hours=400
        )
    ]
    ids = [draft.pk for draft in drafts]
    workers = start_workers(3)

    # when: every submission queues its decision at commit, followed by two copies of the
    # same task, so that the three idle workers take the copies at the same moment
    with transaction.atomic():
        for draft in drafts:
            submitted = services.application_submit(application=draft, actor=draft.applicant)
            for _ in range(2):
                transaction.on_commit(
                    partial(tasks.decide_application.delay, str(draft.pk), submitted.submission)
                )
    wait_until_decided(ids, workers, timeout=60)
    first_state = dict(Application.objects.filter(pk__in=ids).values_list("pk", "updated_at"))
    # and again once decided: a late redelivery, and a task for an older submission
    for identifier in ids:
        tasks.decide_application.delay(str(identifier), 1)
        tasks.decide_application.delay(str(identifier), 0)
    wait_until(
        lambda: (
            sum(workers.task_totals(DECIDE_TASK).values()) >= 5 * len(ids) and not workers.busy()
        ),
        timeout=60,
        what="every copy to be taken",
    )

    # then: one decision, one hold or allocation, one notification each
    applications = assert_consistent(cluster, ids)
    assert {Status.APPROVED, Status.IN_REVIEW} <= {a.status for a in applications}
    assert dict(Application.objects.filter(pk__in=ids).values_list("pk", "updated_at")) == (
        first_state
    )
    assert sum(workers.task_totals(NOTIFY_TASK).values()) == len(ids)
