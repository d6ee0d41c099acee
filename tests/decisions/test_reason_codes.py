"""Every check of the decision, with its reason code, and nothing written when it fails."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from allocations.models import Allocation, Application, PoolDay, QuotaUsage, SiteDay
from tests.factories import AllocationLineage

pytestmark = pytest.mark.django_db


def _ledger() -> tuple[int, int, Decimal]:
    pool = PoolDay.objects.aggregate(c=Sum("committed_gpu_hours"), h=Sum("held_gpu_hours"))
    site = SiteDay.objects.aggregate(e=Sum("committed_wh"))
    return (pool["c"] or 0, pool["h"] or 0, site["e"] or Decimal(0))


def _codes(application) -> list[str]:
    return [reason["code"] for reason in application.reasons]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("program_closed", "program_closed"),
        ("unverified", "not_eligible"),
        ("foreign", "not_eligible"),
        ("company", "not_eligible"),
        ("pool_closed", "pool_closed"),
        ("too_small", "out_of_bounds"),
        ("too_long", "out_of_bounds"),
        ("in_past", "window_in_past"),
        ("prohibited", "prohibited_use"),
    ],
)
def test_a_failed_check_rejects_with_its_code_and_writes_nothing(
    draft, decide, fast_lane, startup, pool, today, change, code
):
    # given
    overrides: dict = {}
    if change == "program_closed":
        fast_lane.is_open = False
        fast_lane.save(update_fields=["is_open"])
    elif change == "unverified":
        startup.verified_at = None
        startup.save(update_fields=["verified_at"])
    elif change == "foreign":
        startup.country = "SE"
        startup.save(update_fields=["country"])
    elif change == "company":
        startup.kind = "company"
        startup.save(update_fields=["kind"])
    elif change == "pool_closed":
        pool.is_open = False
        pool.save(update_fields=["is_open"])
    elif change == "prohibited":
        overrides["risk_category"] = "prohibited"
    application = draft(**overrides)
    # A draft that can never pass is refused when saved; these become impossible after it
    # was saved: the program's bounds are edited, or its first day passes.
    if change == "too_small":
        fast_lane.min_gpu_hours = application.gpu_hours + 1
        fast_lane.save(update_fields=["min_gpu_hours"])
    elif change == "too_long":
        fast_lane.max_duration_days = application.days - 1
        fast_lane.save(update_fields=["max_duration_days"])
    elif change == "in_past":
        Application.objects.filter(pk=application.pk).update(start_date=today - timedelta(days=1))
        application.refresh_from_db()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert _codes(decided) == [code]
    assert _ledger() == (0, 0, Decimal(0))
    assert not QuotaUsage.objects.exclude(held_gpu_hours=0).exists()
    assert Allocation.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "codes"),
    [
        ({"risk_category": "high"}, ["needs_review"]),
        ({"data_stays_in_eea": False}, ["data_outside_eea"]),
        ({"gpu_hours": 12_000}, ["above_auto_approve"]),
        ({"risk_category": "high", "gpu_hours": 12_000}, ["needs_review", "above_auto_approve"]),
    ],
)
def test_flagged_or_large_requests_go_to_review_with_capacity_held(draft, decide, overrides, codes):
    # given
    application = draft(**overrides)

    # when
    decided = decide(application)

    # then
    assert decided.status == "in_review"
    assert _codes(decided) == codes
    assert decided.holds_capacity
    assert _ledger()[:2] == (0, decided.gpu_hours)
    assert QuotaUsage.objects.get().held_gpu_hours == decided.gpu_hours


def test_a_lineage_at_the_systemic_risk_threshold_goes_to_review(draft, decide, pool, startup):
    # given: 1e25 FLOP at 2.5e15 FLOP/s × 0.4 is 2,777,778 GPU-hours already trained
    AllocationLineage(pool=pool, organization=startup, lineage="fjord-7b", gpu_hours=2_777_000)
    application = draft(model_lineage="fjord-7b", gpu_hours=1_000)

    # when
    decided = decide(application)

    # then
    assert decided.status == "in_review"
    assert _codes(decided) == ["systemic_risk"]
    assert "1E+25" in decided.reasons[0]["message"]


def test_below_the_threshold_a_lineage_is_approved(draft, decide, pool, startup):
    # given
    AllocationLineage(pool=pool, organization=startup, lineage="fjord-7b", gpu_hours=1_000)

    # when
    decided = decide(draft(model_lineage="fjord-7b", gpu_hours=1_000))

    # then
    assert decided.status == "approved"


def test_over_quota_is_rejected_and_writes_nothing(draft, decide, fast_lane):
    # given
    fast_lane.org_cap_gpu_hours = 1_500
    fast_lane.save(update_fields=["org_cap_gpu_hours"])
    decide(draft(gpu_hours=1_000))
    before = _ledger()

    # when
    decided = decide(draft(gpu_hours=1_000))

    # then
    assert decided.status == "rejected"
    assert _codes(decided) == ["over_quota"]
    assert _ledger() == before
    assert QuotaUsage.objects.get().held_gpu_hours == 1_000


def test_the_pool_limit_waitlists_with_the_first_failing_day(draft, decide, fast_lane, pool, today):
    # given: the program may take the whole pool, which has 2,280 GPU-hours a day
    fast_lane.nominal_share = Decimal("1")
    fast_lane.save(update_fields=["nominal_share"])
    decide(draft(gpu_hours=2_000, start_date=today + timedelta(days=3),
                 end_date=today + timedelta(days=3)))  # fmt: skip
    before = _ledger()

    # when: 500 a day over days 1..5 does not fit on day 3
    decided = decide(draft(gpu_hours=2_500, start_date=today + timedelta(days=1),
                           end_date=today + timedelta(days=5)))  # fmt: skip

    # then
    assert decided.status == "waitlisted"
    assert _codes(decided) == ["capacity_pool"]
    assert decided.reasons[0]["day"] == str(today + timedelta(days=3))
    assert decided.failed_day == today + timedelta(days=3)
    assert _ledger() == before


def test_the_power_envelope_waitlists_with_capacity_power(draft, decide, pool, today):
    from allocations.models import PowerPhase

    # given: 0.05 MW is 1,200 kWh a day, 574 GPU-hours at 2.09 kWh each
    PowerPhase.objects.filter(site=pool.site).update(power_mw=Decimal("0.05"))

    # when
    decided = decide(draft(gpu_hours=1_000, start_date=today + timedelta(days=1),
                           end_date=today + timedelta(days=1)))  # fmt: skip

    # then
    assert decided.status == "waitlisted"
    assert _codes(decided) == ["capacity_power"]
    assert _ledger() == (0, 0, Decimal(0))


def test_deciding_twice_or_with_an_old_submission_decides_once(draft, founder):
    from allocations.services import applications as services
    from audit.models import AuditEvent

    # given
    submitted = services.application_submit(application=draft(), actor=founder)

    # when
    first = services.application_decide(application_id=submitted.pk, submission=1)
    again = services.application_decide(application_id=submitted.pk, submission=1)
    stale = services.application_decide(application_id=submitted.pk, submission=0)

    # then
    assert first.status == again.status == stale.status == "approved"
    assert (
        AuditEvent.objects.filter(target_id=submitted.pk, verb="application.approved").count() == 1
    )
    assert Allocation.objects.count() == 1
    assert _ledger()[0] == 1_000
