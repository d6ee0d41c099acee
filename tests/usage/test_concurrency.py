"""Usage posted at the same time by several processes on PostgreSQL counts once."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from allocations.models import Allocation, UsageRecord

PROCESSES = 4
RECORDS = 200


def _post(records: list[dict[str, Any]], source: str, results: Any) -> None:
    from allocations.services.usage import usage_ingest

    connections.close_all()  # a connection of its own, not the parent's
    result = usage_ingest(records=records, source=source)
    results.put((result.accepted, result.duplicates, len(result.rejected)))
    connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_reposts_of_the_same_batch_count_each_record_once(
    postgres, allocation, scheduler
):
    # given: the same 200 records, overlapping halves in every batch
    start = timezone.make_aware(datetime.combine(allocation.start_date, datetime.min.time()))
    records = [
        {
            "source": "slurm-narvik",
            "external_id": f"job-{index}",
            "allocation": allocation.pk,
            "gpu_seconds": 3600 + index,
            "started_at": start + timedelta(minutes=1),
            "ended_at": start + timedelta(minutes=2),
            "energy_kwh": None,
        }
        for index in range(RECORDS)
    ]
    batches = [
        records[(i * 50) % RECORDS :] + records[: (i * 50) % RECORDS] for i in range(PROCESSES)
    ]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    connections.close_all()

    # when: four processes post at once
    workers = [
        context.Process(target=_post, args=(batch, scheduler.scheduler_source, results))
        for batch in batches
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    outcomes = [results.get(timeout=5) for _ in workers]

    # then
    assert all(worker.exitcode == 0 for worker in workers)
    assert sum(accepted for accepted, _, _ in outcomes) == RECORDS
    assert sum(duplicates for _, duplicates, _ in outcomes) == RECORDS * (PROCESSES - 1)
    assert UsageRecord.objects.count() == RECORDS
    allocation = Allocation.objects.get(pk=allocation.pk)
    assert allocation.used_gpu_seconds == sum(record["gpu_seconds"] for record in records)


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_one_job_with_different_content_store_one_and_report_conflicts(
    postgres, allocation, scheduler
):
    # given: four processes report the same 100 jobs; two say the same, two say otherwise
    start = timezone.make_aware(datetime.combine(allocation.start_date, datetime.min.time()))
    jobs = 100

    def batch(seconds: int) -> list[dict[str, Any]]:
        return [
            {
                "source": "slurm-narvik",
                "external_id": f"job-{index}",
                "allocation": allocation.pk,
                "gpu_seconds": seconds + index,
                "started_at": start + timedelta(minutes=1),
                "ended_at": start + timedelta(minutes=2),
                "energy_kwh": None,
            }
            for index in range(jobs)
        ]

    batches = [batch(3600), batch(3600), batch(7200), batch(10800)]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    connections.close_all()

    # when
    workers = [
        context.Process(target=_post, args=(records, "slurm-narvik", results))
        for records in batches
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    outcomes = [results.get(timeout=5) for _ in workers]

    # then: each job stored once; every other report a duplicate (same content) or a conflict
    assert all(worker.exitcode == 0 for worker in workers)
    assert sum(accepted for accepted, _, _ in outcomes) == jobs
    assert sum(duplicates + conflicts for _, duplicates, conflicts in outcomes) == jobs * 3
    assert UsageRecord.objects.count() == jobs
    stored = dict(UsageRecord.objects.values_list("external_id", "gpu_seconds"))
    allocation = Allocation.objects.get(pk=allocation.pk)
    assert allocation.used_gpu_seconds == sum(stored.values())
    # the two identical batches: where one of them stored a job, the other was its duplicate
    same = sum(1 for index in range(jobs) if stored[f"job-{index}"] == 3600 + index)
    assert sum(duplicates for _, duplicates, _ in outcomes) == same


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_job_for_different_allocations_store_it_once(
    postgres, allocation, scheduler, draft, decide, today
):
    # given: four allocations (their locks do not serialize the posts), the same 100 jobs
    # reported against each of them by its own process
    others = [
        Allocation.objects.get(
            application=decide(
                draft(gpu_hours=100, start_date=today, end_date=today + timedelta(days=9),
                      title=f"other {number}")
            )
        )
        for number in range(PROCESSES - 1)
    ]  # fmt: skip
    start = timezone.make_aware(datetime.combine(allocation.start_date, datetime.min.time()))
    jobs = 100
    batches = [
        [
            {
                "source": "slurm-narvik",
                "external_id": f"job-{index}",
                "allocation": target.pk,
                "gpu_seconds": 60,
                "started_at": start + timedelta(minutes=1),
                "ended_at": start + timedelta(minutes=2),
                "energy_kwh": None,
            }
            for index in range(jobs)
        ]
        for target in [allocation, *others]
    ]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    connections.close_all()

    # when
    workers = [
        context.Process(target=_post, args=(records, "slurm-narvik", results))
        for records in batches
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    outcomes = [results.get(timeout=5) for _ in workers]

    # then: one allocation per job counts it; every other report is a conflict
    assert all(worker.exitcode == 0 for worker in workers)
    assert sum(accepted for accepted, _, _ in outcomes) == jobs
    assert sum(duplicates for _, duplicates, _ in outcomes) == 0
    assert sum(conflicts for _, _, conflicts in outcomes) == jobs * (PROCESSES - 1)
    assert UsageRecord.objects.count() == jobs
    for target in [allocation, *others]:
        stored = UsageRecord.objects.filter(allocation=target).count()
        assert Allocation.objects.get(pk=target.pk).used_gpu_seconds == stored * 60
