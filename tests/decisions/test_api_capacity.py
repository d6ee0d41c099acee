"""The capacity API: a pool's per-day ledger with free GPU-hours per program and power, and
the days capacity shrank under commitments."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.authz import SYSTEM
from accounts.models import TokenScope
from accounts.services import token_create
from allocations.models import Allocation, CapacityEvent
from allocations.services import inventory
from tests.bodies import NOT_AUTHENTICATED, does_not_exist, invalid

pytestmark = pytest.mark.django_db

URL = "/api/v1/capacity/"


@pytest.fixture
def research(make_program):
    """A second program: 30 % it never lends, priority 10 (listed first)."""
    return make_program(name="Research", slug="research", priority=10, nominal_share=Decimal("0.3"))


def _query(pool, today, first: int, last: int) -> dict:
    return {
        "pool": str(pool.pk),
        "start": str(today + timedelta(days=first)),
        "end": str(today + timedelta(days=last)),
    }


def _part(program, nominal: int, committed: int, held: int, free: int) -> dict:
    return {
        "program": str(program.pk),
        "program_slug": program.slug,
        "nominal_gpu_hours": nominal,
        "committed_gpu_hours": committed,
        "held_gpu_hours": held,
        "free_gpu_hours": free,
    }


def test_a_user_reads_the_ledger_with_each_programs_part(
    draft, decide, window, client_for, outsider, pool, today, fast_lane, research
):
    # given: 100 a day committed on days 1..10 and 100 a day held on days 2..11
    decide(draft(gpu_hours=1_000, **window(1, 10)))
    decide(draft(gpu_hours=1_000, risk_category="high", **window(2, 11)))

    # when: anyone signed in may read it
    response = client_for(outsider).get(URL, _query(pool, today, 0, 2))

    # then
    assert response.status_code == 200
    day = [str(today + timedelta(days=offset)) for offset in range(3)]
    assert response.json() == [
        {
            # no ledger rows yet: the inventory's numbers
            "day": day[0],
            "gpus_in_service": 100,
            "capacity_gpu_hours": 2_280,
            "committed_gpu_hours": 0,
            "held_gpu_hours": 0,
            "free_gpu_hours": 2_280,
            "power_envelope_mw": "1.000",
            "committed_mw": "0.000",
            "held_mw": "0.000",
            "overcommitted": False,
            "programs": [
                # 684 kept for research, the fast lane 1,140 + 456 borrowed
                _part(research, 684, 0, 0, 684),
                _part(fast_lane, 1_140, 0, 0, 1_596),
            ],
        },
        {
            "day": day[1],
            "gpus_in_service": 100,
            "capacity_gpu_hours": 2_280,
            "committed_gpu_hours": 100,
            "held_gpu_hours": 0,
            "free_gpu_hours": 2_180,
            "power_envelope_mw": "1.000",
            # 100 GPU-hours × 2.09 kWh over 24 h
            "committed_mw": "0.009",
            "held_mw": "0.000",
            "overcommitted": False,
            "programs": [
                _part(research, 684, 0, 0, 684),
                _part(fast_lane, 1_140, 100, 0, 1_496),
            ],
        },
        {
            "day": day[2],
            "gpus_in_service": 100,
            "capacity_gpu_hours": 2_280,
            "committed_gpu_hours": 100,
            "held_gpu_hours": 100,
            "free_gpu_hours": 2_080,
            "power_envelope_mw": "1.000",
            # committed and held apart: 100 GPU-hours of each
            "committed_mw": "0.009",
            "held_mw": "0.009",
            "overcommitted": False,
            "programs": [
                _part(research, 684, 0, 0, 684),
                _part(fast_lane, 1_140, 100, 100, 1_396),
            ],
        },
    ]


def test_capacity_shrunk_under_commitments_shows_overcommitted_and_cancels_nothing(
    draft, decide, window, client_for, founder, pool, today, fast_lane
):
    # given: 1,000 on day 1; then a failed rack leaves 10 GPUs from day 1
    decided = decide(draft(gpu_hours=1_000, **window(1, 1)))
    inventory.inventory_create(
        model=CapacityEvent,
        values={"pool": pool, "effective_from": today + timedelta(days=1), "gpus_in_service": 10},
        actor=SYSTEM,
    )

    # when
    response = client_for(founder).get(URL, _query(pool, today, 0, 1))

    # then
    assert response.status_code == 200
    today_, day_1 = response.json()
    assert today_["overcommitted"] is False
    assert day_1 == {
        "day": str(today + timedelta(days=1)),
        "gpus_in_service": 10,
        "capacity_gpu_hours": 228,
        "committed_gpu_hours": 1_000,
        "held_gpu_hours": 0,
        "free_gpu_hours": 0,
        "power_envelope_mw": "1.000",
        "committed_mw": "0.087",
        "held_mw": "0.000",
        "overcommitted": True,
        "programs": [_part(fast_lane, 114, 1_000, 0, 0)],
    }
    allocation = Allocation.objects.get(application=decided)
    assert (allocation.status, allocation.granted_gpu_hours, allocation.at_risk) == (
        "scheduled",
        1_000,
        True,
    )


def test_a_curtailment_under_commitments_shows_overcommitted(
    draft, decide, window, client_for, founder, pool, today
):
    # given: 1,000 GPU-hours (2.09 MWh) on day 1, then the site curtailed to 0.01 MW
    from allocations.models import PowerPhase

    decide(draft(gpu_hours=1_000, **window(1, 1)))
    inventory.inventory_create(
        model=PowerPhase,
        values={
            "site": pool.site,
            "name": "curtailment",
            "power_mw": Decimal("-0.99"),
            "online_from": today + timedelta(days=1),
            "online_until": today + timedelta(days=1),
        },
        actor=SYSTEM,
    )

    # when
    response = client_for(founder).get(URL, _query(pool, today, 1, 1))

    # then
    [day] = response.json()
    assert (day["power_envelope_mw"], day["committed_mw"], day["overcommitted"]) == (
        "0.010",
        "0.087",
        True,
    )
    assert day["free_gpu_hours"] == 1_280


def test_reading_capacity_needs_a_signed_in_user(api, pool, today):
    # when
    response = api.get(URL, _query(pool, today, 0, 1))

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_a_scheduler_token_may_not_read_capacity(api, pool, today, scheduler_account):
    # given
    issued = token_create(user=scheduler_account, name="slurm", scope=TokenScope.USAGE_WRITE)

    # when
    response = api.get(URL, _query(pool, today, 0, 1), HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "token_scope",
        "message": "This token's scope does not allow this request.",
    }


def test_an_end_before_the_start_is_a_field_error(client_for, founder, pool, today):
    # when
    response = client_for(founder).get(URL, _query(pool, today, 5, 1))

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"end": [("before_start", "The end comes on or after the start.")]}
    )


def test_an_unknown_or_missing_pool_is_a_field_error(client_for, founder, pool, today):
    # given
    unknown = uuid4()

    # when
    missing = client_for(founder).get(URL, {"start": str(today)})
    wrong = client_for(founder).get(URL, {**_query(pool, today, 0, 1), "pool": str(unknown)})

    # then
    assert (missing.status_code, wrong.status_code) == (400, 400)
    assert missing.json() == invalid({"pool": [("required", "This field is required.")]})
    assert wrong.json() == invalid({"pool": [does_not_exist(unknown)]})


def test_more_than_two_years_at_a_time_is_a_field_error(client_for, founder, pool, today):
    # when
    response = client_for(founder).get(URL, _query(pool, today, 0, 731))

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"end": [("window_too_long", "Ask for at most 731 days at a time.")]}
    )


def test_without_dates_the_ledger_shows_thirty_one_days_from_today(
    client_for, founder, pool, today
):
    # when
    response = client_for(founder).get(URL, {"pool": str(pool.pk)})

    # then
    days = [day["day"] for day in response.json()]
    assert days == [str(today + timedelta(days=offset)) for offset in range(31)]


@pytest.mark.parametrize("days", [1, 5])
def test_the_ledger_costs_the_same_queries_for_one_or_five_days(
    draft,
    decide,
    window,
    client_for,
    founder,
    pool,
    today,
    research,
    django_assert_num_queries,
    days,
):
    # given: ledger rows for every day asked
    decide(draft(gpu_hours=1_000, **window(0, 9)))
    client = client_for(founder)

    # when / then: the pool (with its site), programs, pool-days, site-days, program-days,
    # the pool's accelerator, capacity events, power phases
    with django_assert_num_queries(7):
        response = client.get(URL, _query(pool, today, 0, days - 1))
    assert len(response.json()) == days
