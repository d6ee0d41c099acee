"""Usage thresholds are measured against the current grant: a supplement opens them again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allocations.models import Allocation, BackendCall
from allocations.services.scheduler import scheduler_spec
from tests.effects import queued

pytestmark = pytest.mark.django_db

NOTICE = "allocations.tasks.notify_usage_threshold"


def _post(client, record, index: int, hours: int) -> None:
    response = client.post(
        "/api/v1/usage/", {"records": [record(index, gpu_seconds=hours * 3_600)]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1, response.json()


def _notices(callbacks, allocation: Allocation) -> list[int]:
    return [
        args[1]
        for name, args in queued(callbacks)
        if name == NOTICE and args[0] == str(allocation.pk)
    ]


def _supplement(draft, decide, allocation: Allocation, today, gpu_hours: int) -> None:
    supplement = decide(
        draft(
            kind="supplement",
            allocation=allocation,
            gpu_hours=gpu_hours,
            start_date=today,
            end_date=today + timedelta(days=9),
        )
    )
    assert supplement.status == "approved", supplement.reasons


def test_after_a_supplement_the_thresholds_fire_again_against_the_new_grant(
    scheduler_client, record, allocation, draft, decide, today, django_capture_on_commit_callbacks
):
    # given: 1,000 GPU-hours used of 1,000: exhausted, then 1,000 more granted
    _post(scheduler_client, record, 0, 1_000)
    _supplement(draft, decide, allocation, today, 1_000)
    allocation.refresh_from_db()
    assert (allocation.status, allocation.granted_gpu_hours) == ("active", 2_000)

    # when: 1,500 then 1,800 then 2,000 of 2,000
    with django_capture_on_commit_callbacks() as callbacks:
        _post(scheduler_client, record, 1, 500)
        _post(scheduler_client, record, 2, 300)
        _post(scheduler_client, record, 3, 200)

    # then: 75, 90 and 100 % of the new grant, each once, and exhausted again
    assert _notices(callbacks, allocation) == [75, 90, 100]
    allocation.refresh_from_db()
    assert (allocation.status, allocation.notified_percent) == ("exhausted", 100)
    actions = list(
        BackendCall.objects.filter(allocation=allocation)
        .order_by("created_at")
        .values_list("action", flat=True)
    )
    assert actions == ["create_account", "suspend", "resume", "suspend"]


def test_a_supplement_of_an_exhausted_allocation_resumes_it_at_the_scheduler(
    scheduler_client, record, allocation, draft, decide, today, django_capture_on_commit_callbacks
):
    # given
    _post(scheduler_client, record, 0, 1_000)
    allocation.refresh_from_db()
    assert allocation.status == "exhausted"

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        _supplement(draft, decide, allocation, today, 300)

    # then: active, the 75 % already passed (1,000 of 1,300) not told twice, jobs released
    allocation.refresh_from_db()
    assert (allocation.status, allocation.notified_percent) == ("active", 75)
    assert _notices(callbacks, allocation) == []
    last = BackendCall.objects.filter(allocation=allocation).order_by("-created_at").first()
    assert last is not None
    assert last.action == "resume"
    assert scheduler_spec(allocation=allocation).runnable


def test_a_supplement_too_small_to_cover_the_overrun_leaves_the_allocation_exhausted(
    scheduler_client, record, allocation, draft, decide, today
):
    # given: 1,200 GPU-hours used of 1,000 (the scheduler reports jobs that already ran)
    _post(scheduler_client, record, 0, 1_200)

    # when: 100 more granted: 1,200 of 1,100
    _supplement(draft, decide, allocation, today, 100)

    # then: still exhausted; the scheduler gets the new limit and its GPU jobs stay stopped
    allocation.refresh_from_db()
    assert (allocation.status, allocation.notified_percent) == ("exhausted", 100)
    assert not BackendCall.objects.filter(allocation=allocation, action="resume").exists()
    spec = scheduler_spec(allocation=allocation)
    assert (spec.gpu_minutes, spec.runnable) == (1_100 * 60, False)
