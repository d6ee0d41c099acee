"""Every row lock of the allocations app, taken in one order so that workers never deadlock:

0. the programs' nominal shares (`lock_program_shares`), by writers of programs only; or the
   pool's admission lock (`lock_admission`), by admission cycles only: one cycle per pool
   at a time, taken before anything else of the cycle, so that a second cycle of the pool
   waits, then finds the applications decided and does nothing. No transaction takes both;
1. the model lineage's advisory lock (`lock_lineage`; a cycle takes those of all its
   applications by their hashes, `lock_lineages`), by decisions of an application that
   names a lineage; then the organization's quota row in the program (`QuotaUsage`; a cycle
   takes all of its rows in one statement, by organization then program, `lock_quotas`);
2. the inventory rows, parents first: the accelerator, then the pool, then the site.
   Writers of the inventory (an edit, a ledger rewrite, making missing ledger rows) take
   them `FOR NO KEY UPDATE`: they never change a primary key, and so they do not conflict
   with the `FOR KEY SHARE` that PostgreSQL's deferred foreign-key checks take on the pool
   at commit, while a decision holds its pool-day locks (a plain `FOR UPDATE` here
   deadlocked with them). Decisions and releases take their pool `FOR SHARE`
   (`lock_pool_shared`), so that its site and accelerator, and so the Wh a GPU-hour costs,
   stay as read until they commit. The missing ledger rows of a window are made before,
   in a transaction of their own;
3. the pool-day rows of the window, in day order;
4. the site-day rows of the window, in day order; an energy re-pricing locks every
   site-day row of its sites, by site then day (`lock_all_site_days`);
5. the application, then its allocation (a cycle: its applications by id, then the
   allocations they change by id).

A transaction may skip a step but never goes back to an earlier one, with one exception:
an edit of a pool rewrites its pool-days (step 3) and then re-prices its energy (steps 2
and 4). It holds the pool `FOR NO KEY UPDATE` from the start, and every other holder of
that pool's day locks holds the pool `FOR SHARE` first, so no one can wait on it there.
No network call is made while a lock is held: side effects are outbox rows written in the
transaction (allocations/effects.py), published to the broker after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from django.db import transaction
from django.db.models import Q, QuerySet

from allocations import selectors
from allocations.models import (
    AcceleratorModel,
    Allocation,
    Application,
    GpuPool,
    PoolDay,
    Program,
    ProgramDay,
    QuotaUsage,
    Site,
    SiteDay,
)
from allocations.selectors import HOURS_PER_DAY

Day = TypeVar("Day", PoolDay, SiteDay)

# Any fixed number, the same in every process: the bytes of "programs".
PROGRAM_SHARES_LOCK = 0x70726F6772616D73


def lock_program_shares() -> None:
    """Step 0, for writes of programs only: one lock on the nominal shares of all programs,
    so that two writers cannot both find room for their share and together pass 1.

    Row locks cannot do this: a program inserted meanwhile is a row the other writer never
    locked (and Django drops `FOR UPDATE` from an aggregate). PostgreSQL takes an advisory
    lock held to the end of the transaction; on SQLite every transaction already begins
    with the database's write lock (`transaction_mode` IMMEDIATE in the settings).
    """
    connection = transaction.get_connection()
    assert connection.in_atomic_block
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PROGRAM_SHARES_LOCK])


# Any fixed 32-bit number, the same in every process: the bytes of "admi". With a second key
# (a hash of the pool's id) it is a lock space of its own, like the lineages' below.
ADMISSION_LOCK_CLASS = 0x61646D69


def lock_admission(*, pool_id: UUID, wait: bool = True) -> bool:
    """Step 0, for admission cycles: the pool's admission lock, held to the end of the cycle.

    Two workers that take a decision of the same pool at once would otherwise both read the
    same pending applications and the second wait on the first's row locks only to find
    them decided. A hash collision only serializes the cycles of two pools. Without `wait`,
    answers false at once if another transaction holds it. SQLite's database lock already
    serializes writers."""
    connection = transaction.get_connection()
    assert connection.in_atomic_block
    if connection.vendor != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {function}(%s, hashtext(%s))",
            [ADMISSION_LOCK_CLASS, str(pool_id)],
        )
        (taken,) = cursor.fetchone()
    return wait or bool(taken)


# Any fixed 32-bit number, the same in every process: the bytes of "line". With a second
# 32-bit key this is a lock space of its own, apart from the single 64-bit keys above.
LINEAGE_LOCK_CLASS = 0x6C696E65


def lock_lineage(*, key: str) -> None:
    """Step 1, for decisions of an application with a model lineage: one lock per normalized
    lineage name, so that the lineage's compute (granted and held) is read, and added to, by
    one decision at a time; otherwise two applications could each pass under 10^25 FLOP.

    Taken before the quota row: applications of one lineage may come from several
    organizations, with quota rows of their own. PostgreSQL takes an advisory lock held to
    the end of the transaction (a hash collision only serializes two lineages); SQLite's
    database lock already serializes writers."""
    connection = transaction.get_connection()
    assert connection.in_atomic_block
    if key and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LINEAGE_LOCK_CLASS, key]
            )


def lock_lineages(*, keys: Sequence[str]) -> None:
    """Step 1, for an admission cycle: the advisory locks of all its lineages in one
    statement, in the order of their hashes (the lock's key), so that two cycles cannot
    deadlock on them even where two names share a hash."""
    connection = transaction.get_connection()
    assert connection.in_atomic_block
    names = sorted({key for key in keys if key})
    if names and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashed) FROM (SELECT DISTINCT hashtext(name) "
                "AS hashed FROM unnest(%s::text[]) AS name ORDER BY hashed) AS ordered",
                [LINEAGE_LOCK_CLASS, names],
            )


def lock_quotas(*, pairs: Sequence[tuple[UUID, UUID]]) -> dict[tuple[UUID, UUID], QuotaUsage]:
    """Step 1, for an admission cycle: the quota rows of its (organization, program) pairs,
    made on first use, locked in one statement by organization then program. By pair."""
    assert transaction.get_connection().in_atomic_block
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    QuotaUsage.objects.bulk_create(
        [QuotaUsage(organization_id=org, program_id=program) for org, program in wanted],
        ignore_conflicts=True,
    )
    matches = Q()
    for organization_id, program_id in wanted:
        matches |= Q(organization_id=organization_id, program_id=program_id)
    rows = (
        QuotaUsage.objects.select_for_update()
        .filter(matches)
        .order_by("organization_id", "program_id")
    )
    return {(row.organization_id, row.program_id): row for row in rows}


def lock_quota(*, organization_id: UUID, program_id: UUID) -> QuotaUsage:
    """Step 1: the organization's quota row in the program, made on first use."""
    assert transaction.get_connection().in_atomic_block
    QuotaUsage.objects.bulk_create(
        [QuotaUsage(organization_id=organization_id, program_id=program_id)],
        ignore_conflicts=True,
    )
    return QuotaUsage.objects.select_for_update().get(
        organization_id=organization_id, program_id=program_id
    )


def ensure_ledger_rows(*, pool: GpuPool, start: date, end: date) -> None:
    """Make the missing pool-day and site-day rows of [start, end], in a transaction of its
    own, before the locks of a decision are taken.

    Missing rows are made under the pool's (then the site's) row lock, with the capacity
    and power of the inventory, so that an inventory change written at the same time (it
    takes the same lock, then rewrites the rows) cannot leave a new row stale. Rows are
    never deleted, so once made they stay.
    """
    ensure_ledger_rows_of(pool_id=pool.pk, site_id=pool.site_id, start=start, end=end)


def ensure_ledger_rows_of(*, pool_id: UUID, site_id: UUID, start: date, end: date) -> None:
    """`ensure_ledger_rows` by ids: the rows are counted first, and the pool and site read
    only when some are missing (an admission cycle knows the ids only)."""
    expected = (end - start).days + 1
    # One read in the usual case, where every row is there: both counts in one statement.
    connection = transaction.get_connection()
    pool_key = PoolDay._meta.get_field("pool").get_db_prep_value(pool_id, connection)
    site_key = SiteDay._meta.get_field("site").get_db_prep_value(site_id, connection)
    first, last = (connection.ops.adapt_datefield_value(day) for day in (start, end))
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT (SELECT count(*) FROM "{PoolDay._meta.db_table}" '  # noqa: S608
            "WHERE pool_id = %s AND day BETWEEN %s AND %s), "
            f'(SELECT count(*) FROM "{SiteDay._meta.db_table}" '
            "WHERE site_id = %s AND day BETWEEN %s AND %s)",
            [pool_key, first, last, site_key, first, last],
        )
        pool_count, site_count = cursor.fetchone()
    counts = {"pool": pool_count, "site": site_count}
    if counts["pool"] != expected:
        with transaction.atomic():
            pool = GpuPool.objects.select_for_update(no_key=True).get(pk=pool_id)
            PoolDay.objects.bulk_create(
                [
                    PoolDay(pool=pool, day=day.day, capacity_gpu_hours=day.capacity_gpu_hours)
                    for day in selectors.pool_capacity_days(pool=pool, start=start, end=end)
                ],
                ignore_conflicts=True,
            )
    if counts["site"] != expected:
        with transaction.atomic():
            site = Site.objects.select_for_update(no_key=True).get(pk=site_id)
            _make_site_days(site=site, start=start, end=end)


def ensure_site_days(*, site: Site, start: date, end: date) -> None:
    """Make the missing site-day rows of [start, end] under the site's row lock (step 2).

    Before a decision's transaction, or inside it right after its pool lock when the pool
    turned out to have moved to another site since it was read."""
    expected = (end - start).days + 1
    with transaction.atomic():
        if SiteDay.objects.filter(site=site, day__range=(start, end)).count() != expected:
            Site.objects.select_for_update(no_key=True).filter(pk=site.pk).first()
            _make_site_days(site=site, start=start, end=end)


def _make_site_days(*, site: Site, start: date, end: date) -> None:
    """The missing site-day rows of [start, end]; the caller holds the site's row lock."""
    SiteDay.objects.bulk_create(
        [
            SiteDay(site=site, day=day.day, envelope_wh=envelope_wh(day.power_envelope_mw))
            for day in selectors.site_power_days(site=site, start=start, end=end)
        ],
        ignore_conflicts=True,
    )


def lock_pool_shared(*, pool_id: UUID) -> GpuPool:
    """Step 2, for decisions and releases: the pool row `FOR SHARE`, then the pool as it is
    (its site and accelerator with it).

    Shared locks do not conflict with one another, so decisions in one pool still run side by
    side; an edit of the pool (`FOR NO KEY UPDATE`) waits for them, and they for it. Django
    has no `FOR SHARE`, hence the SQL; SQLite's database lock already serializes writers.
    """
    connection = transaction.get_connection()
    assert connection.in_atomic_block
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT 1 FROM "allocations_gpupool" WHERE "id" = %s FOR SHARE', [pool_id]
            )
    return GpuPool.objects.select_related("site", "accelerator").get(pk=pool_id)


