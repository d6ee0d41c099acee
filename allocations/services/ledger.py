"""The capacity ledger: check a request against it and reserve, move or release GPU-hours.

A request of G GPU-hours over D days is spread evenly: every day gets G // D and the first
G % D days one more, so the days sum to G exactly. Each day must fit three constraints:

- pool: everything reserved that day plus the share stays within the pool's capacity;
- program (Kueue's cohort, per day and in GPU-hours): each program q has a nominal part
  N_q = floor(capacity × nominal_share_q); the part of it it never lends,
  N_q − floor(N_q × lending_limit_q), stays free for q while q does not use it, so the
  request must fit beside the unused guaranteed parts of the other programs; past its own
  nominal part a program borrows at most floor(capacity × borrowing_limit);
- power: the site's reserved energy that day (GPU-hours × IT W per GPU × PUE, over all
  its pools) plus the share stays within the envelope (MW × 24 h).

All functions here expect the caller to hold the pool-day and site-day locks of the window
(allocations/locks.py); each costs O(days × programs), whatever the number of allocations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Literal
from uuid import UUID

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from allocations import locks, selectors, tasks
from allocations.models import (
    Allocation,
    AllocationStatus,
    GpuPool,
    PoolDay,
    Program,
    ProgramDay,
    Site,
    SiteDay,
)

Column = Literal["committed", "held"]


def daily_shares(*, gpu_hours: int, start: date, end: date) -> list[int]:
    """GPU-hours per day of [start, end], evenly spread and summing exactly to gpu_hours."""
    days = (end - start).days + 1
    base, extra = divmod(gpu_hours, days)
    return [base + (1 if index < extra else 0) for index in range(days)]


def wh_per_gpu_hour(pool: GpuPool) -> Decimal:
    """Facility energy of one GPU-hour in Wh: IT W per GPU × the site's PUE."""
    return Decimal(pool.accelerator.it_power_w) * pool.site.pue


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class ProgramTerms:
    """A program's cohort parameters, read once per check."""

    program_id: UUID
    nominal_share: Decimal
    lending_limit: Decimal
    borrowing_limit: Decimal

    @classmethod
    def of(cls, program: Program) -> ProgramTerms:
        return cls(
            program.pk, program.nominal_share, program.lending_limit, program.borrowing_limit
        )

    def nominal(self, capacity: int) -> int:
        return _floor(capacity * self.nominal_share)

    def guaranteed(self, capacity: int) -> int:
        nominal = self.nominal(capacity)
        return nominal - _floor(nominal * self.lending_limit)

    def borrowing(self, capacity: int) -> int:
        return _floor(capacity * self.borrowing_limit)


@dataclass(frozen=True)
class Shortfall:
    code: Literal["capacity_pool", "capacity_program", "capacity_power"]
    day: date
    message: str


def program_headroom(
    *,
    capacity: int,
    reserved: int,
    terms: ProgramTerms,
    used_by: dict[UUID, int],
    everyone: Sequence[ProgramTerms],
) -> tuple[int, int]:
    """(pool headroom, program headroom) of one day: what the pool and the program could
    still take, in GPU-hours. The program's headroom already respects the pool's."""
    pool_free = capacity - reserved
    others_protected = sum(
        max(other.guaranteed(capacity) - used_by.get(other.program_id, 0), 0)
        for other in everyone
        if other.program_id != terms.program_id
    )
    used = used_by.get(terms.program_id, 0)
    ceiling = terms.nominal(capacity) + terms.borrowing(capacity) - used
    return pool_free, max(min(pool_free - others_protected, ceiling), 0)


