"""The waitlist: re-checked when capacity frees, in program priority then submission order;
one that still does not fit does not block smaller ones behind it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.authz import SYSTEM
from allocations.models import Allocation, Application, CapacityEvent
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from allocations.services import inventory
from audit.models import AuditEvent
from tests.decisions.support import queued_tasks, said
from tests.effects import run_effects
from tests.factories import CapacityEventFactory, PoolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def maintenance(pool, today) -> CapacityEvent:
    """Day 1 has no GPUs in service (a maintenance window); day 2 has all 100 again."""
    CapacityEventFactory(pool=pool, effective_from=today + timedelta(days=2), gpus_in_service=100)
    return CapacityEventFactory(
        pool=pool, effective_from=today + timedelta(days=1), gpus_in_service=0
    )


def _status(application: Application) -> str:
    return Application.objects.get(pk=application.pk).status


def _end_maintenance_with(event: CapacityEvent, gpus: int, callbacks_fixture) -> list:
    with callbacks_fixture() as callbacks:
        inventory.inventory_update(instance=event, values={"gpus_in_service": gpus}, actor=SYSTEM)
    return queued_tasks(callbacks)


def test_the_waitlist_goes_by_program_priority_before_submission_time(
    draft, decide, pool, window, make_program, maintenance, django_capture_on_commit_callbacks
):
    # given: the fast lane (priority 20) waits first, a research program (priority 10) after
    research = make_program(
        name="Research",
        slug="research",
        priority=10,
        nominal_share=Decimal("0.5"),
        lending_limit=Decimal("1"),
        borrowing_limit=Decimal("0.5"),
    )
    fast = decide(draft(gpu_hours=1_000, **window(1, 1)))
    slow = decide(draft(program=research, gpu_hours=1_000, **window(1, 1)))
    assert (
        [r["code"] for r in fast.reasons] == [r["code"] for r in slow.reasons] == ["capacity_pool"]
    )

    # when: 70 GPUs (1,596 GPU-hours) come back; either one fits, not both
    queued = _end_maintenance_with(maintenance, 70, django_capture_on_commit_callbacks)
    moved = services.waitlist_recheck(pool_id=pool.pk)

    # then
    assert queued == [("recheck_waitlist", (str(pool.pk),))]
    assert moved == 1
    assert (_status(slow), _status(fast)) == ("approved", "waitlisted")


def test_within_a_program_the_waitlist_goes_by_submission_time(
    draft, decide, pool, window, maintenance, django_capture_on_commit_callbacks
):
    # given: drafted first, submitted second
    drafted_first = draft(gpu_hours=1_000, **window(1, 1))
    submitted_first = decide(draft(gpu_hours=1_000, **window(1, 1)))
    drafted_first = decide(drafted_first)

    # when: 70 GPUs come back: the fast lane may take 1,117 that day
    _end_maintenance_with(maintenance, 70, django_capture_on_commit_callbacks)
    services.waitlist_recheck(pool_id=pool.pk)

    # then
    assert (_status(submitted_first), _status(drafted_first)) == ("approved", "waitlisted")


def test_a_large_request_that_does_not_fit_does_not_block_a_smaller_one_behind_it(
    draft, decide, pool, window, maintenance, django_capture_on_commit_callbacks
):
    # given
    large = decide(draft(gpu_hours=1_500, **window(1, 1)))
    small = decide(draft(gpu_hours=400, **window(1, 1)))

    # when: 40 GPUs (912 GPU-hours) come back: the fast lane may take 456 + 182 that day
    _end_maintenance_with(maintenance, 40, django_capture_on_commit_callbacks)
    moved = services.waitlist_recheck(pool_id=pool.pk)

    # then
    assert moved == 1
    assert (_status(large), _status(small)) == ("waitlisted", "approved")
    assert Application.objects.get(pk=large.pk).reasons[0]["message"] == (
        f"On {large.start_date} the pool has 912 GPU-hours free; the request needs 1500."
    )


def test_a_recheck_that_finds_nothing_new_writes_nothing(
    draft, decide, pool, window, snapshot, django_capture_on_commit_callbacks
):
    # given
    waiting = decide(draft(gpu_hours=1_600, **window(1, 1)))
    before, events = snapshot(), AuditEvent.objects.count()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        moved = services.waitlist_recheck(pool_id=pool.pk)

    # then
    assert moved == 0
    assert _status(waiting) == "waitlisted"
    assert (snapshot(), AuditEvent.objects.count()) == (before, events)
    assert callbacks == []


def test_a_waitlisted_request_that_now_fits_but_is_flagged_goes_to_review_with_a_hold(
    draft, decide, pool, window, maintenance, totals, django_capture_on_commit_callbacks
):
    # given
    waiting = decide(draft(gpu_hours=1_000, data_stays_in_eea=False, **window(1, 1)))
    assert waiting.status == "waitlisted"

    # when
    _end_maintenance_with(maintenance, 100, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks() as callbacks:
        services.waitlist_recheck(pool_id=pool.pk)

    # then
    waiting.refresh_from_db()
    assert (waiting.status, waiting.holds_capacity, waiting.failed_day) == (
        "in_review",
        True,
        None,
    )
    assert said(waiting.reasons) == [
        {"code": "data_outside_eea", "message": "Data leaving the EEA is decided by a reviewer."}
    ]
    assert totals()["pool"] == (0, 1_000)
    assert queued_tasks(callbacks) == [
        ("notify_application_decided", (str(waiting.pk), "in_review"))
    ]


def test_a_waitlisted_request_whose_window_started_is_rejected_on_recheck(
    draft, decide, pool, window, today, totals
):
    # given: waitlisted, and its first day has passed since
    waiting = decide(draft(gpu_hours=1_600, **window(1, 1)))
    Application.objects.filter(pk=waiting.pk).update(
        start_date=today - timedelta(days=1), end_date=today - timedelta(days=1)
    )

    # when
    moved = services.waitlist_recheck(pool_id=pool.pk)

    # then
    assert moved == 1
    waiting.refresh_from_db()
    assert waiting.status == "rejected"
    assert said(waiting.reasons) == [
        {"code": "window_in_past", "message": "The window starts in the past."}
    ]
    assert totals()["pool"] == (0, 0)


def test_a_recheck_looks_only_at_its_own_pool(draft, decide, pool, window, today):
    # given: the same request waits in two pools
    other = PoolFactory(name="narvik-other", site=pool.site)
    CapacityEventFactory(pool=other, effective_from=today - timedelta(days=1), gpus_in_service=100)
    here = decide(draft(gpu_hours=1_600, **window(1, 1)))
    there = decide(draft(pool=other, gpu_hours=1_600, **window(1, 1)))
    for target in (pool, other):
        inventory.inventory_create(
            model=CapacityEvent,
            values={"pool": target, "effective_from": today, "gpus_in_service": 200},
            actor=SYSTEM,
        )

    # when
    moved = services.waitlist_recheck(pool_id=pool.pk)

    # then
    assert moved == 1
    assert (_status(here), _status(there)) == ("approved", "waitlisted")


def test_a_release_frees_room_that_the_queued_recheck_gives_to_the_waitlist(
    draft, decide, founder, window, monkeypatch, django_capture_on_commit_callbacks
):
    # given: 1,000 approved on day 1; 1,000 more wait
    first = decide(draft(gpu_hours=1_000, **window(1, 1)))
    waiting = decide(draft(gpu_hours=1_000, **window(1, 1)))
    assert waiting.status == "waitlisted"
    # when: the release, then the re-check it queued, run here (the broker is the outside
    # world)
    with django_capture_on_commit_callbacks(execute=False):
        allocation_services.allocation_release(
            allocation=Allocation.objects.get(application=first), actor=founder
        )
    run_effects(tasks={"allocations.tasks.recheck_waitlist"})

    # then
    assert _status(waiting) == "approved"
    assert Allocation.objects.get(application=waiting).granted_gpu_hours == 1_000