def lock_inventory(
    *,
    accelerator_ids: Sequence[UUID] = (),
    pool_ids: Sequence[UUID] = (),
    site_ids: Sequence[UUID] = (),
) -> None:
    """Step 2, for writers of the inventory: accelerators, then pools, then sites, each in
    id order, `FOR NO KEY UPDATE`."""
    assert transaction.get_connection().in_atomic_block
    for model, ids in (
        (AcceleratorModel, accelerator_ids),
        (GpuPool, pool_ids),
        (Site, site_ids),
    ):
        if ids:
            list(
                model._default_manager.select_for_update(no_key=True)
                .filter(pk__in=set(ids))
                .order_by("pk")
                .values_list("pk", flat=True)
            )


def lock_pool_days(*, pool: GpuPool, start: date, end: date) -> list[PoolDay]:
    """Step 3: the pool-day rows of [start, end], locked in day order.

    The rows must exist (`ensure_ledger_rows`, before the transaction)."""
    return _lock_days(PoolDay.objects.filter(pool=pool), pool, start, end)


def _lock_days(rows: QuerySet[Day], owner: object, start: date, end: date) -> list[Day]:
    """The ledger rows of one pool or site (`owner`) over [start, end], locked in day order;
    every day must have its row."""
    assert transaction.get_connection().in_atomic_block
    locked = list(rows.select_for_update().filter(day__range=(start, end)).order_by("day"))
    if len(locked) != (end - start).days + 1:
        raise LedgerRowsMissing(f"{owner} has no ledger rows for all of {start}..{end}.")
    return locked


