"""Benchmark of decisions: throughput with real workers, and the cost of a capacity check as
the number of allocations grows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal \\
        .venv/bin/python -m tests.benchmarks.decisions

It makes a database of its own (`portal_bench`, dropped at the end), so it touches no other
data, and uses the broker of PORTAL_TEST_BROKER_URL or CELERY_BROKER_URL (default
redis://127.0.0.1:6379/15), whose queue it empties. It prints:

(a) decisions per second end to end with a full queue: N applications submitted through
    `application_submit` in one transaction, decided by 3 real worker processes, timed from
    its commit (the outbox then publishes the N decision messages) to the last decision;
(b) the time of one capacity check (the missing ledger rows made, the quota, pool-day and
    site-day locks taken, `capacity_check` run, rolled back) and of one whole decision, as
    the median (and the minimum) of R runs, with 100 and with 100,000 allocations in the
    ledger, and their ratio: the design wants the check to cost O(days in the window),
    whatever the number of allocations, so the ratio should be close to 1; and the time of
    one decision in an admission cycle of CYCLE_BATCH, the cycle's time over their number.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.benchmarks.framework import Bench, Row, benchmark

BENCH_DATABASE = "portal_bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"
CHECK_WINDOW_DAYS = 30
HORIZON_DAYS = 90
# The applications one measured admission cycle decides together
CYCLE_BATCH = 100


def configure() -> str:
    """Environment for the portal's settings, read once at Django's setup; the broker URL."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    broker = (
        os.environ.get("PORTAL_TEST_BROKER_URL")
        or os.environ.get("CELERY_BROKER_URL")
        or DEFAULT_BROKER_URL
    )
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ["DATABASE_TEST_NAME"] = BENCH_DATABASE
    return broker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applications", type=int, default=300, help="N for (a)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50, help="R for (b)")
    parser.add_argument("--allocations", type=int, default=100_000, help="the large ledger")
    options = parser.parse_args()
    broker = configure()

    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    from portal.celery import app as celery_app
    from tests.workers.harness import exclusive_broker, purge

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        with exclusive_broker(broker):
            purge(celery_app)
            try:
                throughput = bench_throughput(
                    broker, applications=options.applications, worker_count=options.workers
                )
                purge(celery_app)
                checks = bench_capacity_check(runs=options.runs, large=options.allocations)
            finally:
                purge(celery_app)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    report(broker, options, throughput, checks)


