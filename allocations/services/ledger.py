"""The capacity ledger: check a request against it and reserve, move or release GPU-hours.

A request of G GPU-hours over D days is spread evenly over its days (allocations/shares.py).
Each day must fit three constraints:

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.db import transaction
from django.db.models import F, Field, Max, Min, Model, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from allocations import effects, locks, selectors
from allocations.models import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationStatus,
    GpuPool,
    PoolDay,
    Program,
    ProgramDay,
    Site,
    SiteDay,
)
from allocations.reasons import text
from allocations.shares import ProgramTerms, daily_shares, program_headroom

Column = Literal["committed", "held"]


def wh_per_gpu_hour(pool: GpuPool) -> Decimal:
    """Facility energy of one GPU-hour in Wh: IT W per GPU × the site's PUE."""
    return Decimal(pool.accelerator.it_power_w) * pool.site.pue


def current_wh_per_gpu_hour(*, pool_id: UUID) -> Decimal:
    """The pool's Wh per GPU-hour as the inventory now is, read afresh: a decision reads it
    with its window's site-day locks held, which an energy re-pricing takes too."""
    it_power_w, pue = (
        GpuPool.objects.filter(pk=pool_id).values_list("accelerator__it_power_w", "site__pue").get()
    )
    return Decimal(it_power_w) * pue


def reserved_rate(application: Application) -> Decimal:
    """The Wh per GPU-hour an application's reservation holds in the energy ledger.

    Stored when the reservation is taken and re-priced with it; a row from before the rate
    was stored (none after the migration that priced them) falls back to its pool's."""
    if application.reserved_wh_per_gpu_hour is not None:
        return application.reserved_wh_per_gpu_hour
    return wh_per_gpu_hour(application.pool)


@dataclass(frozen=True)
class Shortfall:
    code: Literal["capacity_pool", "capacity_program", "capacity_power"]
    day: date
    message: str


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
                text("capacity_pool", day=day, free=max(pool_free, 0), needs=share),
            )
        if share > program_free:
            return Shortfall(
                "capacity_program",
                day,
                text("capacity_program", day=day, free=program_free, needs=share),
            )
        energy = share * energy_per_gpu_hour
        energy_free: Decimal = site_day.envelope_wh - site_day.committed_wh - site_day.held_wh
        if energy > energy_free:
            return Shortfall(
                "capacity_power",
                day,
                text(
                    "capacity_power",
                    day=day,
                    free=f"{max(energy_free, Decimal(0)) / 1_000_000:.3f}",
                    needs=f"{energy / 1_000_000:.3f}",
                ),
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
    energy_per_gpu_hour: Decimal,
) -> None:
    """Move each day's share between the columns: `add_to` gains it, `take_from` loses it.

    Reserve: add_to="held" or "committed". Approve a hold: take_from="held",
    add_to="committed". Release: take_from only. The energy moved is each share × the
    reservation's own rate (`Application.reserved_wh_per_gpu_hour`), so a release gives back
    exactly what was reserved. The locked rows are updated in place with one UPDATE per
    table.
    """
    end = pool_days[-1].day
    assert pool_days[0].day == start
    rows = locks.program_days(pool=pool, start=start, end=end, make_for=program)
    program_rows = ledger_move(
        program=program,
        shares=shares,
        pool_days=pool_days,
        program_rows=rows,
        site_days=site_days,
        add_to=add_to,
        take_from=take_from,
        energy_per_gpu_hour=energy_per_gpu_hour,
    )
    columns = [f"{column}_gpu_hours" for column in (add_to, take_from) if column]
    bulk_set(PoolDay, pool_days, columns)
    bulk_set(ProgramDay, program_rows, columns)
    bulk_set(SiteDay, site_days, [f"{column}_wh" for column in (add_to, take_from) if column])


