"""Every check of the worker's decision with its exact reasons, in the design's order; a
failed check changes nothing in the ledger, the quota or the allocations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Membership
from allocations.models import Allocation, Application, PoolDay, PowerPhase, QuotaUsage
from allocations.services import allocations as allocation_services
from tests.decisions.support import said
from tests.factories import (
    AllocationLineage,
    CapacityEventFactory,
    MembershipFactory,
    PoolFactory,
    PowerPhaseFactory,
)

pytestmark = pytest.mark.django_db

AUTO_APPROVED = {
    "code": "auto_approved",
    "message": "Eligible, within quota and capacity: approved.",
}
ABOVE_AUTO_APPROVE = {
    "code": "above_auto_approve",
    "message": "Above 10000 GPU-hours, Fast lane is decided by a reviewer.",
}
NEEDS_REVIEW = {"code": "needs_review", "message": "A high-risk AI use is decided by a reviewer."}
DATA_OUTSIDE_EEA = {
    "code": "data_outside_eea",
    "message": "Data leaving the EEA is decided by a reviewer.",
}
WRONG_ALLOCATION = {
    "code": "invalid_change",
    "message": "The allocation belongs to another organization, program or pool.",
}

# 1e25 FLOP at 2.5e15 FLOP/s × 3600 s × 0.4 is 2,777,777.8 GPU-hours of GB300.
SYSTEMIC_GPU_HOURS = 2_777_778


# --- 1. eligibility and 2. request bounds: rejected, nothing written -----------------------------


def test_a_closed_program_is_rejected_and_changes_nothing(draft, decide, fast_lane, snapshot):
    # given
    application = draft()
    fast_lane.is_open = False
    fast_lane.save(update_fields=["is_open"])
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {"code": "program_closed", "message": "The program Fast lane is closed."}
    ]
    assert snapshot() == before
    assert Allocation.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("verified_at", None, "The organization is not verified yet."),
        ("country", "SE", "Fast lane is not open to organizations in SE."),
        ("kind", "company", "Fast lane is not open to a company."),
    ],
)
def test_an_ineligible_organization_is_rejected_and_changes_nothing(
    draft, decide, startup, snapshot, field, value, message
):
    # given
    application = draft()
    setattr(startup, field, value)
    startup.save(update_fields=[field])
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [{"code": "not_eligible", "message": message}]
    assert snapshot() == before


def test_an_applicant_who_left_the_organization_is_not_eligible(draft, decide, founder, snapshot):
    # given
    application = draft()
    Membership.objects.filter(user=founder).delete()
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {"code": "not_eligible", "message": "The applicant is not a member of the organization."}
    ]
    assert snapshot() == before


def test_an_unverified_organization_may_apply_where_no_verification_is_required(
    draft, decide, fast_lane, startup
):
    # given
    fast_lane.verification_required = False
    fast_lane.save(update_fields=["verification_required"])
    startup.verified_at = None
    startup.save(update_fields=["verified_at"])

    # when
    decided = decide(draft())

    # then
    assert decided.status == "approved"
    assert said(decided.reasons) == [AUTO_APPROVED]


def test_a_closed_pool_is_rejected_and_changes_nothing(draft, decide, pool, snapshot):
    # given
    application = draft()
    pool.is_open = False
    pool.save(update_fields=["is_open"])
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {"code": "pool_closed", "message": "The pool narvik-test takes no applications."}
    ]
    assert snapshot() == before


def _made_impossible(application, **fields):
    """A draft that became impossible after it was saved (a draft that can never pass is
    refused when saved): its program's bounds were edited, or its first day has passed."""
    Application.objects.filter(pk=application.pk).update(**fields)
    application.refresh_from_db()
    return application