@benchmark("decisions", order=30, needs=("broker",))
def decisions(bench: Bench) -> Iterator[Row]:
    """(a), (b) and the raw transaction they are compared with, as rows of `make bench`."""
    from portal.celery import app as celery_app
    from tests.workers.harness import exclusive_broker, purge

    broker = os.environ["CELERY_BROKER_URL"]
    applications, workers = (60, 3) if bench.quick else (300, 3)
    runs = 10 if bench.quick else 50
    large = 5_000 if bench.quick else 100_000
    with exclusive_broker(broker):
        purge(celery_app)
        try:
            throughput = bench_throughput(broker, applications=applications, worker_count=workers)
            purge(celery_app)
            # the decisions' messages go to the real broker, where no worker takes them
            checks = bench_capacity_check(runs=runs, large=large)
        finally:
            purge(celery_app)
    raw = bench_raw_transaction(count=300 if bench.quick else 2_000)
    (small_checks, small_decisions, _), (large_checks, large_decisions, in_cycles) = (
        checks[100],
        checks[large],
    )
    yield Row(
        what=(
            f"decisions end to end, {workers} workers, {applications} applications submitted "
            "in one transaction, from its commit to the last decision"
        ),
        figure=throughput["per_second"],
        unit="decisions/s",
        floor=raw["per_second"],
        floor_what=(
            "a raw psycopg transaction of the same shape (lock 30 pool-day rows in day order, "
            "check, update, insert the allocation), one connection"
        ),
        ratio=throughput["per_second"] / raw["per_second"],
        target=">= 0.25",
        note=(
            f"commit to decision: median {throughput['latency_median']:.2f} s, "
            f"p95 {throughput['latency_p95']:.2f} s; submitting them took "
            f"{throughput['submit_seconds']:.2f} s"
        ),
    )
    small_check, large_check = statistics.median(small_checks), statistics.median(large_checks)
    yield Row(
        what=f"capacity check over {CHECK_WINDOW_DAYS} days, median at {large:,} allocations",
        figure=large_check * 1000,
        unit="ms",
        floor=small_check * 1000,
        floor_what="median at 100",
        ratio=large_check / small_check,
        target="<= 1.2",
        runs=runs,
    )
    shared = statistics.median(in_cycles)
    yield Row(
        what=(
            f"one whole decision in an admission cycle of {CYCLE_BATCH} (application_decide, "
            f"committed, with its allocation, audit events and effects: the cycle's time "
            f"over {CYCLE_BATCH}), median at {large:,} allocations"
        ),
        figure=shared * 1000,
        unit="ms",
        floor=raw["median"] * 1000,
        floor_what="the same raw transaction, median",
        ratio=shared / raw["median"],
        target="<= 4",
        runs=len(in_cycles),
    )
    whole = statistics.median(large_decisions)
    yield Row(
        what=(
            f"one decision alone (application_decide: its pool's cycle deciding it and "
            f"nothing else; idle latency is its target), median at {large:,} allocations"
        ),
        figure=whole * 1000,
        unit="ms",
        floor=raw["median"] * 1000,
        floor_what="the same raw transaction, median",
        ratio=whole / raw["median"],
        runs=runs,
        note=f"median at 100 allocations: {statistics.median(small_decisions) * 1000:.2f} ms",
    )


@benchmark("decision-latency", order=31, needs=("broker",))
def decision_latency(bench: Bench) -> Iterator[Row]:
    """Submission to decision under a burst (1,000 auto-approvable applications at once, 4
    workers on the decisions queue and one on the others) and for one application at idle:
    absolute targets, so the ratio is the figure in seconds."""
    from portal.celery import app as celery_app
    from tests.workers.harness import exclusive_broker, purge

    broker = os.environ["CELERY_BROKER_URL"]
    count, workers = (200, 4) if bench.quick else (1_000, 4)
    idle_runs = 10 if bench.quick else 20
    with exclusive_broker(broker):
        purge(celery_app)
        try:
            latency = bench_latency(
                broker, applications=count, worker_count=workers, idle_runs=idle_runs
            )
        finally:
            purge(celery_app)
    burst = latency["burst"]
    note = (
        f"all submitted in {latency['submit_seconds']:.2f} s, all decided after "
        f"{latency['total_seconds']:.2f} s; submitted_at to decided_at"
    )
    yield Row(
        what=f"burst of {count:,} auto-approvable applications, {workers} decision workers "
        "(and one for mails and scheduler calls): median "
        "submission to decision",
        figure=statistics.median(burst),
        unit="s",
        ratio=statistics.median(burst),
        target="<= 1",
        note=note,
    )
    yield Row(
        what=f"burst of {count:,}, {workers} workers: p99 submission to decision",
        figure=bench.percentile(burst, 0.99),
        unit="s",
        ratio=bench.percentile(burst, 0.99),
        target="<= 5",
    )
    idle = latency["idle"]
    yield Row(
        what="one application at idle: submission to decision seen by the client, median",
        figure=statistics.median(idle),
        unit="s",
        ratio=statistics.median(idle),
        target="<= 0.3",
        runs=idle_runs,
        note=f"max {max(idle) * 1000:.0f} ms; from the submit call to the decision read back",
    )


