"""Holds: an application in review keeps its capacity, so that a reviewer's approval can
never fail for capacity, whatever happened in the pool since."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.authz import SYSTEM
from allocations.models import Allocation, CapacityEvent, PoolDay, ProgramDay, QuotaUsage
from allocations.services import applications as services
from allocations.services import inventory
from tests.decisions.support import said

pytestmark = pytest.mark.django_db


def test_a_hold_takes_room_from_the_applications_after_it(draft, decide, window, today):
    # given: 12,000 over days 1..10 held (1,200 a day of the fast lane's 1,596)
    held = decide(draft(gpu_hours=12_000, **window(1, 10)))

    # when: 500 a day more
    later = decide(draft(gpu_hours=500, **window(5, 5)))

    # then
    assert (held.status, later.status) == ("in_review", "waitlisted")
    assert later.reasons[0]["message"] == (
        f"On {today + timedelta(days=5)} the program may take 396 more GPU-hours (its share, "
        "what others lend and the common part); the request needs 500."
    )


def test_the_hold_is_written_to_the_held_columns_day_by_day(draft, decide, window, today):
    # when: 10,003 over ten days: the first three take the remainder
    decide(draft(gpu_hours=10_003, risk_category="high", **window(1, 10)))

    # then
    rows = PoolDay.objects.order_by("day")
    assert [(row.committed_gpu_hours, row.held_gpu_hours) for row in rows] == [
        (0, 1_001),
        (0, 1_001),
        (0, 1_001),
    ] + [(0, 1_000)] * 7
    assert [row.held_gpu_hours for row in ProgramDay.objects.order_by("day")] == [
        1_001,
        1_001,
        1_001,
    ] + [1_000] * 7


def test_approval_succeeds_after_others_filled_the_pool(
    draft, decide, reviewer, fast_lane, window, totals
):
    # given: 1,000 held on day 1, then the fast lane filled to its 1,596 by others
    fast_lane.auto_approve_max_gpu_hours = 500
    fast_lane.save(update_fields=["auto_approve_max_gpu_hours"])
    held = decide(draft(gpu_hours=1_000, **window(1, 1)))
    others = [decide(draft(gpu_hours=hours, **window(1, 1))) for hours in (500, 96)]
    late = decide(draft(gpu_hours=10, **window(1, 1)))
    assert [application.status for application in [held, *others, late]] == [
        "in_review",
        "approved",
        "approved",
        "waitlisted",
    ]

    # when
    approved = services.application_approve(application=held, actor=reviewer, note="ok")

    # then
    assert approved.status == "approved"
    assert totals()["pool"] == (1_596, 0)
    assert totals()["quota"] == 1_596
    assert Allocation.objects.get(application=held).granted_gpu_hours == 1_000


def test_approval_succeeds_after_capacity_shrank_under_the_hold_and_flags_the_allocation(
    draft, decide, reviewer, pool, window, today, totals
):
    # given: 1,200 a day held, then a failed rack leaves 228 GPU-hours a day
    held = decide(draft(gpu_hours=12_000, **window(1, 10)))
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today, "gpus_in_service": 10},
        actor=SYSTEM,
    )

    # when
    approved = services.application_approve(application=held, actor=reviewer, note="ok")

    # then: granted in full, and marked at risk as the rewrite marks the others
    assert approved.status == "approved"
    assert totals()["pool"] == (12_000, 0)
    allocation = Allocation.objects.get(application=held)
    assert (allocation.granted_gpu_hours, allocation.at_risk) == (12_000, True)


def test_an_approval_on_days_that_fit_is_not_at_risk(draft, decide, reviewer, window):
    # given
    held = decide(draft(gpu_hours=12_000, **window(1, 10)))

    # when
    services.application_approve(application=held, actor=reviewer, note="ok")

    # then
    assert not Allocation.objects.get(application=held).at_risk


def test_a_hold_that_expires_when_its_window_starts_is_released(
    draft, decide, window, today, totals
):
    # given
    held = decide(draft(gpu_hours=12_000, **window(1, 10)))
    waiting = decide(draft(gpu_hours=1_600, **window(1, 1)))

    # when: the day after the window started
    count = services.application_expire_holds(today=today + timedelta(days=2))

    # then
    assert count == 2
    held.refresh_from_db()
    waiting.refresh_from_db()
    assert (held.status, held.holds_capacity) == ("rejected", False)
    assert said(held.reasons) == [
        {
            "code": "hold_expired",
            "message": "The window started before a decision could be made.",
        }
    ]
    assert waiting.status == "rejected"
    assert said(waiting.reasons) == [
        {
            "code": "window_in_past",
            "message": "The window started before a decision could be made.",
        }
    ]
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}


def test_holds_whose_window_has_not_started_do_not_expire(draft, decide, window, today, totals):
    # given
    held = decide(draft(gpu_hours=12_000, **window(1, 10)))

    # when: on its first day
    count = services.application_expire_holds(today=today + timedelta(days=1))

    # then
    assert count == 0
    held.refresh_from_db()
    assert held.status == "in_review"
    assert totals()["pool"] == (0, 12_000)
    assert QuotaUsage.objects.get().held_gpu_hours == 12_000


def test_approval_succeeds_after_a_curtailment_under_the_hold_and_flags_the_allocation(
    draft, decide, reviewer, pool, window, today, totals
):
    # given: 1,200 a day held; day 2 is then curtailed to 0.01 MW (114 GPU-hours)
    from decimal import Decimal

    from allocations.models import PowerPhase

    held = decide(draft(gpu_hours=12_000, **window(1, 10)))
    day = today + timedelta(days=2)
    inventory.inventory_create(
        model=PowerPhase,
        values={
            "site": pool.site,
            "name": "curtailment",
            "power_mw": Decimal("-0.99"),
            "online_from": day,
            "online_until": day,
        },
        actor=SYSTEM,
    )

    # when
    approved = services.application_approve(application=held, actor=reviewer, note="ok")

    # then
    assert approved.status == "approved"
    assert totals()["pool"] == (12_000, 0)
    assert Allocation.objects.get(application=held).at_risk