@pytest.mark.parametrize(
    ("gpu_hours", "first", "last", "message"),
    [
        (9, 1, 10, "Fast lane takes 10 to 50000 GPU-hours per application."),
        (50_001, 1, 10, "Fast lane takes 10 to 50000 GPU-hours per application."),
        (1_000, 1, 91, "Fast lane allows windows of at most 90 days."),
    ],
    ids=["below_min", "above_max", "too_long"],
)
def test_a_request_outside_the_bounds_is_rejected_and_changes_nothing(
    draft, decide, window, snapshot, gpu_hours, first, last, message
):
    # given
    application = _made_impossible(draft(), gpu_hours=gpu_hours, **window(first, last))
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [{"code": "out_of_bounds", "message": message}]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("gpu_hours", "first", "last"),
    [(10, 1, 1), (10_000, 1, 90)],
    ids=["smallest", "longest"],
)
def test_a_request_at_the_bounds_is_approved(draft, decide, window, gpu_hours, first, last):
    # when
    decided = decide(draft(gpu_hours=gpu_hours, **window(first, last)))

    # then
    assert decided.status == "approved"
    assert said(decided.reasons) == [AUTO_APPROVED]


def test_a_window_that_started_yesterday_is_rejected_and_changes_nothing(
    draft, decide, window, snapshot
):
    # given
    application = _made_impossible(draft(), **window(-1, 5))
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {"code": "window_in_past", "message": "The window starts in the past."}
    ]
    assert snapshot() == before


def test_a_window_that_starts_today_is_approved(draft, decide, window):
    # when
    decided = decide(draft(**window(0, 9)))

    # then
    assert decided.status == "approved"
    assert Allocation.objects.get(application=decided).status == "active"


# --- invalid changes: supplements and extensions -------------------------------------------------


@pytest.fixture
def allocation(draft, decide, window) -> Allocation:
    """1,000 GPU-hours granted over days 1..10."""
    return Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(1, 10))))


@pytest.mark.parametrize(
    ("kind", "first", "last", "message"),
    [
        ("supplement", 5, 11, "A supplement stays inside the allocation's window."),
        ("supplement", 0, 5, "A supplement stays inside the allocation's window."),
        ("extension", 12, 14, "An extension starts the day after the allocation ends."),
        ("extension", 10, 14, "An extension starts the day after the allocation ends."),
    ],
    ids=["supplement_past_the_end", "supplement_before_start", "extension_gap", "overlap"],
)
def test_a_change_that_does_not_fit_its_allocation_is_rejected_and_changes_nothing(
    draft, decide, window, allocation, snapshot, kind, first, last, message
):
    # given
    application = draft(kind=kind, allocation=allocation, gpu_hours=100, **window(first, last))
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [{"code": "invalid_change", "message": message}]
    assert snapshot() == before


def test_a_supplement_in_another_program_is_an_invalid_change(
    draft, decide, window, allocation, make_program, snapshot
):
    # given
    other = make_program(name="Research", slug="research")
    application = draft(
        kind="supplement", allocation=allocation, program=other, gpu_hours=100, **window(2, 3)
    )
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [WRONG_ALLOCATION]
    assert snapshot() == before


def test_a_supplement_in_another_pool_is_an_invalid_change(
    draft, decide, window, allocation, pool, today, snapshot
):
    # given
    other = PoolFactory(name="narvik-other", site=pool.site)
    CapacityEventFactory(pool=other, effective_from=today, gpus_in_service=10)
    application = draft(
        kind="supplement", allocation=allocation, pool=other, gpu_hours=100, **window(2, 3)
    )
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [WRONG_ALLOCATION]
    assert snapshot() == before


def test_a_supplement_to_an_expired_allocation_is_an_invalid_change(
    draft, decide, window, allocation, snapshot
):
    # given
    application = draft(kind="supplement", allocation=allocation, gpu_hours=100, **window(2, 3))
    Allocation.objects.filter(pk=allocation.pk).update(status="expired")
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {"code": "invalid_change", "message": "The allocation is expired."}
    ]
    assert snapshot() == before