def bench_latency(
    broker: str, *, applications: int, worker_count: int, idle_runs: int
) -> dict[str, Any]:
    """The burst, then single applications one at a time with the workers idle."""
    from django.db import connection

    from allocations.models import Application, ApplicationStatus
    from allocations.services import applications as services
    from outbox import queues
    from portal.celery import app as celery_app
    from tests.workers.harness import Workers, build_cluster, database_url, random_requests

    cluster = build_cluster(
        pools=2, gpus_per_pool=10_000, power_mw=Decimal("100"), organizations=20
    )
    drafts = [
        services.application_create(applicant=user, values=values)
        for user, values in random_requests(
            cluster, count=applications + idle_runs, seed=1_000, horizon_days=20, max_gpu_hours=600
        )
    ]
    burst, singles = drafts[:applications], drafts[applications:]
    applicants = {organization.pk: user for organization, user in cluster.members}
    ids = [draft.pk for draft in burst]
    pending = Application.objects.filter(pk__in=ids, status=ApplicationStatus.SUBMITTED)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as logs:
        workers = Workers(
            celery_app,
            database_url=database_url(connection.settings_dict),
            broker_url=broker,
            log_dir=Path(logs),
        )
        try:
            # as production runs them: a group of workers on the decisions queue (mails and
            # scheduler calls never wait in front of a decision), one for the other queues
            others = [name for name in queues.ALL if name != queues.DECISIONS]
            workers.wait_ready(
                workers.start(worker_count, queues=[queues.DECISIONS])
                + workers.start(1, queues=others)
            )
            started = time.perf_counter()
            for draft in burst:
                services.application_submit(
                    application=draft, actor=applicants[draft.organization_id]
                )
            submitted = time.perf_counter()
            deadline = submitted + 600
            while pending.exists():
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"not all decided in 600 s\n{workers.all_logs()}")
                time.sleep(0.05)
            finished = time.perf_counter()
            # the burst's messages (its mails and scheduler calls too) drained: the workers
            # are idle
            drained = time.perf_counter() + 300
            while (queued(celery_app) or workers.busy()) and time.perf_counter() < drained:
                time.sleep(0.2)
            idle = []
            for draft in singles:
                time.sleep(0.3)
                began = time.perf_counter()
                services.application_submit(
                    application=draft, actor=applicants[draft.organization_id]
                )
                one = Application.objects.filter(pk=draft.pk, status=ApplicationStatus.SUBMITTED)
                while one.exists():
                    if time.perf_counter() - began > 60:
                        raise TimeoutError(f"not decided in 60 s\n{workers.all_logs()}")
                    time.sleep(0.002)
                idle.append(time.perf_counter() - began)
        finally:
            workers.stop()
    decided = Application.objects.filter(pk__in=ids)
    outcomes = Counter(decided.values_list("status", flat=True))
    assert outcomes == {ApplicationStatus.APPROVED: applications}, outcomes
    return {
        "submit_seconds": submitted - started,
        "total_seconds": finished - started,
        "burst": [
            (application.decided_at - application.submitted_at).total_seconds()
            for application in decided
        ],
        "idle": idle,
    }


def queued(app: Any) -> int:
    """Effects not finished yet (the burst's decisions, mails and scheduler calls, on every
    queue): the outbox's rows pending or published."""
    from outbox.models import Effect
    from outbox.services import LIVE

    return Effect.objects.filter(state__in=LIVE).count()