def capacity_check(
    *,
    program: Program,
    shares: Sequence[int],
    pool_days: Sequence[PoolDay],
    program_rows: dict[tuple[UUID, date], ProgramDay],
    site_days: Sequence[SiteDay],
    energy_per_gpu_hour: Decimal,
    everyone: Sequence[ProgramTerms],
) -> Shortfall | None:
    """The first day and constraint the shares do not fit, or None if every day fits."""
    terms = ProgramTerms.of(program)
    by_day: dict[date, dict[UUID, int]] = {}
    for (program_id, day), row in program_rows.items():
        by_day.setdefault(day, {})[program_id] = row.reserved_gpu_hours
    for share, pool_day, site_day in zip(shares, pool_days, site_days, strict=True):
        day, capacity = pool_day.day, pool_day.capacity_gpu_hours
        pool_free, program_free = program_headroom(
            capacity=capacity,
            reserved=pool_day.reserved_gpu_hours,
            terms=terms,
            used_by=by_day.get(day, {}),
            everyone=everyone,
        )
        if share > pool_free:
            return Shortfall(
                "capacity_pool",
                day,
                f"On {day} the pool has {max(pool_free, 0)} GPU-hours free; the request needs "
                f"{share}.",
            )
        if share > program_free:
            return Shortfall(
                "capacity_program",
                day,
                f"On {day} the program may take {program_free} more GPU-hours (its share, "
                f"what others lend and the common part); the request needs {share}.",
            )
        energy = share * energy_per_gpu_hour
        energy_free: Decimal = site_day.envelope_wh - site_day.committed_wh - site_day.held_wh
        if energy > energy_free:
            return Shortfall(
                "capacity_power",
                day,
                f"On {day} the site has {max(energy_free, Decimal(0)) / 1_000_000:.3f} MWh of "
                f"its power envelope free; the request needs {energy / 1_000_000:.3f} MWh.",
            )
    return None


def all_program_terms() -> list[ProgramTerms]:
    return [ProgramTerms.of(program) for program in Program.objects.all()]


def ledger_apply(
    *,
    pool: GpuPool,
    program: Program,
    start: date,
    shares: Sequence[int],
    pool_days: Sequence[PoolDay],
    site_days: Sequence[SiteDay],
    add_to: Column | None,
    take_from: Column | None,
) -> None:
    """Move each day's share between the columns: `add_to` gains it, `take_from` loses it.

    Reserve: add_to="held" or "committed". Approve a hold: take_from="held",
    add_to="committed". Release: take_from only. The locked rows are updated in place with
    one UPDATE per table.
    """
    end = pool_days[-1].day
    assert pool_days[0].day == start
    rows = locks.program_days(pool=pool, start=start, end=end, make_for=program)
    energy = wh_per_gpu_hour(pool)
    program_rows = []
    for share, pool_day, site_day in zip(shares, pool_days, site_days, strict=True):
        program_day = rows[(program.pk, pool_day.day)]
        for row, amount in (
            (pool_day, share),
            (program_day, share),
        ):
            if add_to:
                setattr(row, f"{add_to}_gpu_hours", getattr(row, f"{add_to}_gpu_hours") + amount)
            if take_from:
                setattr(
                    row, f"{take_from}_gpu_hours", getattr(row, f"{take_from}_gpu_hours") - amount
                )
        if add_to:
            setattr(site_day, f"{add_to}_wh", getattr(site_day, f"{add_to}_wh") + share * energy)
        if take_from:
            setattr(
                site_day, f"{take_from}_wh", getattr(site_day, f"{take_from}_wh") - share * energy
            )
        program_rows.append(program_day)
    columns = [f"{column}_gpu_hours" for column in (add_to, take_from) if column]
    PoolDay.objects.bulk_update(pool_days, columns)
    ProgramDay.objects.bulk_update(program_rows, columns)
    SiteDay.objects.bulk_update(
        site_days, [f"{column}_wh" for column in (add_to, take_from) if column]
    )


# --- inventory changes rewrite the ledger ------------------------------------------------