def test_a_supplement_to_a_released_allocation_is_an_invalid_change(
    draft, decide, window, allocation, founder, snapshot
):
    # given
    allocation_services.allocation_release(allocation=allocation, actor=founder)
    application = draft(kind="supplement", allocation=allocation, gpu_hours=100, **window(2, 3))
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {"code": "invalid_change", "message": "The allocation is released."}
    ]
    assert snapshot() == before


# --- 3. AI-use rules -----------------------------------------------------------------------------


def test_a_prohibited_use_is_rejected_and_changes_nothing(draft, decide, snapshot):
    # given
    application = draft(risk_category="prohibited")
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {
            "code": "prohibited_use",
            "message": "The declared use is prohibited under the AI Act (art. 5).",
        }
    ]
    assert snapshot() == before


@pytest.mark.parametrize("risk_category", ["minimal", "limited"])
def test_a_minimal_or_limited_use_is_approved_by_the_worker(draft, decide, risk_category):
    # when
    decided = decide(draft(risk_category=risk_category))

    # then
    assert decided.status == "approved"
    assert said(decided.reasons) == [AUTO_APPROVED]


@pytest.mark.parametrize(
    ("overrides", "reasons"),
    [
        ({"risk_category": "high"}, [NEEDS_REVIEW]),
        ({"data_stays_in_eea": False}, [DATA_OUTSIDE_EEA]),
        ({"gpu_hours": 10_001}, [ABOVE_AUTO_APPROVE]),
        (
            {"risk_category": "high", "data_stays_in_eea": False, "gpu_hours": 12_000},
            [NEEDS_REVIEW, DATA_OUTSIDE_EEA, ABOVE_AUTO_APPROVE],
        ),
    ],
    ids=["high_risk", "data_outside_eea", "above_auto_approve", "all_three"],
)
def test_a_flagged_request_goes_to_review_and_holds_its_capacity_and_quota(
    draft, decide, totals, overrides, reasons
):
    # given
    application = draft(**overrides)

    # when
    decided = decide(application)

    # then
    assert decided.status == "in_review"
    assert said(decided.reasons) == reasons
    assert decided.holds_capacity
    gpu_hours = decided.gpu_hours
    assert totals()["pool"] == (0, gpu_hours)
    assert totals()["program"] == (0, gpu_hours)
    assert totals()["site_wh"] == (Decimal(0), gpu_hours * Decimal("2090"))
    assert totals()["quota"] == gpu_hours
    assert Allocation.objects.count() == 0


def test_a_lineage_reaching_the_systemic_risk_threshold_goes_to_review(
    draft, decide, pool, startup
):
    # given: this request of 1,000 GPU-hours takes the lineage to 2,777,778
    AllocationLineage(
        pool=pool, organization=startup, lineage="fjord-7b", gpu_hours=SYSTEMIC_GPU_HOURS - 1_000
    )

    # when
    decided = decide(draft(model_lineage="fjord-7b", gpu_hours=1_000))

    # then
    assert decided.status == "in_review"
    assert said(decided.reasons) == [
        {
            "code": "systemic_risk",
            "message": "The lineage fjord-7b would reach 1.00E+25 FLOP of training compute, "
            "at or past 1E+25.",
        }
    ]
    assert decided.holds_capacity


def test_a_lineage_just_below_the_threshold_is_approved(draft, decide, pool, startup):
    # given: 2,777,777 GPU-hours with this request: 9.99999972E+24 FLOP
    AllocationLineage(
        pool=pool, organization=startup, lineage="fjord-7b", gpu_hours=SYSTEMIC_GPU_HOURS - 1_001
    )

    # when
    decided = decide(draft(model_lineage="fjord-7b", gpu_hours=1_000))

    # then
    assert decided.status == "approved"
    assert said(decided.reasons) == [AUTO_APPROVED]


