"""The inventory's arithmetic, day by day, against a Narvik-like site: the power envelope of
its phases, GPUs in service from capacity events, deliverable GPU-hours and megawatts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from allocations import selectors
from allocations.models import GpuPool
from allocations.selectors import PoolCapacityDay, SitePowerDay
from tests.allocations.conftest import Narvik
from tests.factories import (
    CapacityEventFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

FULL_DAY = 2_280_000  # 100,000 GPUs × 24 h × 0.95
FULL_LOAD_MW = Decimal("209")  # 100,000 GPUs × 1,900 W × PUE 1.10


def _envelopes(narvik: Narvik, start: date, end: date) -> list[tuple[date, Decimal]]:
    days = selectors.site_power_days(site=narvik.site, start=start, end=end)
    return [(row.day, row.power_envelope_mw) for row in days]


def _gpus(pool: GpuPool, start: date, end: date) -> list[tuple[date, int]]:
    days = selectors.pool_capacity_days(pool=pool, start=start, end=end)
    return [(row.day, row.gpus_in_service) for row in days]


# --- power envelope -----------------------------------------------------------------------


def test_the_envelope_is_230_mw_on_every_day_of_december_2026(narvik):
    # when
    days = selectors.site_power_days(
        site=narvik.site, start=date(2026, 12, 1), end=date(2026, 12, 31)
    )

    # then
    assert days == [
        SitePowerDay(day=date(2026, 12, 1) + timedelta(days=offset), power_envelope_mw=Decimal(230))
        for offset in range(31)
    ]


def test_the_envelope_is_520_mw_on_every_day_of_august_2027(narvik):
    # when
    days = selectors.site_power_days(
        site=narvik.site, start=date(2027, 8, 1), end=date(2027, 8, 31)
    )

    # then
    assert len(days) == 31
    assert {row.power_envelope_mw for row in days} == {Decimal(520)}
    assert [row.day for row in days] == list(
        selectors.days_between(date(2027, 8, 1), date(2027, 8, 31))
    )


def test_a_phase_starting_mid_window_counts_from_its_first_day(narvik):
    # when
    envelopes = _envelopes(narvik, date(2027, 6, 29), date(2027, 7, 2))

    # then
    assert envelopes == [
        (date(2027, 6, 29), Decimal(230)),
        (date(2027, 6, 30), Decimal(230)),
        (date(2027, 7, 1), Decimal(520)),
        (date(2027, 7, 2), Decimal(520)),
    ]


def test_before_its_first_phase_a_site_has_no_power(narvik):
    # when
    envelopes = _envelopes(narvik, date(2025, 12, 31), date(2026, 1, 1))

    # then
    assert envelopes == [(date(2025, 12, 31), Decimal(0)), (date(2026, 1, 1), Decimal(230))]


def test_a_curtailment_lowers_the_envelope_only_on_its_days_last_day_included(narvik):
    # given: 40 MW less from the 10th to the 12th of December, both included
    PowerPhaseFactory(
        site=narvik.site,
        name="Grid curtailment",
        power_mw=Decimal("-40"),
        online_from=date(2026, 12, 10),
        online_until=date(2026, 12, 12),
    )

    # when
    envelopes = _envelopes(narvik, date(2026, 12, 9), date(2026, 12, 13))

    # then
    assert envelopes == [
        (date(2026, 12, 9), Decimal(230)),
        (date(2026, 12, 10), Decimal(190)),
        (date(2026, 12, 11), Decimal(190)),
        (date(2026, 12, 12), Decimal(190)),
        (date(2026, 12, 13), Decimal(230)),
    ]


def test_a_curtailment_covering_the_whole_window_lowers_every_day(narvik):
    # given
    PowerPhaseFactory(
        site=narvik.site,
        power_mw=Decimal("-40"),
        online_from=date(2026, 12, 1),
        online_until=date(2026, 12, 31),
    )

    # when
    envelopes = _envelopes(narvik, date(2026, 12, 10), date(2026, 12, 12))

    # then
    assert [power for _, power in envelopes] == [Decimal(190)] * 3


def test_a_phase_ending_mid_window_stops_counting_after_its_last_day(narvik):
    # given: a temporary generator, online on the 5th and 6th only
    PowerPhaseFactory(
        site=narvik.site,
        power_mw=Decimal("12.5"),
        online_from=date(2026, 12, 5),
        online_until=date(2026, 12, 6),
    )

    # when
    envelopes = _envelopes(narvik, date(2026, 12, 4), date(2026, 12, 7))

    # then
    assert [power for _, power in envelopes] == [
        Decimal(230),
        Decimal("242.5"),
        Decimal("242.5"),
        Decimal(230),
    ]


def test_a_phase_ending_on_the_windows_last_day_counts_on_it(narvik):
    # given
    PowerPhaseFactory(
        site=narvik.site,
        power_mw=Decimal("-30"),
        online_from=date(2026, 12, 1),
        online_until=date(2026, 12, 3),
    )

    # when
    envelopes = _envelopes(narvik, date(2026, 12, 2), date(2026, 12, 3))

    # then
    assert [power for _, power in envelopes] == [Decimal(200), Decimal(200)]


def test_phases_wholly_outside_the_window_do_not_count(narvik):
    # given: one that ended before the window, one that starts after it
    PowerPhaseFactory(
        site=narvik.site,
        power_mw=Decimal("-100"),
        online_from=date(2026, 11, 1),
        online_until=date(2026, 11, 30),
    )
    PowerPhaseFactory(site=narvik.site, power_mw=Decimal("50"), online_from=date(2027, 1, 1))

    # when
    envelopes = _envelopes(narvik, date(2026, 12, 1), date(2026, 12, 31))

    # then
    assert {power for _, power in envelopes} == {Decimal(230)}


def test_a_window_of_one_day_has_one_row(narvik):
    # when
    days = selectors.site_power_days(site=narvik.site, start=date(2027, 7, 1), end=date(2027, 7, 1))

    # then
    assert days == [SitePowerDay(day=date(2027, 7, 1), power_envelope_mw=Decimal(520))]


def test_another_sites_phases_do_not_count(narvik):
    # given
    PowerPhaseFactory(site=SiteFactory(name="Mo i Rana"), power_mw=Decimal("100"))

    # when
    envelopes = _envelopes(narvik, date(2026, 12, 1), date(2026, 12, 1))

    # then
    assert envelopes == [(date(2026, 12, 1), Decimal(230))]


def test_the_envelope_costs_one_query_for_any_number_of_days(narvik, django_assert_num_queries):
    # when
    with django_assert_num_queries(1):
        days = selectors.site_power_days(
            site=narvik.site, start=date(2026, 1, 1), end=date(2035, 12, 31)
        )

    # then
    assert len(days) == (date(2035, 12, 31) - date(2026, 1, 1)).days + 1


# --- power and energy of GPUs -------------------------------------------------------------


def test_100000_gb300_at_pue_1_10_draw_209_mw(narvik):
    # when
    megawatts = selectors.facility_mw_for_gpus(
        gpus=100_000, accelerator=narvik.gb300, pue=narvik.site.pue
    )

    # then
    assert megawatts == FULL_LOAD_MW
    assert megawatts < Decimal(230)  # inside the first phase alone


def test_no_gpus_draw_nothing(narvik):
    # then
    assert (
        selectors.facility_mw_for_gpus(gpus=0, accelerator=narvik.gb300, pue=Decimal("1.10")) == 0
    )


def test_a_gb300_gpu_hour_costs_2_09_kwh_at_the_facility(narvik):
    # when
    kwh = selectors.energy_kwh_per_gpu_hour(accelerator=narvik.gb300, pue=narvik.site.pue)

    # then
    assert kwh == Decimal("2.09")


# --- deliverable GPU-hours ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpus", "availability", "gpu_hours"),
    [
        (100_000, Decimal("0.950"), 2_280_000),
        (100_000, Decimal("1.000"), 2_400_000),
        (7, Decimal("0.333"), 55),  # 55.944, rounded down: never promise a fraction
        (1, Decimal("0.001"), 0),  # 0.024
        (0, Decimal("0.950"), 0),
    ],
)
def test_deliverable_gpu_hours_are_gpus_times_24_times_availability_rounded_down(
    gpus, availability, gpu_hours
):
    # then
    assert (
        selectors.deliverable_gpu_hours(gpus_in_service=gpus, availability=availability)
        == gpu_hours
    )


def test_a_full_narvik_day_is_2280000_gpu_hours_at_209_mw(narvik):
    # when
    days = selectors.pool_capacity_days(
        pool=narvik.pool, start=date(2026, 12, 1), end=date(2026, 12, 1)
    )

    # then
    assert days == [
        PoolCapacityDay(
            day=date(2026, 12, 1),
            gpus_in_service=100_000,
            capacity_gpu_hours=FULL_DAY,
            full_load_mw=FULL_LOAD_MW,
        )
    ]


# --- capacity events ----------------------------------------------------------------------


def test_a_maintenance_window_of_two_events_shows_on_its_days_only(narvik):
    # given: 10,000 GPUs out from the 10th; back on the 13th
    CapacityEventFactory(
        pool=narvik.pool, effective_from=date(2026, 12, 10), gpus_in_service=90_000
    )
    CapacityEventFactory(
        pool=narvik.pool, effective_from=date(2026, 12, 13), gpus_in_service=100_000
    )

    # when
    days = selectors.pool_capacity_days(
        pool=narvik.pool, start=date(2026, 12, 9), end=date(2026, 12, 14)
    )

    # then
    full = (100_000, FULL_DAY, FULL_LOAD_MW)
    reduced = (90_000, 2_052_000, Decimal("188.1"))  # 90,000 × 24 × 0.95; 90,000 × 2.09 kW
    assert [
        (row.day, row.gpus_in_service, row.capacity_gpu_hours, row.full_load_mw) for row in days
    ] == [
        (date(2026, 12, 9), *full),
        (date(2026, 12, 10), *reduced),
        (date(2026, 12, 11), *reduced),
        (date(2026, 12, 12), *reduced),
        (date(2026, 12, 13), *full),
        (date(2026, 12, 14), *full),
    ]


def test_before_its_first_event_a_pool_has_no_gpus(narvik):
    # when
    days = selectors.pool_capacity_days(
        pool=narvik.pool, start=date(2025, 12, 30), end=date(2026, 1, 2)
    )

    # then
    assert [(row.gpus_in_service, row.capacity_gpu_hours, row.full_load_mw) for row in days] == [
        (0, 0, Decimal(0)),
        (0, 0, Decimal(0)),
        (100_000, FULL_DAY, FULL_LOAD_MW),
        (100_000, FULL_DAY, FULL_LOAD_MW),
    ]


def test_a_pool_without_events_has_no_gpus_on_any_day(narvik):
    # given
    empty = PoolFactory(site=narvik.site, accelerator=narvik.gb300)

    # when
    gpus = _gpus(empty, date(2026, 12, 1), date(2026, 12, 3))

    # then
    assert gpus == [(date(2026, 12, d), 0) for d in (1, 2, 3)]


def test_an_event_before_the_window_carries_into_it_and_one_after_it_does_not(narvik):
    # given
    CapacityEventFactory(pool=narvik.pool, effective_from=date(2026, 6, 1), gpus_in_service=50_000)
    CapacityEventFactory(pool=narvik.pool, effective_from=date(2027, 1, 1), gpus_in_service=1)

    # when
    gpus = _gpus(narvik.pool, date(2026, 12, 30), date(2026, 12, 31))

    # then
    assert gpus == [(date(2026, 12, 30), 50_000), (date(2026, 12, 31), 50_000)]


def test_an_event_on_the_windows_first_day_and_one_on_its_last_day_both_count(narvik):
    # given
    CapacityEventFactory(pool=narvik.pool, effective_from=date(2026, 12, 1), gpus_in_service=10)
    CapacityEventFactory(pool=narvik.pool, effective_from=date(2026, 12, 3), gpus_in_service=30)

    # when
    gpus = _gpus(narvik.pool, date(2026, 12, 1), date(2026, 12, 3))

    # then
    assert gpus == [(date(2026, 12, 1), 10), (date(2026, 12, 2), 10), (date(2026, 12, 3), 30)]


def test_another_pools_events_do_not_count(narvik):
    # given
    other = PoolFactory(site=narvik.site, accelerator=narvik.gb300)
    CapacityEventFactory(pool=other, effective_from=date(2026, 12, 2), gpus_in_service=5)

    # when
    gpus = _gpus(narvik.pool, date(2026, 12, 2), date(2026, 12, 2))

    # then
    assert gpus == [(date(2026, 12, 2), 100_000)]


def test_pool_capacity_costs_one_query_for_any_number_of_days(narvik, django_assert_num_queries):
    # given: the pool read with its site and accelerator, as the views read it
    pool = GpuPool.objects.select_related("site", "accelerator").get(pk=narvik.pool.pk)

    # when
    with django_assert_num_queries(1):
        days = selectors.pool_capacity_days(
            pool=pool, start=date(2026, 1, 1), end=date(2035, 12, 31)
        )

    # then
    assert {row.gpus_in_service for row in days} == {100_000}


# --- days and lists -----------------------------------------------------------------------


def test_days_between_includes_both_ends():
    # then
    assert list(selectors.days_between(date(2026, 12, 31), date(2027, 1, 2))) == [
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 2),
    ]
    assert list(selectors.days_between(date(2027, 1, 1), date(2027, 1, 1))) == [date(2027, 1, 1)]


def test_lists_are_ordered_and_nested_ones_scoped_to_their_parent(narvik):
    # given
    other_site = SiteFactory(name="Bodø")
    PowerPhaseFactory(site=other_site)
    late = CapacityEventFactory(pool=narvik.pool, effective_from=date(2027, 1, 1))
    CapacityEventFactory(pool=PoolFactory(name="a-first", site=other_site))

    # then
    assert list(selectors.site_list()) == [other_site, narvik.site]
    assert list(selectors.power_phase_list(site=narvik.site)) == [
        narvik.phase_one,
        narvik.phase_two,
    ]
    assert [pool.name for pool in selectors.pool_list()] == ["a-first", "narvik-gb300-a"]
    assert list(selectors.capacity_event_list(pool=narvik.pool)) == [narvik.installation, late]
    assert list(selectors.accelerator_list()) == [narvik.gb300]


def test_users_list_open_programs_and_operators_all_by_priority_then_name():
    # given
    later = ProgramFactory(name="Commercial", priority=30)
    first_b = ProgramFactory(name="Sigma2", priority=10)
    first_a = ProgramFactory(name="AI Factory", priority=10)
    closed = ProgramFactory(name="Pilot", priority=5, is_open=False)

    # then
    assert list(selectors.program_list(include_closed=False)) == [first_a, first_b, later]
    assert list(selectors.program_list(include_closed=True)) == [closed, first_a, first_b, later]
