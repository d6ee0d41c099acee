"""Reads of the inventory: GPUs in service, deliverable GPU-hours and power, day by day."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet

from allocations.models import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
)
from allocations.quantities import floor

HOURS_PER_DAY = 24


def days_between(start: date, end: date) -> Iterator[date]:
    """Every day from start to end, both included."""
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def energy_kwh_per_gpu_hour(*, accelerator: AcceleratorModel, pue: Decimal) -> Decimal:
    """Facility energy one GPU-hour costs: IT W per GPU × PUE / 1000."""
    return Decimal(accelerator.it_power_w) * pue / 1000


def facility_mw_for_gpus(*, gpus: int, accelerator: AcceleratorModel, pue: Decimal) -> Decimal:
    """Facility MW that `gpus` GPUs draw at full load."""
    return Decimal(gpus) * accelerator.it_power_w * pue / 1_000_000


def deliverable_gpu_hours(*, gpus_in_service: int, availability: Decimal) -> int:
    """GPU-hours a day that may be promised: GPUs × 24 × availability, rounded down."""
    return floor(Decimal(gpus_in_service * HOURS_PER_DAY) * availability)


@dataclass(frozen=True)
class PoolCapacityDay:
    day: date
    gpus_in_service: int
    capacity_gpu_hours: int
    full_load_mw: Decimal


def pool_capacity_days(*, pool: GpuPool, start: date, end: date) -> list[PoolCapacityDay]:
    """For each day of [start, end]: GPUs in service, deliverable GPU-hours, MW at full load.

    A pool's GPUs on a day are those of its latest capacity event on or before that day;
    before its first event it has none. One query; O(events + days).
    """
    events = list(
        CapacityEvent.objects.filter(pool=pool, effective_from__lte=end)
        .order_by("effective_from")
        .values_list("effective_from", "gpus_in_service")
    )
    accelerator, pue = pool.accelerator, pool.site.pue
    result: list[PoolCapacityDay] = []
    index, gpus = 0, 0
    for day in days_between(start, end):
        while index < len(events) and events[index][0] <= day:
            gpus = events[index][1]
            index += 1
        result.append(
            PoolCapacityDay(
                day=day,
                gpus_in_service=gpus,
                capacity_gpu_hours=deliverable_gpu_hours(
                    gpus_in_service=gpus, availability=pool.availability
                ),
                full_load_mw=facility_mw_for_gpus(gpus=gpus, accelerator=accelerator, pue=pue),
            )
        )
    return result


@dataclass(frozen=True)
class SitePowerDay:
    day: date
    power_envelope_mw: Decimal


def site_power_days(*, site: Site, start: date, end: date) -> list[SitePowerDay]:
    """The site's power envelope in MW for each day of [start, end].

    The envelope is the sum of the phases online that day (`online_until` included); a
    curtailment is a phase of negative MW. One query; O(phases + days).
    """
    phases = PowerPhase.objects.filter(site=site, online_from__lte=end).filter(
        Q(online_until__isnull=True) | Q(online_until__gte=start)
    )
    span = (end - start).days + 1
    change = [Decimal(0)] * (span + 1)
    for phase in phases.values_list("power_mw", "online_from", "online_until"):
        power, first, last = phase
        first_index = max((first - start).days, 0)
        last_index = span - 1 if last is None else min((last - start).days, span - 1)
        change[first_index] += power
        change[last_index + 1] -= power
    result: list[SitePowerDay] = []
    envelope = Decimal(0)
    for offset, day in enumerate(days_between(start, end)):
        envelope += change[offset]
        result.append(SitePowerDay(day=day, power_envelope_mw=envelope))
    return result


def site_list() -> QuerySet[Site]:
    return Site.objects.order_by("name")


def power_phase_list(*, site: Site) -> QuerySet[PowerPhase]:
    return PowerPhase.objects.filter(site=site).order_by("online_from", "name")


def accelerator_list() -> QuerySet[AcceleratorModel]:
    return AcceleratorModel.objects.order_by("name")


def pool_list() -> QuerySet[GpuPool]:
    return GpuPool.objects.select_related("site", "accelerator").order_by("name")


def capacity_event_list(*, pool: GpuPool) -> QuerySet[CapacityEvent]:
    return CapacityEvent.objects.filter(pool=pool).order_by("effective_from")


def program_list(*, include_closed: bool) -> QuerySet[Program]:
    """Open programs for users; operators may ask for the closed ones too."""
    programs = Program.objects.prefetch_related("reviewers").order_by("priority", "name")
    return programs if include_closed else programs.filter(is_open=True)