def test_the_lineage_sum_counts_other_organizations_and_skips_revoked_allocations(
    draft, decide, pool, rival, startup
):
    # given: another organization trained most of the lineage; a revoked grant does not count
    AllocationLineage(
        pool=pool, organization=rival, lineage="fjord-7b", gpu_hours=SYSTEMIC_GPU_HOURS - 1_000
    )
    revoked = AllocationLineage(
        pool=pool, organization=startup, lineage="other", gpu_hours=SYSTEMIC_GPU_HOURS
    )
    Allocation.objects.filter(pk=revoked.pk).update(status="revoked")

    # when
    shared = decide(draft(model_lineage="fjord-7b", gpu_hours=1_000))
    revoked_only = decide(draft(model_lineage="other", gpu_hours=1_000))

    # then
    assert [r["code"] for r in shared.reasons] == ["systemic_risk"]
    assert said(revoked_only.reasons) == [AUTO_APPROVED]


# --- 4. quota ------------------------------------------------------------------------------------


def test_over_quota_is_rejected_and_changes_nothing(draft, decide, fast_lane, window, snapshot):
    # given: 1,000 of a cap of 1,500 held
    fast_lane.org_cap_gpu_hours = 1_500
    fast_lane.save(update_fields=["org_cap_gpu_hours"])
    decide(draft(gpu_hours=1_000))
    application = draft(gpu_hours=501, **window(20, 29))
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert said(decided.reasons) == [
        {
            "code": "over_quota",
            "message": "The organization holds 1000 GPU-hours in Fast lane; with this request "
            "it would pass its cap of 1500.",
        }
    ]
    assert snapshot() == before
    assert QuotaUsage.objects.get().held_gpu_hours == 1_000


def test_a_request_that_reaches_the_cap_exactly_is_approved(draft, decide, fast_lane, window):
    # given
    fast_lane.org_cap_gpu_hours = 1_500
    fast_lane.save(update_fields=["org_cap_gpu_hours"])
    decide(draft(gpu_hours=1_000))

    # when
    decided = decide(draft(gpu_hours=500, **window(20, 29)))

    # then
    assert decided.status == "approved"
    assert QuotaUsage.objects.get().held_gpu_hours == 1_500


def test_a_hold_in_review_counts_against_the_quota(draft, decide, fast_lane, window, snapshot):
    # given
    fast_lane.org_cap_gpu_hours = 15_000
    fast_lane.save(update_fields=["org_cap_gpu_hours"])
    held = decide(draft(gpu_hours=12_000))
    assert held.status == "in_review"
    application = draft(gpu_hours=3_001, **window(20, 29))
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert [r["code"] for r in decided.reasons] == ["over_quota"]
    assert snapshot() == before


def test_the_quota_is_per_organization(draft, decide, fast_lane, rival, founder, window):
    # given: the startup has filled its cap; the founder also belongs to the rival
    fast_lane.org_cap_gpu_hours = 1_000
    fast_lane.save(update_fields=["org_cap_gpu_hours"])
    decide(draft(gpu_hours=1_000))
    MembershipFactory(user=founder, organization=rival)

    # when
    decided = decide(draft(organization=rival, gpu_hours=1_000, **window(20, 29)))

    # then
    assert decided.status == "approved"


# --- 5. capacity: waitlisted with the first failing day, nothing written -------------------------


def test_a_request_past_the_pool_is_waitlisted_on_the_first_full_day(
    draft, decide, fast_lane, window, today, snapshot
):
    # given: the fast lane may take the whole pool; 2,000 of 2,280 are taken on day 3
    fast_lane.nominal_share = Decimal("1")
    fast_lane.save(update_fields=["nominal_share"])
    decide(draft(gpu_hours=2_000, **window(3, 3)))
    application = draft(gpu_hours=2_500, **window(1, 5))
    before = snapshot()

    # when: 500 a day
    decided = decide(application)

    # then
    day = today + timedelta(days=3)
    assert decided.status == "waitlisted"
    assert said(decided.reasons) == [
        {
            "code": "capacity_pool",
            "message": f"On {day} the pool has 280 GPU-hours free; the request needs 500.",
            "day": day.isoformat(),
        }
    ]
    assert decided.failed_day == day
    assert not decided.holds_capacity
    assert snapshot() == before