def bench_raw_transaction(*, count: int) -> dict[str, float]:
    """The floor: `count` transactions on one psycopg connection, each locking a 30-day
    window of pool-day rows in day order, checking them, adding the request to them and
    inserting an allocation row (into a table like the allocations', without its foreign
    keys), committed. Per second, and the median seconds of one."""
    import uuid

    import psycopg
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from allocations.models import Allocation, GpuPool

    # the window of the capacity check (b), in the pool with its 100,000 allocations
    first = timezone.localdate() + timedelta(days=2)
    window = [first, first + timedelta(days=CHECK_WINDOW_DAYS - 1)]
    busiest = (
        Allocation.objects.values("pool_id").annotate(count=Count("pk")).order_by("-count").first()
    )
    assert busiest is not None
    pool = GpuPool.objects.get(pk=busiest["pool_id"])
    template = Allocation.objects.filter(pool=pool).first()
    assert template is not None
    columns = list(Allocation._meta.concrete_fields)
    names = ", ".join(f'"{field.column}"' for field in columns)
    marks = ", ".join(["%s"] * len(columns))
    settings = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        host=settings["HOST"] or "",
        port=str(settings["PORT"] or ""),
        user=settings["USER"] or "",
        password=settings["PASSWORD"] or "",
        dbname=settings["NAME"],
    )
    gpu_hours, share = 100 * CHECK_WINDOW_DAYS, 100
    times = []
    with psycopg.connect(conninfo) as raw:
        raw.execute("CREATE TABLE bench_raw_allocation (LIKE allocations_allocation INCLUDING ALL)")
        raw.commit()
        try:
            for _ in range(count + 20):
                values = []
                for field in columns:
                    value = getattr(template, field.attname)
                    if field.primary_key or field.attname == "application_id":
                        value = uuid.uuid4()
                    elif field.attname == "created_at":
                        value = timezone.now()
                    elif field.attname == "granted_gpu_hours":
                        value = gpu_hours
                    values.append(value)
                began = time.perf_counter()
                with raw.transaction():
                    rows = raw.execute(
                        "SELECT id, capacity_gpu_hours, committed_gpu_hours + held_gpu_hours "
                        "FROM allocations_poolday WHERE pool_id = %s AND day BETWEEN %s AND %s "
                        "ORDER BY day FOR UPDATE",
                        [pool.pk, *window],
                    ).fetchall()
                    assert len(rows) == CHECK_WINDOW_DAYS
                    assert all(capacity - reserved >= share for _, capacity, reserved in rows)
                    raw.execute(
                        "UPDATE allocations_poolday SET committed_gpu_hours = "
                        "committed_gpu_hours + %s WHERE id = ANY(%s)",
                        [share, [row[0] for row in rows]],
                    )
                    raw.execute(
                        f"INSERT INTO bench_raw_allocation ({names}) VALUES ({marks})",
                        values,
                    )
                times.append(time.perf_counter() - began)
        finally:
            raw.execute("DROP TABLE bench_raw_allocation")
            raw.commit()
    times = times[20:]  # the first warm the connection and the plans
    return {"per_second": len(times) / sum(times), "median": statistics.median(times)}


# --- (a) decisions per second with real workers -------------------------------------------------


def bench_throughput(broker: str, *, applications: int, worker_count: int) -> dict[str, Any]:
    """The decision rate of the workers with a full queue: the N applications are submitted
    through `application_submit` in one transaction (a call's opening burst, faster than any
    decision), and the clock runs from its commit, through the outbox's publication of the
    N decision messages, to the last decision read back. Submitting is timed apart: it is
    the applicants' work, not the deciders'."""
    from django.db import connection, transaction
    from django.utils import timezone

    from allocations.models import Application, ApplicationStatus
    from allocations.services import applications as services
    from portal.celery import app as celery_app
    from tests.workers.harness import Workers, build_cluster, database_url, random_requests

    cluster = build_cluster(pools=2, gpus_per_pool=100, power_mw=Decimal("0.3"), organizations=12)
    drafts = [
        services.application_create(applicant=user, values=values)
        for user, values in random_requests(
            cluster, count=applications, seed=300, horizon_days=10, max_gpu_hours=600
        )
    ]
    applicants = {organization.pk: user for organization, user in cluster.members}
    ids = [draft.pk for draft in drafts]
    pending = Application.objects.filter(pk__in=ids, status=ApplicationStatus.SUBMITTED)
    committed: list[tuple[float, Any]] = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as logs:
        workers = Workers(
            celery_app,
            database_url=database_url(connection.settings_dict),
            broker_url=broker,
            log_dir=Path(logs),
        )
        try:
            workers.wait_ready(workers.start(worker_count))
            began = time.perf_counter()
            with transaction.atomic():
                # the first callback after the commit, before the decision messages' publication
                transaction.on_commit(
                    lambda: committed.append((time.perf_counter(), timezone.now()))
                )
                for draft in drafts:
                    services.application_submit(
                        application=draft, actor=applicants[draft.organization_id]
                    )
            started, commit_time = committed[0]
            deadline = started + 600
            while pending.exists():
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"not all decided in 600 s\n{workers.all_logs()}")
                time.sleep(0.01)
            finished = time.perf_counter()
        finally:
            workers.stop()
    decided = Application.objects.filter(pk__in=ids)
    # updated_at: the time of the decision, waitlisted ones included (only a final decision
    # has a decided_at); from the commit, which every one of them waited for
    latencies = sorted(
        max((application.updated_at - commit_time).total_seconds(), 0.0) for application in decided
    )
    return {
        "submit_seconds": started - began,
        "total_seconds": finished - started,
        "per_second": applications / (finished - started),
        "latency_median": statistics.median(latencies),
        "latency_p95": latencies[int(0.95 * (len(latencies) - 1))],
        "outcomes": Counter(decided.values_list("status", flat=True)),
    }


