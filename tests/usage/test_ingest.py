from __future__ import annotations

from datetime import timedelta

import pytest

from allocations.models import Allocation, BackendCall, UsageRecord
from tests.effects import queued as queued_effects

pytestmark = pytest.mark.django_db


def test_posting_a_batch_twice_counts_it_once(scheduler_client, record, allocation):
    # given
    batch = {"records": [record(1), record(2)]}

    # when
    first = scheduler_client.post("/api/v1/usage/", batch, format="json")
    second = scheduler_client.post("/api/v1/usage/", batch, format="json")

    # then
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert second.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 2 * 3_600 * 8
    assert UsageRecord.objects.count() == 2


def test_each_bad_record_is_rejected_with_its_index_and_code(scheduler_client, record, allocation):
    # given
    later = allocation.end_date + timedelta(days=5)
    batch = {
        "records": [
            record(1),
            record(2, gpu_seconds=-5),
            record(3, allocation="00000000-0000-0000-0000-000000000000"),
            record(4, ended_at="2020-01-01T00:00:00Z"),
            record(5, started_at=f"{later}T00:00:00Z", ended_at=f"{later}T01:00:00Z"),
            record(6, gpu_seconds=10**15),
        ]
    }

    # when
    response = scheduler_client.post("/api/v1/usage/", batch, format="json")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "invalid_gpu_seconds"),
        (2, "unknown_allocation"),
        (3, "ended_before_started"),
        (4, "outside_window"),
        (5, "absurd_gpu_seconds"),
    ]


def test_a_malformed_batch_writes_nothing(scheduler_client, record, allocation):
    # when
    response = scheduler_client.post(
        "/api/v1/usage/", {"records": [record(1), {"source": "x"}]}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "records.1.external_id" in response.json()["fields"]
    assert UsageRecord.objects.count() == 0
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 0


def test_a_full_token_may_not_post_usage(client_for, founder, record, allocation):
    # when
    response = client_for(founder).post("/api/v1/usage/", {"records": [record(1)]}, format="json")

    # then
    assert response.status_code == 403
    assert response.json()["code"] == "token_scope"


def test_thresholds_notify_once_each_and_exhaustion_calls_the_backend(
    scheduler_client, record, allocation, django_capture_on_commit_callbacks
):
    # given: 1,000 GPU-hours granted
    hours = 3_600

    # when: 760 hours, then 150 more, then 100 more (past 100 %), then 10 more
    with django_capture_on_commit_callbacks() as callbacks:
        for index, used in enumerate((760, 150, 100, 10)):
            scheduler_client.post(
                "/api/v1/usage/",
                {"records": [record(index, gpu_seconds=used * hours)]},
                format="json",
            )

    # then
    allocation.refresh_from_db()
    assert allocation.status == "exhausted"
    assert allocation.notified_percent == 100
    queued = queued_effects(callbacks)
    assert queued.count(("allocations.tasks.notify_usage_threshold", (str(allocation.pk), 75))) == 1
    assert queued.count(("allocations.tasks.notify_usage_threshold", (str(allocation.pk), 90))) == 1
    assert (
        queued.count(("allocations.tasks.notify_usage_threshold", (str(allocation.pk), 100))) == 1
    )
    assert len(queued) == 4  # the three notices and one scheduler call
    call = BackendCall.objects.get(allocation=allocation, action="suspend")
    assert call.outcome == "pending"


def test_backend_call_records_the_slurm_commands(scheduler_client, record, allocation):
    from allocations.services.scheduler import backend_call_run

    # given
    call = BackendCall.objects.get(allocation=allocation, action="create_account")

    # when
    done = backend_call_run(call_id=call.pk)

    # then
    assert done.outcome == "done"
    assert done.commands[0].startswith("sacctmgr -i add qos pap-")
    assert "Flags=NoDecay GrpTRESMins=gres/gpu=60000" in done.commands[0]
    assert Allocation.objects.get(pk=allocation.pk).status == "active"