def ledger_rewrite_pool(*, pool_id: UUID) -> None:
    """The pool's capacity changed (a capacity event, its availability): rewrite the capacity
    of its ledger rows from today on, flag the allocations on overcommitted days, and queue
    its waitlist if capacity grew. Nothing is cancelled.

    Locks: the pool row (step 2), then its pool-day rows in day order (step 3).
    """
    today = timezone.localdate()
    with transaction.atomic():
        pool = (
            GpuPool.objects.select_for_update()
            .select_related("site", "accelerator")
            .get(pk=pool_id)
        )
        rows = list(
            PoolDay.objects.select_for_update().filter(pool=pool, day__gte=today).order_by("day")
        )
        if not rows:
            return
        computed = {
            day.day: day.capacity_gpu_hours
            for day in selectors.pool_capacity_days(pool=pool, start=rows[0].day, end=rows[-1].day)
        }
        changed = [row for row in rows if computed[row.day] != row.capacity_gpu_hours]
        grew = any(computed[row.day] > row.capacity_gpu_hours for row in changed)
        for row in changed:
            row.capacity_gpu_hours = computed[row.day]
        PoolDay.objects.bulk_update(changed, ["capacity_gpu_hours"])
        flag_allocations_at_risk(pool_ids=[pool.pk])
        if grew:
            tasks.recheck_waitlist.delay_on_commit(str(pool.pk))


def ledger_rewrite_site_power(*, site_id: UUID) -> None:
    """The site's power phases changed: rewrite the envelope of its ledger rows from today
    on, flag the allocations on days past the envelope, and queue the waitlists of its pools
    if the envelope grew.

    Locks: the site row (step 2), then its site-day rows in day order (step 4).
    """
    today = timezone.localdate()
    with transaction.atomic():
        site = Site.objects.select_for_update().get(pk=site_id)
        rows = list(
            SiteDay.objects.select_for_update().filter(site=site, day__gte=today).order_by("day")
        )
        if not rows:
            return
        computed = {
            day.day: locks.envelope_wh(day.power_envelope_mw)
            for day in selectors.site_power_days(site=site, start=rows[0].day, end=rows[-1].day)
        }
        changed = [row for row in rows if computed[row.day] != row.envelope_wh]
        grew = any(computed[row.day] > row.envelope_wh for row in changed)
        for row in changed:
            row.envelope_wh = computed[row.day]
        SiteDay.objects.bulk_update(changed, ["envelope_wh"])
        pool_ids = list(GpuPool.objects.filter(site=site).values_list("pk", flat=True))
        flag_allocations_at_risk(pool_ids=pool_ids)
        if grew:
            for pool_id in pool_ids:
                tasks.recheck_waitlist.delay_on_commit(str(pool_id))


def overcommitted_days(*, pool_ids: Sequence[UUID]) -> dict[UUID, list[date]]:
    """From today on, the days each pool has more reserved than capacity, or its site more
    reserved energy than its envelope."""
    today = timezone.localdate()
    result: dict[UUID, list[date]] = {pool_id: [] for pool_id in pool_ids}
    over_pool = PoolDay.objects.filter(
        pool_id__in=pool_ids,
        day__gte=today,
        capacity_gpu_hours__lt=F("committed_gpu_hours") + F("held_gpu_hours"),
    ).values_list("pool_id", "day")
    for pool_id, day in over_pool:
        result[pool_id].append(day)
    sites = dict(GpuPool.objects.filter(pk__in=pool_ids).values_list("pk", "site_id"))
    over_power = SiteDay.objects.filter(
        site_id__in=set(sites.values()),
        day__gte=today,
        envelope_wh__lt=F("committed_wh") + F("held_wh"),
    ).values_list("site_id", "day")
    for site_id, day in over_power:
        for pool_id, pool_site in sites.items():
            if pool_site == site_id:
                result[pool_id].append(day)
    return {pool_id: sorted(set(days)) for pool_id, days in result.items()}


def flag_allocations_at_risk(*, pool_ids: Sequence[UUID]) -> int:
    """Mark the live allocations of the pools that cover an overcommitted day `at_risk`, and
    clear the mark of the others. Returns how many are at risk."""
    live = Allocation.objects.filter(
        pool_id__in=pool_ids,
        status__in=(
            AllocationStatus.SCHEDULED,
            AllocationStatus.ACTIVE,
            AllocationStatus.EXHAUSTED,
            AllocationStatus.SUSPENDED,
        ),
    )
    live.filter(at_risk=True).update(at_risk=False)
    flagged = 0
    for pool_id, days in overcommitted_days(pool_ids=pool_ids).items():
        for first, last in _runs(days):
            flagged += live.filter(
                pool_id=pool_id, start_date__lte=last, end_date__gte=first
            ).update(at_risk=True)
    return flagged


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) runs."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
