"""Transitions, holds, the waitlist, release, the daily beat, supplements and extensions."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from accounts.authz import SYSTEM
from accounts.models import AuditEvent
from allocations.models import (
    Allocation,
    Application,
    CapacityEvent,
    PoolDay,
    QuotaUsage,
)
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from allocations.services import inventory
from portal.errors import InvalidTransition

pytestmark = pytest.mark.django_db


def _reserved() -> tuple[int, int]:
    totals = PoolDay.objects.aggregate(c=Sum("committed_gpu_hours"), h=Sum("held_gpu_hours"))
    return totals["c"] or 0, totals["h"] or 0


def test_illegal_moves_are_refused_and_change_nothing(draft, decide, founder, reviewer):
    # given
    application = draft()
    events = AuditEvent.objects.count()

    # then: approve a draft
    with pytest.raises(InvalidTransition):
        services.application_approve(application=application, actor=reviewer, note="x")
    decided = decide(application)
    # submit twice, edit after submission, withdraw after approval
    with pytest.raises(InvalidTransition):
        services.application_submit(application=decided, actor=founder)
    with pytest.raises(InvalidTransition):
        services.application_update(application=decided, values={"title": "x"}, actor=founder)
    with pytest.raises(InvalidTransition):
        services.application_withdraw(application=decided, actor=founder)
    assert Application.objects.get(pk=application.pk).title == "Norwegian LLM fine-tune"
    # create, submit and approve were the only events
    assert AuditEvent.objects.count() == events + 3


@pytest.mark.parametrize("how", ["withdraw", "reject"])
def test_leaving_review_releases_the_hold_and_the_quota(draft, decide, founder, reviewer, how):
    # given
    decided = decide(draft(gpu_hours=12_000))
    assert _reserved() == (0, 12_000)

    # when
    if how == "withdraw":
        left = services.application_withdraw(application=decided, actor=founder)
    else:
        left = services.application_reject(application=decided, actor=reviewer, note="no")

    # then
    assert left.status == ("withdrawn" if how == "withdraw" else "rejected")
    assert not left.holds_capacity
    assert _reserved() == (0, 0)
    assert QuotaUsage.objects.get().held_gpu_hours == 0


def test_a_held_application_is_approved_even_when_the_pool_filled_up(
    draft, decide, fast_lane, reviewer, today
):
    # given: one day; the fast lane may take 1,596 GPU-hours that day
    day = {"start_date": today + timedelta(days=1), "end_date": today + timedelta(days=1)}
    fast_lane.auto_approve_max_gpu_hours = 500
    fast_lane.save(update_fields=["auto_approve_max_gpu_hours"])
    held = decide(draft(gpu_hours=1_000, **day))
    filler = decide(draft(gpu_hours=500, **day))
    late = decide(draft(gpu_hours=500, **day))

    # when
    approved = services.application_approve(application=held, actor=reviewer, note="ok")

    # then
    assert (held.status, filler.status, late.status) == ("in_review", "approved", "waitlisted")
    assert approved.status == "approved"
    assert _reserved() == (1_500, 0)


def test_the_waitlist_is_decided_in_submission_order(draft, decide, pool, today):
    # given: a day the program has filled (it may take 1,596 GPU-hours a day)
    day = {"start_date": today + timedelta(days=1), "end_date": today + timedelta(days=1)}
    decide(draft(gpu_hours=1_596, **day))
    first = decide(draft(gpu_hours=1_500, **day))
    second = decide(draft(gpu_hours=300, **day))
    assert (first.status, second.status) == ("waitlisted", "waitlisted")

    # when: 100 more GPUs; the program may now take 1,596 more that day
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today, "gpus_in_service": 200},
        actor=SYSTEM,
    )
    moved = services.waitlist_recheck(pool_id=pool.pk)

    # then: the first in line takes the room; had the second gone first, the first would wait
    assert moved == 1
    assert Application.objects.get(pk=first.pk).status == "approved"
    assert Application.objects.get(pk=second.pk).status == "waitlisted"


def test_a_large_waitlisted_request_does_not_block_a_smaller_one(
    draft, decide, founder, pool, today
):
    # given: 1,000 + 500 committed of the 1,596 the program may take that day
    day = {"start_date": today + timedelta(days=1), "end_date": today + timedelta(days=1)}
    decide(draft(gpu_hours=1_000, **day))
    freed = decide(draft(gpu_hours=500, **day))
    large = decide(draft(gpu_hours=900, **day))
    small = decide(draft(gpu_hours=300, **day))
    assert (large.status, small.status) == ("waitlisted", "waitlisted")

    # when: the 500 are released
    allocation = Allocation.objects.get(application=freed)
    allocation_services.allocation_release(allocation=allocation, actor=founder)
    services.waitlist_recheck(pool_id=pool.pk)

    # then: the large one, first in line, still does not fit; the small one behind it does
    assert Application.objects.get(pk=large.pk).status == "waitlisted"
    assert Application.objects.get(pk=small.pk).status == "approved"
    assert _reserved() == (1_300, 0)


def test_release_gives_future_days_back_once(draft, decide, founder, today):
    # given: 1,000 GPU-hours over ten days from today
    decided = decide(draft(gpu_hours=1_000, start_date=today, end_date=today + timedelta(days=9)))
    allocation = Allocation.objects.get(application=decided)

    # when
    released = allocation_services.allocation_release(allocation=allocation, actor=founder)

    # then: today's 100 stay; nine days come back
    assert released.granted_gpu_hours == 100
    assert released.end_date == today
    assert released.released_from == today + timedelta(days=1)
    assert _reserved() == (100, 0)
    assert QuotaUsage.objects.get().held_gpu_hours == 100
    with pytest.raises(InvalidTransition):
        allocation_services.allocation_release(allocation=released, actor=founder)


def test_the_beat_starts_and_expires_allocations_and_returns_the_quota(draft, decide, today):
    # given
    decided = decide(draft(gpu_hours=1_000, start_date=today + timedelta(days=1),
                           end_date=today + timedelta(days=2)))  # fmt: skip
    allocation = Allocation.objects.get(application=decided)
    assert allocation.status == "scheduled"

    # when
    started = allocation_services.allocation_advance(today=today + timedelta(days=1))
    ended = allocation_services.allocation_advance(today=today + timedelta(days=3))
    again = allocation_services.allocation_advance(today=today + timedelta(days=3))

    # then
    assert started["started"] == 1
    assert ended["expired"] == 1
    assert again == {"started": 0, "expired": 0, "warned": 0}
    allocation.refresh_from_db()
    assert allocation.status == "expired"
    assert allocation.expiry_notified
    assert QuotaUsage.objects.get().held_gpu_hours == 0


def test_a_supplement_and_an_extension_change_the_allocation(draft, decide, today):
    # given
    first = decide(draft(gpu_hours=1_000, start_date=today + timedelta(days=1),
                         end_date=today + timedelta(days=10)))  # fmt: skip
    allocation = Allocation.objects.get(application=first)

    # when
    supplement = decide(draft(kind="supplement", allocation=allocation, gpu_hours=500,
                              start_date=today + timedelta(days=5),
                              end_date=today + timedelta(days=10)))  # fmt: skip
    extension = decide(draft(kind="extension", allocation=allocation, gpu_hours=300,
                             start_date=today + timedelta(days=11),
                             end_date=today + timedelta(days=13)))  # fmt: skip
    wrong = decide(draft(kind="extension", allocation=allocation, gpu_hours=300,
                         start_date=today + timedelta(days=20),
                         end_date=today + timedelta(days=21)))  # fmt: skip

    # then
    assert (supplement.status, extension.status) == ("approved", "approved")
    assert wrong.status == "rejected"
    assert wrong.reasons[0]["code"] == "invalid_change"
    allocation.refresh_from_db()
    assert allocation.granted_gpu_hours == 1_800
    assert allocation.end_date == today + timedelta(days=13)
    assert _reserved() == (1_800, 0)


def test_capacity_that_shrinks_flags_allocations_and_cancels_nothing(
    draft, decide, pool, today, client_for, founder
):
    # given
    decided = decide(draft(gpu_hours=1_000, start_date=today + timedelta(days=1),
                           end_date=today + timedelta(days=1)))  # fmt: skip

    # when: a failed rack: 10 GPUs from tomorrow (228 GPU-hours a day)
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today + timedelta(days=1), "gpus_in_service": 10},
        actor=SYSTEM,
    )

    # then
    allocation = Allocation.objects.get(application=decided)
    assert allocation.status == "scheduled"
    assert allocation.at_risk
    day = client_for(founder).get(
        "/api/v1/capacity/",
        {"pool": str(pool.pk), "start": str(today + timedelta(days=1)),
         "end": str(today + timedelta(days=1))},
    ).json()[0]  # fmt: skip
    assert day["overcommitted"] is True
    assert (day["capacity_gpu_hours"], day["committed_gpu_hours"]) == (228, 1_000)


def test_applications_left_submitted_are_queued_again(draft, founder, monkeypatch):
    from allocations import tasks

    # given
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.decide_application, "delay", lambda *args: queued.append(args))
    old = services.application_submit(application=draft(), actor=founder)
    Application.objects.filter(pk=old.pk).update(submitted_at=old.submitted_at - timedelta(hours=1))
    services.application_submit(application=draft(), actor=founder)

    # when
    count = services.application_requeue_stale(older_than_seconds=120)

    # then: only the old one
    assert count == 1
    assert queued == [(str(old.pk), 1)]


def test_holds_expire_when_the_window_starts(draft, decide, today):
    # given
    held = decide(draft(gpu_hours=12_000, start_date=today + timedelta(days=1),
                        end_date=today + timedelta(days=10)))  # fmt: skip

    # when
    count = services.application_expire_holds(today=today + timedelta(days=2))

    # then
    assert count == 1
    expired = Application.objects.get(pk=held.pk)
    assert expired.status == "rejected"
    assert expired.reasons[0]["code"] == "hold_expired"
    assert _reserved() == (0, 0)


@pytest.mark.usefixtures("postgres")
def test_the_decision_locks_the_ledger_rows_before_it_writes_them(draft, founder):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given
    submitted = services.application_submit(application=draft(), actor=founder)

    # when
    with CaptureQueriesContext(connection) as queries:
        services.application_decide(application_id=submitted.pk, submission=1)

    # then
    statements = [query["sql"] for query in queries.captured_queries]
    lock = next(i for i, sql in enumerate(statements)
                if "allocations_poolday" in sql and "FOR UPDATE" in sql)  # fmt: skip
    write = next(i for i, sql in enumerate(statements)
                 if sql.startswith("UPDATE") and "allocations_poolday" in sql)  # fmt: skip
    quota = next(i for i, sql in enumerate(statements)
                 if "allocations_quotausage" in sql and "FOR UPDATE" in sql)  # fmt: skip
    application = next(
        i
        for i, sql in enumerate(statements)
        if 'FROM "allocations_application"' in sql and "FOR UPDATE" in sql
    )
    assert quota < lock < application < write
    assert '"day" ASC' in statements[lock]


def test_energy_per_gpu_hour_is_the_site_pue_times_it_power():
    from allocations.models import AcceleratorModel, GpuPool, Site
    from allocations.services.ledger import wh_per_gpu_hour

    # given
    pool = GpuPool(site=Site(pue=Decimal("1.10")), accelerator=AcceleratorModel(it_power_w=1900))

    # then
    assert wh_per_gpu_hour(pool) == Decimal("2090.00")
    assert date.today()