def test_a_request_past_the_programs_limit_is_waitlisted_on_the_first_full_day(
    draft, decide, window, today, snapshot
):
    # given: the fast lane may take 1,140 + 456 = 1,596 a day; 1,000 are taken on day 2
    decide(draft(gpu_hours=1_000, **window(2, 2)))
    application = draft(gpu_hours=2_100, **window(1, 3))
    before = snapshot()

    # when: 700 a day
    decided = decide(application)

    # then
    day = today + timedelta(days=2)
    assert decided.status == "waitlisted"
    assert said(decided.reasons) == [
        {
            "code": "capacity_program",
            "message": f"On {day} the program may take 596 more GPU-hours (its share, what "
            "others lend and the common part); the request needs 700.",
            "day": day.isoformat(),
        }
    ]
    assert decided.failed_day == day
    assert snapshot() == before


def test_the_pool_is_checked_before_the_program(draft, decide, window, today):
    # when: 2,300 on one day passes both the pool (2,280) and the program (1,596)
    decided = decide(draft(gpu_hours=2_300, **window(1, 1)))

    # then
    assert [r["code"] for r in decided.reasons] == ["capacity_pool"]
    assert decided.reasons[0]["message"] == (
        f"On {today + timedelta(days=1)} the pool has 2280 GPU-hours free; the request needs 2300."
    )


def test_a_curtailed_day_waitlists_with_capacity_power_on_that_day(
    draft, decide, pool, window, today, snapshot
):
    # given: on day 3 the site is curtailed to 0.01 MW (240 kWh, 114 GPU-hours at 2.09 kWh)
    day = today + timedelta(days=3)
    PowerPhaseFactory(site=pool.site, power_mw=Decimal("-0.99"), online_from=day, online_until=day)
    application = draft(gpu_hours=1_000, **window(1, 5))
    before = snapshot()

    # when: 200 a day, 418 kWh
    decided = decide(application)

    # then
    assert decided.status == "waitlisted"
    assert said(decided.reasons) == [
        {
            "code": "capacity_power",
            "message": f"On {day} the site has 0.240 MWh of its power envelope free; the "
            "request needs 0.418 MWh.",
            "day": day.isoformat(),
        }
    ]
    assert decided.failed_day == day
    assert snapshot() == before


def test_a_site_envelope_too_small_for_the_pool_waitlists_from_the_first_day(
    draft, decide, pool, window, today, snapshot
):
    # given: 0.05 MW for the whole site: 1,200 kWh a day, 574 GPU-hours
    PowerPhase.objects.filter(site=pool.site).update(power_mw=Decimal("0.05"))
    application = draft(gpu_hours=3_000, **window(1, 5))
    before = snapshot()

    # when: 600 a day
    decided = decide(application)

    # then
    day = today + timedelta(days=1)
    assert decided.status == "waitlisted"
    assert said(decided.reasons) == [
        {
            "code": "capacity_power",
            "message": f"On {day} the site has 1.200 MWh of its power envelope free; the "
            "request needs 1.254 MWh.",
            "day": day.isoformat(),
        }
    ]
    assert snapshot() == before


def test_the_power_check_counts_every_pool_of_the_site(
    draft, decide, pool, window, today, snapshot
):
    # given: 0.05 MW for the site; another pool of it has taken 500 GPU-hours (1,045 kWh)
    PowerPhase.objects.filter(site=pool.site).update(power_mw=Decimal("0.05"))
    other = PoolFactory(name="narvik-other", site=pool.site)
    CapacityEventFactory(pool=other, effective_from=today, gpus_in_service=100)
    decide(draft(pool=other, gpu_hours=500, **window(1, 1)))
    application = draft(gpu_hours=100, **window(1, 1))
    before = snapshot()

    # when: 100 more GPU-hours need 209 kWh; 155 are left
    decided = decide(application)

    # then
    day = today + timedelta(days=1)
    assert decided.status == "waitlisted"
    assert said(decided.reasons) == [
        {
            "code": "capacity_power",
            "message": f"On {day} the site has 0.155 MWh of its power envelope free; the "
            "request needs 0.209 MWh.",
            "day": day.isoformat(),
        }
    ]
    assert snapshot() == before