def ledger_move(
    *,
    program: Program,
    shares: Sequence[int],
    pool_days: Sequence[PoolDay],
    program_rows: dict[tuple[UUID, date], ProgramDay],
    site_days: Sequence[SiteDay],
    add_to: Column | None,
    take_from: Column | None,
    energy_per_gpu_hour: Decimal,
) -> list[ProgramDay]:
    """`ledger_apply` in memory only: move each day's share between the columns of the
    locked rows given (the program's rows must be among `program_rows`) and answer the
    program rows moved. The caller writes the rows; an admission cycle writes those of all
    its decisions at once."""
    # How much each column moves per GPU-hour of a share: +1 where it is added, −1 where it
    # is taken from (a hold approved: held −1, committed +1).
    committed = (add_to == "committed") - (take_from == "committed")
    held = (add_to == "held") - (take_from == "held")
    moved = []
    for share, pool_day, site_day in zip(shares, pool_days, site_days, strict=True):
        program_day = program_rows[(program.pk, pool_day.day)]
        for row in (pool_day, program_day):
            row.committed_gpu_hours += committed * share
            row.held_gpu_hours += held * share
        site_day.committed_wh += committed * share * energy_per_gpu_hour
        site_day.held_wh += held * share * energy_per_gpu_hour
        moved.append(program_day)
    return moved