class LedgerRowsMissing(RuntimeError):
    """A lock was asked for ledger rows that were not made first: a programming error."""


def program_days(
    *,
    pool: GpuPool,
    start: date,
    end: date,
    make_for: Program | None = None,
    make_for_ids: Sequence[UUID] = (),
) -> dict[tuple[UUID, date], ProgramDay]:
    """The program-day rows of a pool's window, by (program id, day).

    Call only while holding the pool-day locks of the window: they guard these rows.
    `make_for` (a program) or `make_for_ids` (several, for a cycle) makes the missing rows
    of those programs first, in one statement.
    """
    programs = sorted({*make_for_ids, *([make_for.pk] if make_for is not None else [])})
    # No ordering: the model's default one would join and sort while the locks are held.
    rows = ProgramDay.objects.filter(pool=pool, day__range=(start, end)).order_by()
    found = {(row.program_id, row.day): row for row in rows}
    days = list(selectors.days_between(start, end))
    missing = [
        ProgramDay(pool_id=pool.pk, program_id=program_id, day=day)
        for program_id in programs
        for day in days
        if (program_id, day) not in found
    ]
    if missing:
        ProgramDay.objects.bulk_create(missing, ignore_conflicts=True)
        found = {(row.program_id, row.day): row for row in rows.all()}
    return found


