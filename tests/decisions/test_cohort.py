"""The ledger's arithmetic: even spreading, and Kueue's cohort rules in GPU-hours per day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

import pytest

from allocations.shares import ProgramTerms, daily_shares, program_headroom


@pytest.mark.parametrize(
    ("gpu_hours", "days", "expected"),
    [(10, 3, [4, 3, 3]), (9, 3, [3, 3, 3]), (2, 5, [1, 1, 0, 0, 0]), (7, 1, [7])],
)
def test_daily_shares_sum_exactly_with_the_remainder_first(gpu_hours, days, expected):
    # when
    shares = daily_shares(gpu_hours=gpu_hours, start=date(2027, 1, 1), end=date(2027, 1, days))

    # then
    assert shares == expected
    assert sum(shares) == gpu_hours


def _terms(share: str, lending: str, borrowing: str) -> ProgramTerms:
    return ProgramTerms(uuid4(), Decimal(share), Decimal(lending), Decimal(borrowing))


# A pool of 1,000 GPU-hours a day: local 50 % (lends half), commercial 30 % (lends all),
# 20 % common. Local may borrow 20 %, commercial 10 %.
LOCAL = _terms("0.5", "0.5", "0.2")
COMMERCIAL = _terms("0.3", "1.0", "0.1")
EVERYONE = [LOCAL, COMMERCIAL]


def _headroom(terms: ProgramTerms, used: dict) -> int:
    return program_headroom(
        capacity=1000,
        reserved=sum(used.values()),
        terms=terms,
        used_by={program.program_id: hours for program, hours in used.items()},
        everyone=EVERYONE,
    )[1]


def test_an_idle_cohort_lets_a_program_reach_its_share_plus_its_borrowing_limit():
    # then: local 500 + 200 borrowed; commercial 300 + 100, within what local lends
    assert _headroom(LOCAL, {}) == 700
    assert _headroom(COMMERCIAL, {}) == 400


def test_a_program_never_takes_the_part_another_program_does_not_lend():
    # given: commercial would like 400, but local keeps 250 of its 500 unlent
    # and local already uses 100, so 150 of its guarantee stays free
    used = {LOCAL: 100, COMMERCIAL: 0}

    # then: 1,000 - 100 used - 150 protected = 750 > commercial's ceiling of 400
    assert _headroom(COMMERCIAL, used) == 400


def test_borrowing_stops_where_the_pool_minus_protected_parts_ends():
    # given: commercial has borrowed up to its limit (400) and local uses 300
    used = {LOCAL: 300, COMMERCIAL: 400}

    # then: local could reach 700, but the pool has 300 free and nothing of it is protected
    # for commercial (it lends everything), so local gets 300
    assert _headroom(LOCAL, used) == 300


def test_a_program_within_its_share_can_still_be_blocked_by_others_guarantees():
    # given: a third program with a 40 % share it never lends, idle
    keeper = _terms("0.4", "0", "0")
    everyone = [LOCAL, COMMERCIAL, keeper]
    used = {LOCAL: 0, COMMERCIAL: 500, keeper: 0}

    # when
    _, headroom = program_headroom(
        capacity=1000,
        reserved=500,
        terms=LOCAL,
        used_by={p.program_id: h for p, h in used.items()},
        everyone=everyone,
    )

    # then: 1,000 - 500 used - 400 kept for the idle keeper = 100
    assert headroom == 100