# --- (b) one capacity check, with few and with many allocations ----------------------------------


def bench_capacity_check(
    *, runs: int, large: int
) -> dict[int, tuple[list[float], list[float], list[float]]]:
    """Seconds of each run of (capacity check, decision alone, decision in a cycle of
    `CYCLE_BATCH`: the cycle's time over their number), with 100 and `large` allocations."""
    from allocations.services import applications as services
    from tests.workers.harness import build_cluster

    # (b) runs in this process, without workers: the effects of a decision (its messages
    # published at commit) are part of its cost, and nothing takes them.
    cluster = build_cluster(
        pools=1, gpus_per_pool=100_000, power_mw=Decimal("300"), organizations=101
    )
    rng = random.Random(100)
    results = {}
    existing = 0
    for target in (100, large):
        add_allocations(cluster, count=target - existing, rng=rng)
        existing = target
        for _ in range(5):  # warm the connection, the caches and PostgreSQL's plans
            time_capacity_check(cluster)
        checks = [time_capacity_check(cluster) for _ in range(runs)]
        decisions = []
        for index in range(runs):
            draft = new_draft(cluster, title=f"Measured {target} {index}")
            submitted = services.application_submit(application=draft, actor=cluster.members[0][1])
            began = time.perf_counter()
            decided = services.application_decide(
                application_id=submitted.pk, submission=submitted.submission
            )
            decisions.append(time.perf_counter() - began)
            assert decided is not None
            assert decided.status == "approved", decided.reasons
        in_cycles = [
            time_cycle(cluster, label=f"{target} {index}")
            for index in range(max(runs // 5, 3) if target == large else 0)
        ]
        results[target] = (checks, decisions, in_cycles)
    return results


def time_cycle(cluster: Any, *, label: str) -> float:
    """`CYCLE_BATCH` applications submitted together, then decided by the admission cycle
    that the first one's `application_decide` runs: seconds per decision."""
    from django.db import transaction

    from allocations.models import Application
    from allocations.services import applications as services

    drafts = [
        new_draft(cluster, title=f"Cycle {label} {index}", member=index)
        for index in range(CYCLE_BATCH)
    ]
    with transaction.atomic():
        submitted = [
            services.application_submit(
                application=draft, actor=cluster.members[index % len(cluster.members)][1]
            )
            for index, draft in enumerate(drafts)
        ]
    began = time.perf_counter()
    services.application_decide(application_id=submitted[0].pk, submission=submitted[0].submission)
    elapsed = time.perf_counter() - began
    statuses = Counter(
        Application.objects.filter(pk__in=[draft.pk for draft in drafts]).values_list(
            "status", flat=True
        )
    )
    assert statuses == {"approved": CYCLE_BATCH}, statuses
    return elapsed / CYCLE_BATCH


def new_draft(cluster: Any, *, title: str, member: int = 0) -> Any:
    from django.utils import timezone

    from allocations.services import applications as services

    organization, user = cluster.members[member % len(cluster.members)]
    start = timezone.localdate() + timedelta(days=2)
    return services.application_create(
        applicant=user,
        values={
            "organization": organization,
            "program": cluster.programs[0],
            "pool": cluster.pools[0],
            "title": title,
            "gpu_hours": 100,
            "start_date": start,
            "end_date": start + timedelta(days=CHECK_WINDOW_DAYS - 1),
        },
    )


def time_capacity_check(cluster: Any) -> float:
    """The decision's capacity path on a 30-day window, rolled back: seconds."""
    from django.db import transaction
    from django.utils import timezone

    from allocations import locks
    from allocations.services import ledger

    organization, _ = cluster.members[0]
    pool, program = cluster.pools[0], cluster.programs[0]
    start = timezone.localdate() + timedelta(days=2)
    end = start + timedelta(days=CHECK_WINDOW_DAYS - 1)
    began = time.perf_counter()
    locks.ensure_ledger_rows(pool=pool, start=start, end=end)
    with transaction.atomic():
        locks.lock_quota(organization_id=organization.pk, program_id=program.pk)
        pool_days = locks.lock_pool_days(pool=pool, start=start, end=end)
        site_days = locks.lock_site_days(site=pool.site, start=start, end=end)
        shortfall = ledger.capacity_check(
            program=program,
            shares=ledger.daily_shares(gpu_hours=100, start=start, end=end),
            pool_days=pool_days,
            program_rows=locks.program_days(pool=pool, start=start, end=end),
            site_days=site_days,
            energy_per_gpu_hour=ledger.wh_per_gpu_hour(pool),
            everyone=ledger.all_program_terms(),
        )
        elapsed = time.perf_counter() - began
        transaction.set_rollback(True)
    assert shortfall is None, shortfall
    return elapsed


def add_allocations(cluster: Any, *, count: int, rng: random.Random) -> None:
    """`count` approved applications with their allocations, written in bulk, and their
    daily shares added to the ledger rows directly (the ledger is what a check reads)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from allocations import locks
    from allocations.models import (
        Allocation,
        AllocationStatus,
        Application,
        ApplicationStatus,
        PoolDay,
        ProgramDay,
        SiteDay,
    )
    from allocations.services import ledger

    pool, site = cluster.pools[0], cluster.site
    first = timezone.localdate() + timedelta(days=1)
    last = first + timedelta(days=HORIZON_DAYS - 1)
    locks.ensure_ledger_rows(pool=pool, start=first, end=last)
    now = timezone.now()
    per_program: Counter[tuple[Any, Any]] = Counter()
    per_day: Counter[Any] = Counter()
    batch = 5_000
    for offset in range(0, count, batch):
        applications, allocations = [], []
        for index in range(offset, min(offset + batch, count)):
            organization, user = cluster.members[1 + index % (len(cluster.members) - 1)]
            program = cluster.programs[index % 2]
            days = rng.randint(1, 30)
            start = first + timedelta(days=rng.randint(0, HORIZON_DAYS - days))
            end = start + timedelta(days=days - 1)
            gpu_hours = rng.randint(24, 1_200)
            application = Application(
                organization=organization,
                program=program,
                pool=pool,
                applicant=user,
                title=f"Existing {index}",
                gpu_hours=gpu_hours,
                start_date=start,
                end_date=end,
                status=ApplicationStatus.APPROVED,
                submission=1,
                submitted_at=now,
                decided_at=now,
                reasons=[{"code": "auto_approved", "message": "Benchmark data."}],
            )
            applications.append(application)
            allocations.append(
                Allocation(
                    application=application,
                    organization=organization,
                    program=program,
                    pool=pool,
                    start_date=start,
                    end_date=end,
                    granted_gpu_hours=gpu_hours,
                    status=AllocationStatus.SCHEDULED,
                )
            )
            shares = ledger.daily_shares(gpu_hours=gpu_hours, start=start, end=end)
            for day_index, share in enumerate(shares):
                day = start + timedelta(days=day_index)
                per_program[(program.pk, day)] += share
                per_day[day] += share
        with transaction.atomic():
            Application.objects.bulk_create(applications, batch_size=1_000)
            Allocation.objects.bulk_create(allocations, batch_size=1_000)
    energy = ledger.wh_per_gpu_hour(pool)
    with transaction.atomic():
        pool_days = list(PoolDay.objects.filter(pool=pool, day__range=(first, last)))
        for row in pool_days:
            row.committed_gpu_hours += per_day[row.day]
        PoolDay.objects.bulk_update(pool_days, ["committed_gpu_hours"])
        for program in cluster.programs:
            locks.program_days(pool=pool, start=first, end=last, make_for=program)
        program_days = list(ProgramDay.objects.filter(pool=pool, day__range=(first, last)))
        for program_row in program_days:
            program_row.committed_gpu_hours += per_program[
                (program_row.program_id, program_row.day)
            ]
        ProgramDay.objects.bulk_update(program_days, ["committed_gpu_hours"])
        site_days = list(SiteDay.objects.filter(site=site, day__range=(first, last)))
        for site_row in site_days:
            site_row.committed_wh += per_day[site_row.day] * energy
        SiteDay.objects.bulk_update(site_days, ["committed_wh"])
    # As autovacuum would after a bulk load; done now, so that it does not run (and take a
    # core) in the middle of the measurements.
    with connection.cursor() as cursor:
        for model in (Application, Allocation, PoolDay, ProgramDay, SiteDay):
            cursor.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')


# --- the table ------------------------------------------------------------------------------------


def report(
    broker: str,
    options: argparse.Namespace,
    throughput: dict[str, Any],
    checks: dict[int, tuple[list[float], list[float], list[float]]],
) -> None:
    outcomes = ", ".join(f"{count} {status}" for status, count in throughput["outcomes"].items())
    print()
    print(
        f"(a) decisions end to end: {options.workers} worker processes (--pool=solo), "
        f"broker {broker.split('@')[-1]}"
    )
    rows = [
        ("applications submitted", f"{options.applications} ({outcomes})"),
        ("all submitted after", f"{throughput['submit_seconds']:.2f} s"),
        ("all decided after", f"{throughput['total_seconds']:.2f} s"),
        ("decisions per second", f"{throughput['per_second']:.1f}"),
        (
            "commit to decision",
            f"median {throughput['latency_median']:.2f} s, p95 {throughput['latency_p95']:.2f} s",
        ),
    ]
    for label, value in rows:
        print(f"  {label:<26} {value}")
    print()
    print(
        f"(b) one request over {CHECK_WINDOW_DAYS} days, {options.runs} runs each, in ms "
        "(check: rows made, locks taken, capacity_check, rolled back; decision: "
        "application_decide, committed); the minimum is the least disturbed by other load"
    )
    header = ("check median", "check min", "decision median", "decision min")
    print(f"  {'allocations in the ledger':>26}" + "".join(f"{h:>17}" for h in header))
    figures = {
        count: [f(values) for values in (check, alone) for f in (statistics.median, min)]
        for count, (check, alone, _) in checks.items()
    }
    for count, values in figures.items():
        print(f"  {count:>26,}" + "".join(f"{value * 1000:>17.2f}" for value in values))
    small, large = figures.values()
    print(
        f"  {'ratio':>26}" + "".join(f"{b / a:>17.2f}" for a, b in zip(small, large, strict=True))
    )
    in_cycles = checks[options.allocations][2]
    print(
        f"  one decision in a cycle of {CYCLE_BATCH}, at {options.allocations:,}: median "
        f"{statistics.median(in_cycles) * 1000:.2f} ms, min {min(in_cycles) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
