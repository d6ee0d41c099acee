from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.authz import SYSTEM
from allocations.models import Allocation, PoolDay, ProgramDay, SiteDay


@pytest.mark.django_db
def test_small_request_is_auto_approved_and_commits_capacity(draft, decide):
    # given
    application = draft(gpu_hours=1_000)

    # when
    decided = decide(application)

    # then
    assert decided.status == "approved"
    allocation = Allocation.objects.get(application=decided)
    assert allocation.granted_gpu_hours == 1_000
    days = list(PoolDay.objects.filter(pool=decided.pool).order_by("day"))
    assert [d.committed_gpu_hours for d in days] == [100] * 10
    assert sum(d.committed_gpu_hours for d in ProgramDay.objects.all()) == 1_000
    assert all(d.committed_wh > 0 for d in SiteDay.objects.all())


@pytest.mark.django_db
def test_large_request_goes_to_review_with_a_hold_and_approval_commits(draft, decide, reviewer):
    from allocations.services import applications as services

    # given
    application = draft(gpu_hours=12_000)

    # when
    decided = decide(application)

    # then
    assert decided.status == "in_review"
    assert [r["code"] for r in decided.reasons] == ["above_auto_approve"]
    assert sum(d.held_gpu_hours for d in PoolDay.objects.all()) == 12_000
    approved = services.application_approve(application=decided, actor=reviewer, note="fine")
    assert approved.status == "approved"
    assert sum(d.held_gpu_hours for d in PoolDay.objects.all()) == 0
    assert sum(d.committed_gpu_hours for d in PoolDay.objects.all()) == 12_000


@pytest.mark.django_db
def test_over_capacity_request_is_waitlisted_then_approved_when_capacity_grows(
    draft, decide, pool, today
):
    from allocations.models import CapacityEvent
    from allocations.services import applications as services
    from allocations.services import inventory

    # given: 2,280 GPU-hours a day; fast lane may take 1,140 + 456 = 1,596 a day
    application = draft(
        gpu_hours=9_000, start_date=today + timedelta(days=1), end_date=today + timedelta(days=5)
    )

    # when
    decided = decide(application)

    # then
    assert decided.status == "waitlisted", decided.reasons
    assert decided.reasons[0]["code"] == "capacity_program"
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today, "gpus_in_service": 200},
        actor=SYSTEM,
    )
    assert services.waitlist_recheck(pool_id=pool.pk) == 1
    decided.refresh_from_db()
    assert decided.status == "approved"
