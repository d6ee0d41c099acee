"""The reports: the capacity timeline, the shares that show the local-priority promise kept,
and the turnaround of decisions against each program's published target."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from allocations import quantities
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
    UsageRecord,
)
from allocations.selectors.inventory import days_between, pool_capacity_days, site_power_days

SECONDS_PER_HOUR = 3600
GRANTING = (
    AllocationStatus.SCHEDULED,
    AllocationStatus.ACTIVE,
    AllocationStatus.EXHAUSTED,
    AllocationStatus.EXPIRED,
    AllocationStatus.SUSPENDED,
    AllocationStatus.RELEASED,
)


def capacity_timeline(
    *, site: Site, pools: list[GpuPool], start: date, end: date
) -> list[dict[str, Any]]:
    """Per day over the pools (all of a site, or one): capacity, committed, held, used, free
    GPU-hours, the site's power envelope and committed and held MW (as
    `allocations/quantities.py` defines them), and committed GPU-hours per program. Used is
    what usage records report for jobs that ended that day. A fixed number of queries per
    pool; O(days × (pools + programs))."""
    day_list = list(days_between(start, end))
    totals = _pool_totals(pools, start, end)
    programs = _program_totals(pools, start, end)
    used = _used_by_day(pools, start, end)
    site_rows = {row.day: row for row in SiteDay.objects.filter(site=site, day__range=(start, end))}
    envelopes = {
        day.day: day.power_envelope_mw for day in site_power_days(site=site, start=start, end=end)
    }
    result = []
    for day in day_list:
        capacity, committed, held = totals[day]
        site_row = site_rows.get(day)
        result.append(
            {
                "day": day,
                "capacity_gpu_hours": capacity,
                "committed_gpu_hours": committed,
                "held_gpu_hours": held,
                "used_gpu_hours": used.get(day, Decimal(0)).quantize(Decimal("0.01")),
                "free_gpu_hours": quantities.free(capacity, committed, held),
                "power_envelope_mw": (
                    quantities.mw(site_row.envelope_wh)
                    if site_row
                    else envelopes[day].quantize(quantities.MW)
                ),
                "committed_mw": quantities.mw(site_row.committed_wh if site_row else 0),
                "held_mw": quantities.mw(site_row.held_wh if site_row else 0),
                "programs": dict(sorted(programs[day].items())),
            }
        )
    return result


def _pool_totals(pools: list[GpuPool], start: date, end: date) -> dict[date, tuple[int, int, int]]:
    """(capacity, committed, held) GPU-hours per day, summed over the pools: the ledger's
    rows, and the inventory's capacity on days the ledger has no row for."""
    totals: dict[date, tuple[int, int, int]] = defaultdict(lambda: (0, 0, 0))
    for pool in pools:
        ledger = {
            row.day: row for row in PoolDay.objects.filter(pool=pool, day__range=(start, end))
        }
        for computed in pool_capacity_days(pool=pool, start=start, end=end):
            row = ledger.get(computed.day)
            capacity, committed, held = totals[computed.day]
            totals[computed.day] = (
                capacity + (row.capacity_gpu_hours if row else computed.capacity_gpu_hours),
                committed + (row.committed_gpu_hours if row else 0),
                held + (row.held_gpu_hours if row else 0),
            )
    return totals


def _program_totals(pools: list[GpuPool], start: date, end: date) -> dict[date, dict[str, int]]:
    """Committed GPU-hours per day and program slug, summed over the pools."""
    slugs = dict(Program.objects.values_list("pk", "slug"))
    totals: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for program_id, day, committed in ProgramDay.objects.filter(
        pool__in=pools, day__range=(start, end)
    ).values_list("program_id", "day", "committed_gpu_hours"):
        totals[day][slugs[program_id]] += committed
    return totals


def _used_by_day(pools: list[GpuPool], start: date, end: date) -> dict[date, Decimal]:
    """GPU-hours that usage records report for jobs that ended each day, over the pools."""
    used = (
        UsageRecord.objects.filter(allocation__pool__in=pools, ended_at__date__range=(start, end))
        .annotate(day=TruncDate("ended_at"))
        .values("day")
        .annotate(seconds=Sum("gpu_seconds"))
    )
    return {usage["day"]: Decimal(usage["seconds"]) / SECONDS_PER_HOUR for usage in used}


def _hours(seconds: int | None) -> Decimal:
    return (Decimal(seconds or 0) / SECONDS_PER_HOUR).quantize(Decimal("0.01"))


