"""The ledger's arithmetic: even spreading, the cohort rules of several programs (nominal
share, borrowing, lending, the common part), the power envelope, and the rewrites when
capacity or power changes under commitments."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.authz import SYSTEM
from allocations.models import (
    Allocation,
    CapacityEvent,
    PoolDay,
    PowerPhase,
    Program,
    ProgramDay,
    SiteDay,
)
from allocations.services import inventory, ledger
from allocations.shares import ProgramTerms, daily_shares, program_headroom
from tests.decisions.support import queued_tasks

# --- daily shares --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu_hours", "days", "expected"),
    [
        (1_000, 10, [100] * 10),
        (1_000, 7, [143, 143, 143, 143, 143, 143, 142]),
        (1_001, 3, [334, 334, 333]),
        (1_002, 3, [334, 334, 334]),
        (3, 5, [1, 1, 1, 0, 0]),
        (1, 1, [1]),
    ],
)
def test_daily_shares_sum_exactly_with_the_remainder_on_the_first_days(gpu_hours, days, expected):
    # when
    shares = daily_shares(
        gpu_hours=gpu_hours, start=date(2027, 1, 1), end=date(2027, 1, 1) + timedelta(days - 1)
    )

    # then
    assert shares == expected
    assert sum(shares) == gpu_hours


def test_daily_shares_are_never_more_than_one_apart_and_never_grow():
    for gpu_hours in range(1, 400, 7):
        for days in range(1, 40, 3):
            # when
            shares = daily_shares(
                gpu_hours=gpu_hours,
                start=date(2027, 3, 1),
                end=date(2027, 3, 1) + timedelta(days - 1),
            )

            # then
            assert len(shares) == days
            assert sum(shares) == gpu_hours
            assert max(shares) - min(shares) <= 1
            assert shares == sorted(shares, reverse=True)


# --- the cohort, as arithmetic -------------------------------------------------------------------


def _terms(share: str, lending: str, borrowing: str) -> ProgramTerms:
    return ProgramTerms(uuid4(), Decimal(share), Decimal(lending), Decimal(borrowing))


def test_program_terms_round_every_part_down():
    # given
    terms = _terms("0.5", "0.5", "0.2")

    # then: 2,281 × 0.5 = 1,140.5; half of 1,140 lent; 2,281 × 0.2 = 456.2
    assert (terms.nominal(2_281), terms.guaranteed(2_281), terms.borrowing(2_281)) == (
        1_140,
        570,
        456,
    )


def _headroom(terms, everyone, used, capacity=2_280):
    return program_headroom(
        capacity=capacity,
        reserved=sum(used.values()),
        terms=terms,
        used_by={program.program_id: hours for program, hours in used.items()},
        everyone=everyone,
    )


def test_alone_a_program_reaches_its_share_plus_its_borrowing_limit():
    # given
    fast = _terms("0.5", "0.5", "0.2")

    # then: 1,140 + 456; the pool would have 2,280
    assert _headroom(fast, [fast], {}) == (2_280, 1_596)
    assert _headroom(fast, [fast], {fast: 1_000}) == (1_280, 596)
    assert _headroom(fast, [fast], {fast: 1_596}) == (684, 0)


def test_another_programs_unlent_part_is_kept_for_it_while_it_is_idle():
    # given: the keeper lends none of its 912
    fast, keeper = _terms("0.5", "0.5", "0.2"), _terms("0.4", "0", "0")

    # then: 2,280 - 912 kept = 1,368, below the fast lane's 1,596
    assert _headroom(fast, [fast, keeper], {}) == (2_280, 1_368)
    # and the keeper's unused part stays kept as the keeper uses some of it
    assert _headroom(fast, [fast, keeper], {keeper: 500}) == (1_780, 1_368)


def test_the_lent_part_of_another_share_may_be_borrowed_up_to_the_borrowing_limit():
    # given: the lender lends all of its 912
    fast, lender = _terms("0.5", "0.5", "0.2"), _terms("0.4", "1", "0")

    # then: nothing is kept for the lender, so the fast lane reaches its own limit
    assert _headroom(fast, [fast, lender], {}) == (2_280, 1_596)


def test_when_no_one_lends_a_program_borrows_only_the_common_part():
    # given: shares of 0.5 and 0.3 leave 0.2 (456) common; the fast lane could borrow 0.3
    fast, keeper = _terms("0.5", "0.5", "0.3"), _terms("0.3", "0", "0")

    # then: 1,140 + the 456 common, not 1,140 + 684
    assert _headroom(fast, [fast, keeper], {}) == (2_280, 1_596)


def test_a_program_below_its_share_gets_its_guaranteed_part_even_after_others_borrowed():
    # given: the lender keeps half of its 1,140; the borrower took all it may (684 + 228)
    lender, borrower = _terms("0.5", "0.5", "0"), _terms("0.3", "1", "0.1")

    # then: 2,280 - 912 = 1,368 free, all of it below the lender's ceiling of 1,140
    assert _headroom(lender, [lender, borrower], {borrower: 912}) == (1_368, 1_140)
    assert _headroom(borrower, [lender, borrower], {borrower: 912}) == (1_368, 0)


def test_headroom_is_never_negative_when_capacity_shrank_under_commitments():
    # given
    fast = _terms("0.5", "0.5", "0.2")

    # then
    assert _headroom(fast, [fast], {fast: 1_500}, capacity=228) == (-1_272, 0)


# --- capacity_check, on rows in memory -----------------------------------------------------------


def _days(capacities, reserved, envelope_wh, first=date(2027, 1, 1)):
    pool_days = [
        PoolDay(day=first + timedelta(index), capacity_gpu_hours=capacity, committed_gpu_hours=used)
        for index, (capacity, used) in enumerate(zip(capacities, reserved, strict=True))
    ]
    site_days = [
        SiteDay(day=first + timedelta(index), envelope_wh=wh)
        for index, wh in enumerate(envelope_wh)
    ]
    return pool_days, site_days


def test_capacity_check_names_the_first_day_and_the_first_constraint_that_fails():
    # given: day 2's pool is full; day 3 has no power
    program = Program(
        pk=uuid4(),
        nominal_share=Decimal("1"),
        lending_limit=Decimal("0"),
        borrowing_limit=Decimal("0"),
    )
    pool_days, site_days = _days([1_000] * 3, [0, 950, 0], [10**9, 10**9, 1])

    # when
    shortfall = ledger.capacity_check(
        program=program,
        shares=[100, 100, 100],
        pool_days=pool_days,
        program_rows={},
        site_days=site_days,
        energy_per_gpu_hour=Decimal("2090"),
        everyone=[ProgramTerms.of(program)],
    )

    # then
    assert shortfall is not None
    assert (shortfall.code, shortfall.day) == ("capacity_pool", date(2027, 1, 2))


def test_capacity_check_passes_when_every_day_fits_exactly():
    # given: 100 GPU-hours a day at 2,090 Wh each is exactly the envelope
    program = Program(
        pk=uuid4(),
        nominal_share=Decimal("0.1"),
        lending_limit=Decimal("0"),
        borrowing_limit=Decimal("0"),
    )
    pool_days, site_days = _days([1_000] * 2, [900, 900], [209_000, 209_000])

    # when
    shortfall = ledger.capacity_check(
        program=program,
        shares=[100, 100],
        pool_days=pool_days,
        program_rows={},
        site_days=site_days,
        energy_per_gpu_hour=Decimal("2090"),
        everyone=[ProgramTerms.of(program)],
    )

    # then
    assert shortfall is None


# --- the cohort, through decisions on the fixture's pool -----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("gpu_hours", "status"),
    [(1_140, "approved"), (1_596, "approved"), (1_597, "waitlisted")],
    ids=["nominal", "borrowing_limit", "past_the_limit"],
)
def test_the_fast_lane_alone_takes_its_share_and_borrows_up_to_its_limit(
    draft, decide, window, gpu_hours, status
):
    # when
    decided = decide(draft(gpu_hours=gpu_hours, **window(1, 1)))

    # then
    assert decided.status == status
    if status == "waitlisted":
        assert [r["code"] for r in decided.reasons] == ["capacity_program"]


@pytest.mark.django_db
@pytest.mark.parametrize(("gpu_hours", "status"), [(1_368, "approved"), (1_369, "waitlisted")])
def test_an_idle_programs_unlent_share_blocks_the_fast_lane(
    draft, decide, window, make_program, gpu_hours, status
):
    # given: a program that keeps its 912 GPU-hours a day (40 %, lends nothing)
    make_program(name="Keeper", slug="keeper", nominal_share=Decimal("0.4"))

    # when
    decided = decide(draft(gpu_hours=gpu_hours, **window(1, 1)))

    # then
    assert decided.status == status


@pytest.mark.django_db
def test_the_fast_lane_borrows_what_another_program_lends(
    draft, decide, window, make_program, today
):
    # given: a program that lends all of its 40 %
    make_program(
        name="Lender", slug="lender", nominal_share=Decimal("0.4"), lending_limit=Decimal("1")
    )

    # when
    decided = decide(draft(gpu_hours=1_596, **window(1, 1)))

    # then
    assert decided.status == "approved"
    row = ProgramDay.objects.get(day=today + timedelta(days=1))
    assert row.committed_gpu_hours == 1_596


@pytest.mark.django_db
def test_a_program_keeps_its_guaranteed_part_after_the_fast_lane_borrowed(
    draft, decide, window, make_program, founder
):
    # given: the lender keeps half of its 40 % (456); the fast lane took its 1,596
    lender = make_program(
        name="Lender", slug="lender", nominal_share=Decimal("0.4"), lending_limit=Decimal("0.5")
    )
    # 2,280 - 456 kept = 1,824: more than the fast lane may take, so it takes 1,596
    assert decide(draft(gpu_hours=1_596, **window(1, 1))).status == "approved"

    # when: the lender asks for its guaranteed part, then one more GPU-hour
    kept = decide(draft(program=lender, gpu_hours=456, **window(1, 1)))
    more = decide(draft(program=lender, gpu_hours=229, **window(1, 1)))

    # then: 2,280 - 1,596 - 456 = 228 are left
    assert kept.status == "approved"
    assert more.status == "waitlisted"
    assert more.reasons[0]["message"].startswith(f"On {kept.start_date} the pool has 228 ")


@pytest.mark.django_db
def test_with_no_lenders_the_fast_lane_borrows_only_the_common_part(
    draft, decide, fast_lane, window, make_program
):
    # given: the fast lane may borrow 30 %, but a keeper's 30 % leaves only 20 % common
    fast_lane.borrowing_limit = Decimal("0.3")
    fast_lane.save(update_fields=["borrowing_limit"])
    make_program(name="Keeper", slug="keeper", nominal_share=Decimal("0.3"))

    # when
    fits = decide(draft(gpu_hours=1_596, **window(1, 1)))
    over = decide(draft(gpu_hours=10, **window(1, 1)))

    # then
    assert fits.status == "approved"
    assert over.status == "waitlisted"
    assert [r["code"] for r in over.reasons] == ["capacity_program"]


@pytest.mark.django_db
def test_each_program_has_its_own_ledger_rows(draft, decide, window, make_program, today):
    # given
    research = make_program(name="Research", slug="research", nominal_share=Decimal("0.3"))

    # when
    decide(draft(gpu_hours=500, **window(1, 1)))
    decide(draft(program=research, gpu_hours=300, **window(1, 1)))

    # then
    day = today + timedelta(days=1)
    assert PoolDay.objects.get(day=day).committed_gpu_hours == 800
    assert dict(
        ProgramDay.objects.filter(day=day).values_list("program__slug", "committed_gpu_hours")
    ) == {"fast-lane": 500, "research": 300}


# --- capacity and power changes rewrite the ledger -----------------------------------------------


@pytest.mark.django_db
def test_a_capacity_event_rewrites_the_days_it_touches_and_flags_what_no_longer_fits(
    draft, decide, pool, window, today, snapshot, django_capture_on_commit_callbacks
):
    # given: 1,000 on day 2 and 500 on days 5..6
    on_day_2 = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(2, 2))))
    later = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(5, 6))))
    before = snapshot()

    # when: a failed rack on days 1..3: 10 GPUs, 228 GPU-hours a day
    with django_capture_on_commit_callbacks() as callbacks:
        for offset, gpus in ((1, 10), (4, 100)):
            inventory.inventory_create(
                model=CapacityEvent,
                values={
                    "pool": pool,
                    "effective_from": today + timedelta(days=offset),
                    "gpus_in_service": gpus,
                },
                actor=SYSTEM,
            )

    # then
    capacities = dict(PoolDay.objects.values_list("day", "capacity_gpu_hours"))
    assert capacities[today + timedelta(days=2)] == 228
    assert capacities[today + timedelta(days=5)] == 2_280
    on_day_2.refresh_from_db()
    later.refresh_from_db()
    assert (on_day_2.status, on_day_2.at_risk) == ("scheduled", True)
    assert (later.status, later.at_risk) == ("scheduled", False)
    # nothing is cancelled: every commitment and grant stands
    after = snapshot()
    assert after["pool_days"] == before["pool_days"]
    assert after["quota"] == before["quota"]
    assert [row[2] for row in after["allocations"]] == [row[2] for row in before["allocations"]]
    # the second event gave capacity back (days 4.. went up again): the waitlist is queued
    assert queued_tasks(callbacks) == [("recheck_waitlist", (str(pool.pk),))]


@pytest.mark.django_db
def test_capacity_coming_back_clears_the_at_risk_flag(draft, decide, pool, window, today):
    # given
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(1, 1))))
    event = inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today, "gpus_in_service": 10},
        actor=SYSTEM,
    )
    allocation.refresh_from_db()
    assert allocation.at_risk

    # when
    inventory.inventory_update(instance=event, values={"gpus_in_service": 100}, actor=SYSTEM)

    # then
    allocation.refresh_from_db()
    assert not allocation.at_risk
    assert PoolDay.objects.get(day=today + timedelta(days=1)).capacity_gpu_hours == 2_280


@pytest.mark.django_db
def test_a_rewrite_leaves_past_days_alone(draft, decide, pool, window, today):
    # given: a ledger row for yesterday, as an allocation that started then would have made
    decide(draft(gpu_hours=1_000, **window(0, 1)))
    PoolDay.objects.create(pool=pool, day=today - timedelta(days=1), capacity_gpu_hours=2_280)

    # when
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today - timedelta(days=3), "gpus_in_service": 50},
        actor=SYSTEM,
    )

    # then
    capacities = dict(PoolDay.objects.values_list("day", "capacity_gpu_hours"))
    assert capacities == {
        today - timedelta(days=1): 2_280,
        today: 1_140,
        today + timedelta(days=1): 1_140,
    }


@pytest.mark.django_db
def test_a_curtailment_rewrites_the_envelope_and_flags_the_allocations_on_those_days(
    draft, decide, pool, window, today, django_capture_on_commit_callbacks
):
    # given: 1,000 GPU-hours on day 2 need 2,090 kWh; a 0.01 MW site day has 240
    decided = decide(draft(gpu_hours=1_000, **window(2, 2)))
    allocation = Allocation.objects.get(application=decided)
    day = today + timedelta(days=2)

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        phase = inventory.inventory_create(
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

    # then
    assert SiteDay.objects.get(day=day).envelope_wh == 240_000
    allocation.refresh_from_db()
    assert (allocation.status, allocation.at_risk) == ("scheduled", True)
    assert ledger.overcommitted_days(pool_ids=[pool.pk]) == {pool.pk: [day]}
    assert callbacks == []

    # when: the curtailment is called off
    with django_capture_on_commit_callbacks() as callbacks:
        inventory.inventory_delete(instance=phase, actor=SYSTEM)

    # then: the envelope is back, the flag cleared, the site's waitlists queued
    assert SiteDay.objects.get(day=day).envelope_wh == 24_000_000
    allocation.refresh_from_db()
    assert not allocation.at_risk
    assert queued_tasks(callbacks) == [("recheck_waitlist", (str(pool.pk),))]


@pytest.mark.django_db
def test_only_live_allocations_are_flagged(draft, decide, pool, window, today):
    # given: two allocations on the same day; one has expired (as an operator set it)
    live = Allocation.objects.get(application=decide(draft(gpu_hours=500, **window(1, 1))))
    ended = Allocation.objects.get(application=decide(draft(gpu_hours=500, **window(1, 1))))
    Allocation.objects.filter(pk=ended.pk).update(status="revoked")
    PoolDay.objects.filter(day=today + timedelta(days=1)).update(capacity_gpu_hours=100)

    # when
    flagged = ledger.flag_allocations_at_risk(pool_ids=[pool.pk])

    # then
    assert flagged == 1
    assert set(Allocation.objects.filter(at_risk=True).values_list("pk", flat=True)) == {live.pk}
