"""Allocations after the decision: the daily beat, early release, supplements and
extensions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allocations.models import Allocation, BackendCall, PoolDay, QuotaUsage
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from audit.models import AuditEvent
from portal.errors import InvalidTransition, NotAllowed
from tests.decisions.support import queued_tasks, said

pytestmark = pytest.mark.django_db


def _committed_by_day(today) -> dict[int, int]:
    return {
        (row.day - today).days: row.committed_gpu_hours
        for row in PoolDay.objects.order_by("day")
        if row.committed_gpu_hours
    }


@pytest.fixture
def granted(draft, decide, window) -> Allocation:
    """1,000 GPU-hours over days 1..10: 100 a day."""
    return Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(1, 10))))


# --- the daily beat ------------------------------------------------------------------------------


def test_the_beat_starts_an_allocation_on_its_first_day(granted, today):
    # when
    before = allocation_services.allocation_advance(today=today)
    on_the_day = allocation_services.allocation_advance(today=today + timedelta(days=1))

    # then
    assert before == {"started": 0, "expired": 0, "warned": 0}
    assert on_the_day == {"started": 1, "expired": 0, "warned": 0}
    granted.refresh_from_db()
    assert granted.status == "active"
    event = AuditEvent.objects.get(target_id=granted.pk, verb="allocation.active")
    assert (event.before, event.after) == ({"status": "scheduled"}, {"status": "active"})
    assert QuotaUsage.objects.get().held_gpu_hours == 1_000


def test_the_beat_expires_an_allocation_after_its_last_day_and_gives_the_quota_back(
    granted, today, totals
):
    # given
    allocation_services.allocation_advance(today=today + timedelta(days=1))

    # when
    on_the_last_day = allocation_services.allocation_advance(today=today + timedelta(days=10))
    after = allocation_services.allocation_advance(today=today + timedelta(days=11))
    again = allocation_services.allocation_advance(today=today + timedelta(days=11))

    # then
    assert on_the_last_day["expired"] == 0
    assert after["expired"] == 1
    assert again == {"started": 0, "expired": 0, "warned": 0}
    granted.refresh_from_db()
    assert granted.status == "expired"
    assert QuotaUsage.objects.get().held_gpu_hours == 0
    # the days it had stay in the ledger: they were used (or could have been)
    assert totals()["pool"] == (1_000, 0)
    assert AuditEvent.objects.filter(target_id=granted.pk, verb="allocation.expired").count() == 1


@pytest.mark.parametrize("status", ["exhausted", "suspended", "scheduled"])
def test_the_beat_expires_exhausted_suspended_and_never_started_allocations(granted, today, status):
    # given
    Allocation.objects.filter(pk=granted.pk).update(status=status)

    # when
    result = allocation_services.allocation_advance(today=today + timedelta(days=11))

    # then
    assert result["expired"] == 1
    granted.refresh_from_db()
    assert granted.status == "expired"
    assert QuotaUsage.objects.get().held_gpu_hours == 0


def test_the_beat_warns_once_seven_days_before_the_end(
    granted, today, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        early = allocation_services.allocation_advance(today=today + timedelta(days=2))
        due = allocation_services.allocation_advance(today=today + timedelta(days=3))
        again = allocation_services.allocation_advance(today=today + timedelta(days=4))

    # then
    assert (early["warned"], due["warned"], again["warned"]) == (0, 1, 0)
    granted.refresh_from_db()
    assert granted.expiry_notified  # what keeps the next beat from warning again
    assert ("notify_allocation_expiring", (str(granted.pk),)) in queued_tasks(callbacks)
    assert [name for name, _ in queued_tasks(callbacks)].count("notify_allocation_expiring") == 1


# --- release -------------------------------------------------------------------------------------


def test_releasing_before_the_start_gives_every_day_back(
    granted, founder, today, totals, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        released = allocation_services.allocation_release(allocation=granted, actor=founder)

    # then
    assert (released.status, released.granted_gpu_hours) == ("released", 0)
    assert released.released_from == today + timedelta(days=1)
    assert released.end_date == today + timedelta(days=10)
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}
    stop = BackendCall.objects.get(allocation=granted, action="suspend")
    assert queued_tasks(callbacks) == [
        ("run_backend_call", (str(stop.pk),)),  # released before its first day: jobs stop
        ("recheck_waitlist", (str(granted.pool_id),)),
    ]
    event = AuditEvent.objects.get(target_id=granted.pk, verb="allocation.release")
    assert event.actor == founder
    assert event.after["freed_gpu_hours"] == 1_000


def test_releasing_a_running_allocation_gives_back_the_days_from_tomorrow(
    draft, decide, founder, window, today, totals
):
    # given: 1,000 over days -0..9, started today
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(0, 9))))
    assert allocation.status == "active"

    # when
    released = allocation_services.allocation_release(allocation=allocation, actor=founder)

    # then: today's 100 stay
    assert (released.status, released.granted_gpu_hours) == ("active", 100)
    assert (released.end_date, released.released_from) == (today, today + timedelta(days=1))
    assert _committed_by_day(today) == {0: 100}
    assert totals()["quota"] == 100


def test_a_second_release_is_refused_and_changes_nothing(granted, founder, snapshot):
    # given
    allocation_services.allocation_release(allocation=granted, actor=founder)
    before = snapshot()

    # when
    with pytest.raises(InvalidTransition) as refused:
        allocation_services.allocation_release(allocation=granted, actor=founder)

    # then
    assert refused.value.message == "The allocation is released: it cannot be released."
    assert snapshot() == before


def test_a_running_allocation_released_once_cannot_be_released_again(
    draft, decide, founder, window, snapshot
):
    # given
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(0, 9))))
    allocation_services.allocation_release(allocation=allocation, actor=founder)
    before = snapshot()

    # when
    with pytest.raises(InvalidTransition) as refused:
        allocation_services.allocation_release(allocation=allocation, actor=founder)

    # then
    released_from = Allocation.objects.get(pk=allocation.pk).released_from
    assert refused.value.message == f"The allocation was released from {released_from} already."
    assert snapshot() == before


def test_an_allocation_on_its_last_day_has_nothing_to_release(
    draft, decide, founder, window, snapshot
):
    # given
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=100, **window(0, 0))))
    before = snapshot()

    # when
    with pytest.raises(InvalidTransition) as refused:
        allocation_services.allocation_release(allocation=allocation, actor=founder)

    # then
    assert refused.value.message == "The allocation has no future days left to release."
    assert snapshot() == before


def test_an_expired_allocation_cannot_be_released(granted, founder, today, snapshot):
    # given
    allocation_services.allocation_advance(today=today + timedelta(days=11))
    before = snapshot()

    # when
    with pytest.raises(InvalidTransition) as refused:
        allocation_services.allocation_release(allocation=granted, actor=founder)

    # then
    assert refused.value.message == "The allocation is expired: it cannot be released."
    assert snapshot() == before


def test_a_release_gives_back_the_future_days_of_supplements_and_extensions_too(
    granted, draft, decide, founder, window, today, totals
):
    # given: 500 more on days 6..10 and 300 on days 11..13
    decide(draft(kind="supplement", allocation=granted, gpu_hours=500, **window(6, 10)))
    decide(draft(kind="extension", allocation=granted, gpu_hours=300, **window(11, 13)))
    assert totals()["pool"] == (1_800, 0)

    # when
    released = allocation_services.allocation_release(allocation=granted, actor=founder)

    # then
    assert (released.status, released.granted_gpu_hours) == ("released", 0)
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}


# --- revocation ----------------------------------------------------------------------------------


def test_revoking_before_the_start_frees_every_day_and_the_quota_and_stops_the_jobs(
    granted, operator, today, totals, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        revoked = allocation_services.allocation_revoke(
            allocation=granted, actor=operator, note="Breach of the acceptable use policy."
        )

    # then
    assert (revoked.status, revoked.granted_gpu_hours) == ("revoked", 0)
    assert revoked.end_date == today + timedelta(days=10)
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}
    stop = BackendCall.objects.get(allocation=granted, action="suspend")
    assert queued_tasks(callbacks) == [
        ("run_backend_call", (str(stop.pk),)),
        ("recheck_waitlist", (str(granted.pool_id),)),
    ]
    event = AuditEvent.objects.get(target_id=granted.pk, verb="allocation.revoke")
    assert event.actor == operator
    assert event.after["freed_gpu_hours"] == 1_000
    assert said(event.reasons) == [
        {"code": "revoked_by_operator", "message": "Breach of the acceptable use policy."}
    ]


def test_revoking_a_running_suspended_allocation_keeps_todays_hours_and_frees_the_rest(
    draft, decide, operator, window, today, totals
):
    # given: 1,000 over days 0..9, started today, suspended
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(0, 9))))
    allocation_services.allocation_suspend(allocation=allocation, actor=operator)

    # when
    revoked = allocation_services.allocation_revoke(allocation=allocation, actor=operator)

    # then: today's 100 stay in the ledger as used days do; the quota holds nothing
    assert (revoked.status, revoked.granted_gpu_hours) == ("revoked", 100)
    assert (revoked.end_date, revoked.released_from) == (today, today + timedelta(days=1))
    assert _committed_by_day(today) == {0: 100}
    assert totals()["quota"] == 0
    event = AuditEvent.objects.get(target_id=allocation.pk, verb="allocation.revoke")
    assert said(event.reasons)[0]["message"] == "Revoked by an operator."


@pytest.mark.parametrize("ending", ["release", "expiry", "revocation"])
def test_an_ended_allocation_cannot_be_revoked_and_nothing_changes(
    granted, founder, operator, today, snapshot, ending
):
    # given
    if ending == "release":
        allocation_services.allocation_release(allocation=granted, actor=founder)
    elif ending == "expiry":
        allocation_services.allocation_advance(today=today + timedelta(days=11))
    else:
        allocation_services.allocation_revoke(allocation=granted, actor=operator)
    status = Allocation.objects.get(pk=granted.pk).status
    before = snapshot()
    events = AuditEvent.objects.count()

    # when
    with pytest.raises(InvalidTransition) as refused:
        allocation_services.allocation_revoke(allocation=granted, actor=operator)

    # then
    assert refused.value.message == f"The allocation is {status}: it cannot become revoked."
    assert snapshot() == before
    assert AuditEvent.objects.count() == events


def test_a_revoked_allocation_cannot_be_resumed_or_released(granted, founder, operator):
    # given
    allocation_services.allocation_revoke(allocation=granted, actor=operator)

    # when / then
    with pytest.raises(InvalidTransition, match="revoked: it cannot be resumed"):
        allocation_services.allocation_resume(allocation=granted, actor=operator)
    with pytest.raises(InvalidTransition, match="revoked: it cannot be released"):
        allocation_services.allocation_release(allocation=granted, actor=founder)
    assert Allocation.objects.get(pk=granted.pk).status == "revoked"


def test_only_operators_revoke(granted, founder, snapshot):
    # given
    before = snapshot()

    # when
    with pytest.raises(NotAllowed):
        allocation_services.allocation_revoke(allocation=granted, actor=founder)

    # then
    assert snapshot() == before
    assert Allocation.objects.get(pk=granted.pk).status == "scheduled"


# --- supplements and extensions ------------------------------------------------------------------


def test_an_approved_supplement_adds_hours_inside_the_window(
    granted, draft, decide, window, today, totals
):
    # when
    supplement = decide(
        draft(kind="supplement", allocation=granted, gpu_hours=500, **window(6, 10))
    )

    # then
    assert supplement.status == "approved"
    assert supplement.allocation_id == granted.pk
    granted.refresh_from_db()
    assert (granted.granted_gpu_hours, granted.end_date) == (1_500, today + timedelta(days=10))
    assert _committed_by_day(today) == {
        **dict.fromkeys(range(1, 6), 100),
        **dict.fromkeys(range(6, 11), 200),
    }
    assert totals()["quota"] == 1_500
    assert Allocation.objects.count() == 1
    event = AuditEvent.objects.get(target_id=granted.pk, verb="allocation.supplement")
    assert (event.before["granted_gpu_hours"], event.after["granted_gpu_hours"]) == (1_000, 1_500)


def test_an_approved_extension_adds_hours_and_days(granted, draft, decide, window, today, totals):
    # when
    extension = decide(draft(kind="extension", allocation=granted, gpu_hours=300, **window(11, 13)))

    # then
    assert extension.status == "approved"
    granted.refresh_from_db()
    assert (granted.granted_gpu_hours, granted.end_date) == (1_300, today + timedelta(days=13))
    assert _committed_by_day(today) == dict.fromkeys(range(1, 14), 100)
    assert totals()["quota"] == 1_300
    event = AuditEvent.objects.get(target_id=granted.pk, verb="allocation.extension")
    assert (event.before["end_date"], event.after["end_date"]) == (
        str(today + timedelta(days=10)),
        str(today + timedelta(days=13)),
    )


def test_a_large_supplement_goes_to_review_and_changes_the_allocation_when_approved(
    granted, draft, decide, reviewer, window
):
    # given
    supplement = decide(
        draft(kind="supplement", allocation=granted, gpu_hours=10_500, **window(1, 10))
    )
    assert supplement.status == "in_review"
    granted.refresh_from_db()
    assert granted.granted_gpu_hours == 1_000

    # when
    services.application_approve(application=supplement, actor=reviewer, note="ok")

    # then
    granted.refresh_from_db()
    assert granted.granted_gpu_hours == 11_500


def test_a_supplement_brings_an_exhausted_allocation_back(draft, decide, window):
    # given: a running allocation that usage exhausted (only an active one is exhausted)
    running = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(0, 9))))
    Allocation.objects.filter(pk=running.pk).update(status="exhausted")

    # when
    decide(draft(kind="supplement", allocation=running, gpu_hours=500, **window(0, 9)))

    # then
    running.refresh_from_db()
    assert (running.status, running.granted_gpu_hours) == ("active", 1_500)


def test_a_supplement_that_does_not_fit_is_waitlisted_and_leaves_the_allocation_alone(
    granted, draft, decide, window, snapshot
):
    # given: 100 a day granted; the fast lane may take 1,596 a day
    before = snapshot()

    # when
    supplement = decide(
        draft(kind="supplement", allocation=granted, gpu_hours=1_500, **window(1, 1))
    )

    # then
    assert supplement.status == "waitlisted"
    assert [r["code"] for r in supplement.reasons] == ["capacity_program"]
    assert snapshot() == before


def test_an_extension_that_leaves_a_gap_is_rejected_and_leaves_the_allocation_alone(
    granted, draft, decide, window, snapshot
):
    # given
    before = snapshot()

    # when
    extension = decide(draft(kind="extension", allocation=granted, gpu_hours=300, **window(12, 14)))

    # then
    assert extension.status == "rejected"
    assert said(extension.reasons) == [
        {
            "code": "invalid_change",
            "message": "An extension starts the day after the allocation ends.",
        }
    ]
    assert snapshot() == before


@pytest.mark.parametrize("ending", ["release", "expiry"])
def test_a_supplement_in_review_cannot_be_approved_once_its_allocation_has_ended(
    granted, draft, decide, founder, reviewer, window, today, snapshot, totals, ending
):
    # given: 10,500 more held for review; then the allocation is released or expires
    supplement = decide(
        draft(kind="supplement", allocation=granted, gpu_hours=10_500, **window(1, 10))
    )
    assert supplement.status == "in_review"
    if ending == "release":
        allocation_services.allocation_release(allocation=granted, actor=founder)
    else:
        allocation_services.allocation_advance(today=today + timedelta(days=11))
    before = snapshot()

    # when
    with pytest.raises(InvalidTransition) as refused:
        services.application_approve(application=supplement, actor=reviewer, note="ok")

    # then: nothing granted to an allocation that no longer runs
    status = "released" if ending == "release" else "expired"
    assert refused.value.message == f"The allocation is {status}."
    assert snapshot() == before
    # and the reviewer's rejection gives the hold and its quota back
    services.application_reject(application=supplement, actor=reviewer, note="ended")
    assert totals()["pool"][1] == 0
    assert totals()["quota"] == 0