def shares_report(*, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """Granted and used GPU-hours by program, country and organization kind, and the
    fraction that went to Norwegian organizations. Allocations starting in [start, end]
    when given. Three grouped queries."""
    allocations = Allocation.objects.filter(status__in=GRANTING)
    if start:
        allocations = allocations.filter(start_date__gte=start)
    if end:
        allocations = allocations.filter(start_date__lte=end)

    def grouped(field: str) -> list[dict[str, Any]]:
        rows = (
            allocations.values(key=F(field))
            .annotate(granted=Sum("granted_gpu_hours"), used=Sum("used_gpu_seconds"))
            .order_by("-granted", "key")
        )
        return [
            {
                "key": str(row["key"]),
                "granted_gpu_hours": row["granted"] or 0,
                "used_gpu_hours": _hours(row["used"]),
            }
            for row in rows
        ]

    by_country = grouped("organization__country")
    total = sum(row["granted_gpu_hours"] for row in by_country)
    norwegian = sum(row["granted_gpu_hours"] for row in by_country if row["key"] == "NO")
    return {
        "granted_gpu_hours": total,
        "norwegian_fraction": (Decimal(norwegian) / total).quantize(Decimal("0.0001"))
        if total
        else Decimal(0),
        "by_program": grouped("program__slug"),
        "by_country": by_country,
        "by_organization_kind": grouped("organization__kind"),
    }


# The turnaround report's window of decision days: the last 90 by default (a quarter, long
# enough for the slowest published target to show), at most 366 at a time. Its cost is that
# of the decisions inside it, served by the `application_decided` index, whatever the history.
TURNAROUND_DEFAULT_DAYS = 90
TURNAROUND_MAX_DAYS = 366


def turnaround_window(*, start: date | None = None, end: date | None = None) -> tuple[date, date]:
    """The days of decisions the turnaround report covers, both included: `end` defaults to
    today, `start` to `TURNAROUND_DEFAULT_DAYS` days up to `end`. Checking the span against
    `TURNAROUND_MAX_DAYS` is the caller's (the query serializer's)."""
    end = end or timezone.localdate()
    start = start or end - timedelta(days=TURNAROUND_DEFAULT_DAYS - 1)
    return start, end


def turnaround_report(
    *, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """Per program: applications with a final decision (approved or rejected) made on a day
    from `start` to `end` (see `turnaround_window` for the defaults: the last 90 days), the
    median and 90th percentile time from submission to decision in hours, and the fraction
    decided within the published `turnaround_days`.

    On PostgreSQL one aggregate query (percentiles included) over the window's decisions,
    read through the `application_decided` index: the answer holds one row per program, and
    its cost is that of the window, not of the history. Elsewhere (the embedded SQLite, which
    has no percentile aggregate) the window's times are read as a stream of numbers."""
    first_day, last_day = turnaround_window(start=start, end=end)
    since = timezone.make_aware(datetime.combine(first_day, time.min))
    until = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), time.min))
    programs = list(Program.objects.order_by("priority", "name"))
    if connection.vendor == "postgresql":
        figures = _turnaround_in_sql(since=since, until=until)
    else:
        figures = _turnaround_in_python(programs, since=since, until=until)
    report = []
    for program in programs:
        decided, median, p90, within = figures.get(program.pk, (0, None, None, 0))
        report.append(
            {
                "program": program.slug,
                "turnaround_days": program.turnaround_days,
                "decided": decided,
                "median_hours": None if median is None else round(median, 2),
                "p90_hours": None if p90 is None else round(p90, 2),
                "within_target_fraction": round(within / decided, 4) if decided else None,
            }
        )
    return report


# The conditions repeat those of the `application_decided` index, so that the planner reads
# the window from it.
TURNAROUND_SQL = """
SELECT decision.program_id,
    count(*),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY decision.seconds),
    percentile_disc(0.9) WITHIN GROUP (ORDER BY decision.seconds),
    count(*) FILTER (WHERE decision.seconds <= program.turnaround_days * 86400)
FROM (
    SELECT application.program_id,
        extract(epoch FROM application.decided_at - application.submitted_at)::float8 AS seconds
    FROM allocations_application application
    WHERE application.status IN (%s, %s)
        AND application.submitted_at IS NOT NULL
        AND application.decided_at IS NOT NULL
        AND application.decided_at >= %s
        AND application.decided_at < %s
) decision
JOIN allocations_program program ON program.id = decision.program_id
GROUP BY decision.program_id
"""


def _turnaround_in_sql(
    *, since: datetime, until: datetime
) -> dict[Any, tuple[int, float | None, float | None, int]]:
    """Per program, of the decisions made from `since` (included) to `until` (excluded):
    decided, median hours, nearest-rank p90 hours (`percentile_disc` is the nearest rank),
    decided within the target."""
    with connection.cursor() as cursor:
        cursor.execute(
            TURNAROUND_SQL,
            [ApplicationStatus.APPROVED, ApplicationStatus.REJECTED, since, until],
        )
        return {
            program_id: (
                decided,
                median / SECONDS_PER_HOUR,
                p90 / SECONDS_PER_HOUR,
                within,
            )
            for program_id, decided, median, p90, within in cursor.fetchall()
        }


def _turnaround_in_python(
    programs: list[Program], *, since: datetime, until: datetime
) -> dict[Any, tuple[int, float | None, float | None, int]]:
    decided = Application.objects.filter(
        status__in=(ApplicationStatus.APPROVED, ApplicationStatus.REJECTED),
        submitted_at__isnull=False,
        decided_at__isnull=False,
        decided_at__gte=since,
        decided_at__lt=until,
    ).values_list("program_id", "submitted_at", "decided_at")
    hours: dict[Any, list[float]] = defaultdict(list)
    for program_id, submitted_at, decided_at in decided.iterator(chunk_size=5_000):
        if submitted_at and decided_at:  # filtered above; the types do not know it
            hours[program_id].append((decided_at - submitted_at).total_seconds() / SECONDS_PER_HOUR)
    figures: dict[Any, tuple[int, float | None, float | None, int]] = {}
    targets = {program.pk: program.turnaround_days * 24 for program in programs}
    for program_id, times in hours.items():
        times.sort()
        target = targets.get(program_id, 0)
        figures[program_id] = (
            len(times),
            statistics.median(times),
            # the nearest-rank 90th percentile
            times[math.ceil(0.9 * len(times)) - 1],
            sum(1 for value in times if value <= target),
        )
    return figures