def bulk_set(model: type[Model], rows: Sequence[Model], fields: Sequence[str]) -> int:
    """Write `fields` of `rows` (each already saved) in one statement.

    On PostgreSQL, `UPDATE … FROM (VALUES …)`: its SQL is built once per call, where Django's
    `bulk_update` builds a CASE expression per row and field (most of an admission cycle's
    time when it was used). Elsewhere (SQLite), `bulk_update`.
    """
    if not rows or not fields:
        return 0
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_update(rows, list(fields))
    meta = model._meta
    primary = meta.pk
    assert primary is not None
    concrete: list[Field[Any, Any]] = []
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, Field)
        concrete.append(field)
    columns = [primary, *concrete]
    casts = [field.cast_db_type(connection) for field in columns]
    row_sql = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    quote = connection.ops.quote_name
    names = [quote(field.column) for field in columns]
    params: list[Any] = []
    for row in rows:
        params.append(primary.get_db_prep_value(row.pk, connection, prepared=False))
        for field in concrete:
            params.append(field.get_db_prep_save(getattr(row, field.attname), connection))
    table = quote(meta.db_table)
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    # Only the model's own table and column names are spliced in; every value is a parameter.
    values = ", ".join([row_sql] * len(rows))
    sql = (
        f"UPDATE {table} SET {assignments} FROM (VALUES {values}) "  # noqa: S608
        f"AS v({', '.join(names)}) WHERE {table}.{names[0]} = v.{names[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


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
            GpuPool.objects.select_for_update(no_key=True)
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
        grew = _rewrite(PoolDay, rows, "capacity_gpu_hours", computed)
        flag_allocations_at_risk(pool_ids=[pool.pk])
        if grew:
            effects.recheck_waitlist(pool_id=pool.pk)


def _rewrite(
    model: type[PoolDay | SiteDay], rows: Sequence[Any], column: str, computed: dict[date, int]
) -> bool:
    """Set `column` of each locked ledger row to its day's `computed` value, writing the rows
    that change in one UPDATE; answers whether any of them grew."""
    changed = [row for row in rows if computed[row.day] != getattr(row, column)]
    grew = any(computed[row.day] > getattr(row, column) for row in changed)
    for row in changed:
        setattr(row, column, computed[row.day])
    model._default_manager.bulk_update(changed, [column])
    return grew


def ledger_rewrite_site_power(*, site_id: UUID) -> None:
    """The site's power phases changed: rewrite the envelope of its ledger rows from today
    on, flag the allocations on days past the envelope, and queue the waitlists of its pools
    if the envelope grew.

    Locks: the site row (step 2), then its site-day rows in day order (step 4).
    """
    today = timezone.localdate()
    with transaction.atomic():
        site = Site.objects.select_for_update(no_key=True).get(pk=site_id)
        rows = list(
            SiteDay.objects.select_for_update().filter(site=site, day__gte=today).order_by("day")
        )
        if not rows:
            return
        computed = {
            day.day: locks.envelope_wh(day.power_envelope_mw)
            for day in selectors.site_power_days(site=site, start=rows[0].day, end=rows[-1].day)
        }
        grew = _rewrite(SiteDay, rows, "envelope_wh", computed)
        pool_ids = list(GpuPool.objects.filter(site=site).values_list("pk", flat=True))
        flag_allocations_at_risk(pool_ids=pool_ids)
        if grew:
            for pool_id in pool_ids:
                effects.recheck_waitlist(pool_id=pool_id)


def reservations(*, pool_ids: Iterable[UUID]) -> QuerySet[Application]:
    """The applications that hold energy in the ledger: the holds of applications in review
    and the grants of approved ones (new, supplement, extension). A grant's days from its
    allocation's `released_from` on were given back and hold nothing."""
    return Application.objects.filter(pool_id__in=pool_ids).filter(
        Q(status=ApplicationStatus.APPROVED)
        | Q(status=ApplicationStatus.IN_REVIEW, holds_capacity=True)
    )


def ledger_reprice(
    *,
    accelerator_ids: Sequence[UUID] = (),
    pool_ids: Sequence[UUID] = (),
    site_ids: Sequence[UUID] = (),
) -> None:
    """A site's PUE, an accelerator's IT power, or a pool's site or accelerator changed:
    re-price the reservations of the pools concerned and re-derive the energy columns of the
    site-day ledger of the sites concerned from the reservations, so that every day holds
    exactly the sum of its live reservations.

    Re-pricing: every reservation of the pools whose window reaches today or later takes the
    rate of the inventory as it now is, over its whole window (an estimate follows the site
    as it is); reservations wholly in the past keep the rate they were reserved at. A pool
    that moved takes all its reservations to its new site. Nothing fails for energy: days
    pushed past the envelope are reported overcommitted and their allocations flagged, as a
    capacity shrink is; when energy was freed, the waitlists of the sites' pools are queued.

    Pass the rows the edit concerns: pools of an edited accelerator are found here, and a
    moved pool's old site must be passed with its new one. Call inside the edit's transaction.

    Locks: the accelerators, pools and sites given (step 2, `FOR NO KEY UPDATE`), then every
    site-day row of the sites by site and day (step 4); the reservations' application rows
    are updated after (step 5).
    """
    with transaction.atomic():
        sites, site_pools = _lock_for_repricing(
            accelerator_ids=accelerator_ids, pool_ids=pool_ids, site_ids=site_ids
        )
        rows = locks.lock_all_site_days(site_ids=sorted(sites))
        _reprice_reservations(pool_ids=list(site_pools), today=timezone.localdate())
        freed = _rederive_site_energy(rows, site_pools=site_pools)
        flag_allocations_at_risk(pool_ids=list(site_pools))
        if freed:
            for pool_id in site_pools:
                effects.recheck_waitlist(pool_id=pool_id)


def _lock_for_repricing(
    *, accelerator_ids: Sequence[UUID], pool_ids: Sequence[UUID], site_ids: Sequence[UUID]
) -> tuple[set[UUID], dict[UUID, UUID]]:
    """`ledger_reprice`'s inventory locks: the accelerators and pools (with the pools of the
    accelerators), then the sites (with the sites of the pools), and site-day rows made for
    every day a reservation of a site's pools holds. Answers the sites, and each pool of the
    sites with its site."""
    pools = set(pool_ids) | set(
        GpuPool.objects.filter(accelerator_id__in=accelerator_ids).values_list("pk", flat=True)
    )
    locks.lock_inventory(accelerator_ids=accelerator_ids, pool_ids=sorted(pools))
    sites = set(site_ids) | set(
        GpuPool.objects.filter(pk__in=pools).values_list("site_id", flat=True)
    )
    locks.lock_inventory(site_ids=sorted(sites))
    site_pools = dict(GpuPool.objects.filter(site_id__in=sites).values_list("pk", "site_id"))
    for site in Site.objects.filter(pk__in=sites):
        # a pool that moved here brings days the site may have no rows for yet
        span = reservations(
            pool_ids=[pool for pool, at in site_pools.items() if at == site.pk]
        ).aggregate(first=Min("start_date"), last=Max("end_date"))
        if span["first"] is not None:
            locks.ensure_site_days(site=site, start=span["first"], end=span["last"])
    return sites, site_pools


def _reprice_reservations(*, pool_ids: list[UUID], today: date) -> None:
    """Every reservation of the pools whose window reaches `today` or later takes the rate of
    the inventory as it now is."""
    priced = GpuPool.objects.filter(pk__in=pool_ids).values_list(
        "pk", "accelerator__it_power_w", "site__pue"
    )
    for pool_id, it_power_w, pue in priced:
        rate = Decimal(it_power_w) * pue
        reservations(pool_ids=[pool_id]).filter(end_date__gte=today).exclude(
            reserved_wh_per_gpu_hour=rate
        ).update(reserved_wh_per_gpu_hour=rate)


def _rederive_site_energy(rows: Sequence[SiteDay], *, site_pools: dict[UUID, UUID]) -> bool:
    """Set the energy columns of the locked site-day rows to what the reservations of the
    sites' pools hold, writing the rows that change in one UPDATE; answers whether energy
    was freed on any day."""
    expected = reserved_energy(pool_sites=site_pools)
    changed, freed = [], False
    for row in rows:
        committed, held = expected.get((row.site_id, row.day), (Decimal(0), Decimal(0)))
        if (row.committed_wh, row.held_wh) != (committed, held):
            freed = freed or committed + held < row.committed_wh + row.held_wh
            row.committed_wh, row.held_wh = committed, held
            changed.append(row)
    SiteDay.objects.bulk_update(changed, ["committed_wh", "held_wh"])
    return freed


def reserved_energy(
    *, pool_sites: dict[UUID, UUID]
) -> dict[tuple[UUID, date], tuple[Decimal, Decimal]]:
    """(committed, held) Wh per site and day that the reservations of the pools hold, each
    day its share × the reservation's rate; `pool_sites` maps each pool to its site."""
    fallback = {
        pool.pk: wh_per_gpu_hour(pool)
        for pool in GpuPool.objects.filter(pk__in=pool_sites).select_related("site", "accelerator")
    }
    totals: dict[tuple[UUID, date], list[Decimal]] = {}
    rows = (
        reservations(pool_ids=list(pool_sites))
        .annotate(
            # a new application's allocation is its own; a change's is the one it changed
            released_from=Coalesce(
                F("allocation__released_from"), F("granted_allocation__released_from")
            )
        )
        .order_by()
        .values_list(
            "pool_id",
            "status",
            "gpu_hours",
            "start_date",
            "end_date",
            "reserved_wh_per_gpu_hour",
            "released_from",
        )
    )
    for pool_id, status, gpu_hours, start, end, rate, released_from in rows:
        column = 1 if status == ApplicationStatus.IN_REVIEW else 0
        energy = rate if rate is not None else fallback[pool_id]
        shares = daily_shares(gpu_hours=gpu_hours, start=start, end=end)
        for offset, share in enumerate(shares):
            day = start + timedelta(days=offset)
            if column == 0 and released_from is not None and day >= released_from:
                break
            entry = totals.setdefault((pool_sites[pool_id], day), [Decimal(0), Decimal(0)])
            entry[column] += share * energy
    return {key: (value[0], value[1]) for key, value in totals.items()}


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
