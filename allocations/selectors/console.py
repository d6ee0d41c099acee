"""Reads of the operators' console: what waits for a decision and for how long against each
program's published target, the headroom of every pool, the days and allocations at risk,
the latest decisions, and the figures an application's decision depends on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, F, Min, QuerySet
from django.utils import timezone

from allocations.models import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationStatus,
    GpuPool,
    PoolDay,
    Program,
    QuotaUsage,
    SiteDay,
)
from allocations.selectors.capacity import capacity_days
from allocations.shares import daily_shares

HORIZONS = (30, 90)
LIVE = (AllocationStatus.SCHEDULED, AllocationStatus.ACTIVE, AllocationStatus.EXHAUSTED)
# The longest window drawn day by day on an application's page; the program bounds are
# usually far shorter.
MOST_DAYS_DRAWN = 400


@dataclass(frozen=True)
class Waiting:
    """Applications of one program waiting in one status, and the oldest one's age."""

    program: Program
    count: int
    oldest_submitted_at: datetime | None
    now: datetime

    @property
    def oldest_age(self) -> timedelta | None:
        return self.now - self.oldest_submitted_at if self.oldest_submitted_at else None

    @property
    def oldest_age_days(self) -> float | None:
        age = self.oldest_age
        return round(age.total_seconds() / 86400, 1) if age is not None else None

    @property
    def past_target(self) -> bool:
        age = self.oldest_age
        return age is not None and age > timedelta(days=self.program.turnaround_days)


def waiting_by_program(*, status: str, now: datetime | None = None) -> list[Waiting]:
    """Per program with any, the applications in `status` (in review, or waitlisted), and
    the submission time of the oldest. Two queries."""
    now = now or timezone.now()
    rows = (
        Application.objects.filter(status=status)
        .order_by()
        .values("program")
        .annotate(count=Count("pk"), oldest=Min("submitted_at"))
    )
    by_program = {row["program"]: row for row in rows}
    programs = Program.objects.filter(pk__in=by_program).order_by("priority", "name")
    return [
        Waiting(
            program=program,
            count=by_program[program.pk]["count"],
            oldest_submitted_at=by_program[program.pk]["oldest"],
            now=now,
        )
        for program in programs
    ]


def pool_headroom(*, today: date | None = None) -> list[dict[str, Any]]:
    """Per pool, for the next 30 and 90 days from today: capacity, reserved (committed and
    held) and free GPU-hours, the free fraction, and the tightest day; and the overcommitted
    days of the 90. A fixed number of queries per pool."""
    today = today or timezone.localdate()
    result = []
    for pool in GpuPool.objects.select_related("site", "accelerator").order_by("name"):
        days = capacity_days(pool=pool, start=today, end=today + timedelta(days=max(HORIZONS) - 1))
        horizons = []
        for length in HORIZONS:
            window = days[:length]
            capacity = sum(day["capacity_gpu_hours"] for day in window)
            reserved = sum(day["committed_gpu_hours"] + day["held_gpu_hours"] for day in window)
            tightest = min(window, key=lambda day: day["free_gpu_hours"])
            horizons.append(
                {
                    "days": length,
                    "capacity_gpu_hours": capacity,
                    "reserved_gpu_hours": reserved,
                    "free_gpu_hours": max(capacity - reserved, 0),
                    "free_percent": round(100 * (capacity - reserved) / capacity, 1)
                    if capacity
                    else 0.0,
                    "tightest_day": tightest["day"],
                    "tightest_free_gpu_hours": tightest["free_gpu_hours"],
                }
            )
        result.append(
            {
                "pool": pool,
                "horizons": horizons,
                "overcommitted_days": [day["day"] for day in days if day["overcommitted"]],
            }
        )
    return result


def overcommitted_day_count(*, today: date | None = None) -> int:
    """Days from today on where a pool has more reserved than capacity, or a site more
    reserved energy than its envelope. Two queries."""
    today = today or timezone.localdate()
    pools = PoolDay.objects.filter(
        day__gte=today, capacity_gpu_hours__lt=F("committed_gpu_hours") + F("held_gpu_hours")
    ).count()
    sites = SiteDay.objects.filter(
        day__gte=today, envelope_wh__lt=F("committed_wh") + F("held_wh")
    ).count()
    return pools + sites


def overcommitted_days_by_pool(
    *, pools: list[GpuPool], start: date, end: date
) -> list[tuple[GpuPool, list[date]]]:
    """The pools with days in [start, end] that have more reserved than capacity, each with
    those days. One query."""
    days: dict[Any, list[date]] = {}
    for pool_id, day in (
        PoolDay.objects.filter(
            pool__in=pools,
            day__range=(start, end),
            capacity_gpu_hours__lt=F("committed_gpu_hours") + F("held_gpu_hours"),
        )
        .order_by("day")
        .values_list("pool_id", "day")
    ):
        days.setdefault(pool_id, []).append(day)
    return [(pool, days[pool.pk]) for pool in pools if pool.pk in days]