# --- 6. the decision -----------------------------------------------------------------------------


def test_an_eligible_request_at_the_auto_approve_limit_is_approved_and_committed(
    draft, decide, window, totals
):
    # when
    decided = decide(draft(gpu_hours=10_000, **window(1, 10)))

    # then
    assert decided.status == "approved"
    assert said(decided.reasons) == [AUTO_APPROVED]
    assert not decided.holds_capacity
    allocation = Allocation.objects.get(application=decided)
    assert (allocation.granted_gpu_hours, allocation.status) == (10_000, "scheduled")
    assert totals() == {
        "pool": (10_000, 0),
        "program": (10_000, 0),
        "site_wh": (Decimal("20900000.00"), Decimal(0)),
        "quota": 10_000,
    }
    assert (
        list(PoolDay.objects.order_by("day").values_list("committed_gpu_hours", flat=True))
        == [1_000] * 10
    )


# --- the order of the checks: the first failure decides ------------------------------------------


def test_eligibility_is_checked_before_the_bounds_and_the_ai_use(draft, decide, fast_lane, window):
    # given
    fast_lane.is_open = False
    fast_lane.save(update_fields=["is_open"])

    # when
    impossible = _made_impossible(draft(risk_category="prohibited"), gpu_hours=5, **window(-1, 1))
    decided = decide(impossible)

    # then
    assert [r["code"] for r in decided.reasons] == ["program_closed"]


def test_the_bounds_are_checked_before_the_ai_use(draft, decide, window):
    # when
    impossible = _made_impossible(draft(risk_category="prohibited"), gpu_hours=5, **window(-1, 1))
    decided = decide(impossible)

    # then
    assert [r["code"] for r in decided.reasons] == ["out_of_bounds"]


def test_a_prohibited_use_is_rejected_before_the_quota_is_looked_at(draft, decide, fast_lane):
    # given
    fast_lane.org_cap_gpu_hours = 10
    fast_lane.save(update_fields=["org_cap_gpu_hours"])

    # when
    decided = decide(draft(risk_category="prohibited", data_stays_in_eea=False))

    # then
    assert [r["code"] for r in decided.reasons] == ["prohibited_use"]


def test_a_flagged_request_over_quota_is_rejected_not_sent_to_review(
    draft, decide, fast_lane, snapshot
):
    # given
    fast_lane.org_cap_gpu_hours = 500
    fast_lane.save(update_fields=["org_cap_gpu_hours"])
    application = draft(risk_category="high")
    before = snapshot()

    # when
    decided = decide(application)

    # then
    assert decided.status == "rejected"
    assert [r["code"] for r in decided.reasons] == ["over_quota"]
    assert snapshot() == before


def test_quota_is_checked_before_capacity(draft, decide, fast_lane, window):
    # given
    fast_lane.org_cap_gpu_hours = 1_000
    fast_lane.save(update_fields=["org_cap_gpu_hours"])

    # when: 2,300 on one day would not fit the pool either
    decided = decide(draft(gpu_hours=2_300, **window(1, 1)))

    # then
    assert decided.status == "rejected"
    assert [r["code"] for r in decided.reasons] == ["over_quota"]


def test_a_flagged_request_that_does_not_fit_is_waitlisted_with_the_capacity_reason_only(
    draft, decide, window, totals
):
    # when
    decided = decide(draft(gpu_hours=1_600, risk_category="high", **window(1, 1)))

    # then
    assert decided.status == "waitlisted"
    assert [r["code"] for r in decided.reasons] == ["capacity_program"]
    assert not decided.holds_capacity
    assert totals()["pool"] == (0, 0)
    assert totals()["quota"] == 0