def lock_site_days(*, site: Site, start: date, end: date) -> list[SiteDay]:
    """Step 4: the site-day rows of [start, end], locked in day order (they must exist)."""
    return _lock_days(SiteDay.objects.filter(site=site), site, start, end)


def lock_all_site_days(*, site_ids: Sequence[UUID]) -> list[SiteDay]:
    """Step 4, for an energy re-pricing: every site-day row of the sites, by site then day.

    Holding them all, a re-pricing waits for the decisions on those days and they for it; a
    row made meanwhile is made under the site's lock, which the re-pricing holds too."""
    assert transaction.get_connection().in_atomic_block
    return list(
        SiteDay.objects.select_for_update()
        .filter(site_id__in=set(site_ids))
        .order_by("site_id", "day")
    )


def envelope_wh(power_mw: Decimal) -> int:
    """A day's energy envelope in Wh for a facility power in MW (below zero counts as none)."""
    return max(int(power_mw * 1_000_000 * HOURS_PER_DAY), 0)


def lock_applications(*, application_ids: Sequence[UUID]) -> dict[UUID, tuple[str, int]]:
    """Step 5, for an admission cycle: its application rows, locked by id; each one's
    (status, submission) as it is now."""
    rows = (
        Application.objects.select_for_update()
        .filter(pk__in=application_ids)
        .order_by("pk")
        .values_list("pk", "status", "submission")
    )
    return {pk: (status, submission) for pk, status, submission in rows}


def lock_allocations(*, allocation_ids: Sequence[UUID]) -> dict[UUID, Allocation]:
    """Step 5, after the applications: the allocations a cycle's changes apply to, by id."""
    if not allocation_ids:
        return {}
    rows = Allocation.objects.select_for_update().filter(pk__in=set(allocation_ids)).order_by("pk")
    return {row.pk: row for row in rows}


def lock_application(*, application_id: UUID) -> Application:
    """Step 5: the application row."""
    return Application.objects.select_for_update().get(pk=application_id)


def lock_allocation(*, allocation_id: UUID) -> Allocation:
    """Step 5, after the application: the allocation row."""
    return Allocation.objects.select_for_update().get(pk=allocation_id)