def allocations_at_risk() -> QuerySet[Allocation]:
    """Live allocations flagged because capacity shrank under some of their days."""
    return (
        Allocation.objects.filter(at_risk=True, status__in=LIVE)
        .select_related("application", "organization", "program", "pool")
        .order_by("start_date")
    )


def recent_decisions(*, limit: int = 8) -> QuerySet[Application]:
    """The latest final decisions (approved or rejected), newest first."""
    return (
        Application.objects.filter(
            status__in=(ApplicationStatus.APPROVED, ApplicationStatus.REJECTED),
            decided_at__isnull=False,
        )
        .select_related("organization", "program", "decided_by")
        .order_by("-decided_at")[:limit]
    )


def console_summary(*, today: date | None = None) -> dict[str, Any]:
    """Everything the console's index shows, in a fixed number of queries per pool."""
    in_review = waiting_by_program(status=ApplicationStatus.IN_REVIEW)
    waitlisted = waiting_by_program(status=ApplicationStatus.WAITLISTED)
    at_risk = allocations_at_risk()
    programs = {row.program.pk: row.program for row in (*in_review, *waitlisted)}
    review_of = {row.program.pk: row for row in in_review}
    waitlist_of = {row.program.pk: row for row in waitlisted}
    waiting = [
        {"program": program, "in_review": review_of.get(pk), "waitlisted": waitlist_of.get(pk)}
        for pk, program in sorted(
            programs.items(), key=lambda item: (item[1].priority, item[1].name)
        )
    ]
    return {
        "waiting": waiting,
        "in_review": in_review,
        "in_review_count": sum(row.count for row in in_review),
        "waitlisted": waitlisted,
        "waitlisted_count": sum(row.count for row in waitlisted),
        "pools": pool_headroom(today=today),
        "overcommitted_day_count": overcommitted_day_count(today=today),
        "at_risk": list(at_risk[:10]),
        "at_risk_count": at_risk.count(),
        "recent_decisions": list(recent_decisions()),
    }


def _days_drawn(application: Application, shares: list[int]) -> list[dict[str, Any]]:
    """Per day of the application's window (its first MOST_DAYS_DRAWN), its share and what
    its program and its pool can still take."""
    start = application.start_date
    end = min(application.end_date, start + timedelta(days=MOST_DAYS_DRAWN - 1))
    days = []
    for index, day in enumerate(capacity_days(pool=application.pool, start=start, end=end)):
        part = next(p for p in day["programs"] if p.program.pk == application.program_id)
        days.append(
            {
                "day": day["day"],
                "share": shares[index],
                "program_free": part.free_gpu_hours,
                "pool_free": day["free_gpu_hours"],
                "overcommitted": day["overcommitted"],
            }
        )
    return days


def application_decision_context(*, application: Application) -> dict[str, Any]:
    """What a reviewer reads beside an application: per day of its window its share, what
    its program and its pool can still take; the days short; the organization's quota in
    the program. An application that holds capacity (in review) is inside the reserved
    figures already, so its approval needs nothing more from them."""
    shares = daily_shares(
        gpu_hours=application.gpu_hours, start=application.start_date, end=application.end_date
    )
    days = _days_drawn(application, shares)
    holds = application.holds_capacity
    # In review it holds its capacity and quota; approved, they are committed: either way the
    # figures count it already.
    counted = holds or application.status == ApplicationStatus.APPROVED
    short = [
        row["day"]
        for row in days
        if not holds and row["share"] > min(row["program_free"], row["pool_free"])
    ]
    quota = QuotaUsage.objects.filter(
        organization_id=application.organization_id, program_id=application.program_id
    ).first()
    held = quota.held_gpu_hours if quota else 0
    cap = application.program.org_cap_gpu_hours
    return {
        "days": days,
        "drawn_days": len(days),
        "window_days": application.days,
        "holds_capacity": holds,
        "short_days": short,
        "daily_share": max(shares, default=0),
        "program_free_least": min((row["program_free"] for row in days), default=0),
        "pool_free_least": min((row["pool_free"] for row in days), default=0),
        "quota_held": held,
        "quota_cap": cap,
        "counted": counted,
        "quota_after": held if counted else held + application.gpu_hours,
        "quota_fits": (held if counted else held + application.gpu_hours) <= cap,
    }
