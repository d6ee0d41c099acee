"""Reads the applicants' pages put together from the apps' own selectors and rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Membership, Organization, User
from allocations.models import (
    Allocation,
    Application,
    ApplicationStatus,
    GpuPool,
    Program,
    QuotaUsage,
    Site,
)
from allocations.reasons import message_of
from allocations.selectors.capacity import capacity_days
from allocations.selectors.demand import allocation_list_for_user, application_list_for_user
from allocations.selectors.inventory import energy_kwh_per_gpu_hour, pool_capacity_days
from allocations.services.applications import eligibility_refusal

# How far ahead the programs page sums what a program can still take.
HORIZON_DAYS = 30

# A heading per reason code, in the reader's language; the stored message gives the detail.
REASON_TITLES = {
    "auto_approved": _("Approved automatically"),
    "above_auto_approve": _("Larger than the automatic limit: a reviewer decides"),
    "program_closed": _("The program is closed"),
    "not_eligible": _("Not eligible"),
    "pool_closed": _("The pool takes no applications"),
    "out_of_bounds": _("Outside the program's bounds"),
    "window_in_past": _("The window starts in the past"),
    "invalid_change": _("The change does not fit its allocation"),
    "prohibited_use": _("A use the AI Act prohibits"),
    "needs_review": _("High-risk AI use: a reviewer decides"),
    "data_outside_eea": _("Data leaves the EEA: a reviewer decides"),
    "systemic_risk": _("Systemic-risk training compute: a reviewer decides"),
    "over_quota": _("Over the organization's quota in the program"),
    "capacity_pool": _("The pool is full on a day of the window"),
    "capacity_program": _("The program's share is taken on a day of the window"),
    "capacity_power": _("The site's power is taken on a day of the window"),
    "approved": _("Approved by a reviewer"),
    "rejected": _("Rejected by a reviewer"),
    "hold_expired": _("The window started before a decision"),
}


# Kinds of organization as a program's eligibility names them, in the reader's language.
KIND_LABELS = {
    "university": _("universities"),
    "research_institute": _("research institutes"),
    "startup": _("startups"),
    "company": _("companies"),
    "public_sector": _("public bodies"),
}


def kind_labels(kinds: list[str]) -> list[str]:
    return [str(KIND_LABELS.get(kind, kind)) for kind in kinds]


@dataclass
class ProgramOffer:
    program: Program
    kinds: list[str]


@dataclass
class PoolOffer:
    pool: GpuPool
    gpus_in_service: int
    kwh_per_gpu_hour: Decimal


@dataclass
class SiteOffer:
    site: Site
    pools: list[PoolOffer]


def site_offer() -> dict[str, Any]:
    """What the site offers today: its pools with GPUs in service, and the open programs."""
    today = timezone.localdate()
    sites = []
    for site in Site.objects.order_by("name"):
        offers = []
        for pool in (
            GpuPool.objects.filter(site=site, is_open=True)
            .select_related("accelerator")
            .order_by("name")
        ):
            (day,) = pool_capacity_days(pool=pool, start=today, end=today)
            offers.append(
                PoolOffer(
                    pool=pool,
                    gpus_in_service=day.gpus_in_service,
                    kwh_per_gpu_hour=energy_kwh_per_gpu_hour(
                        accelerator=pool.accelerator, pue=site.pue
                    ),
                )
            )
        sites.append(SiteOffer(site=site, pools=offers))
    return {
        "sites": sites,
        "programs": [
            ProgramOffer(program=program, kinds=kind_labels(program.eligible_kinds))
            for program in Program.objects.filter(is_open=True).order_by("priority", "name")
        ],
    }


def memberships(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )


@dataclass
class PoolTake:
    pool: GpuPool
    program_free_today: int
    program_free_horizon: int
    pool_free_today: int


@dataclass
class EligibleProgram:
    program: Program
    organization: Organization
    quota_left: int
    pools: list[PoolTake] = field(default_factory=list)


def eligible_programs(*, user: User, today: date | None = None) -> list[EligibleProgram]:
    """Per organization of the user, the open programs it may apply to, with what each can
    still take: the organization's quota left in it, and per open pool the GPU-hours the
    program itself could still be granted today and over the next 30 days (its share, what
    others lend and the common part, as the decision counts them), beside the pool's free
    GPU-hours. Queries: a few per open pool, whatever the number of programs."""
    today = today or timezone.localdate()
    end = today + timedelta(days=HORIZON_DAYS - 1)
    organizations = [m.organization for m in memberships(user=user)]
    programs = list(Program.objects.filter(is_open=True).order_by("priority", "name"))
    pools = list(GpuPool.objects.filter(is_open=True).select_related("site").order_by("name"))
    per_pool = {pool.pk: capacity_days(pool=pool, start=today, end=end) for pool in pools}
    held = {
        (row.organization_id, row.program_id): row.held_gpu_hours
        for row in QuotaUsage.objects.filter(organization__in=organizations)
    }
    rows = []
    for organization in organizations:
        for program in programs:
            if eligibility_refusal(program=program, organization=organization) is not None:
                continue
            row = EligibleProgram(
                program=program,
                organization=organization,
                quota_left=max(
                    program.org_cap_gpu_hours - held.get((organization.pk, program.pk), 0), 0
                ),
            )
            for pool in pools:
                days = per_pool[pool.pk]
                parts = [
                    next(p for p in day["programs"] if p.program.pk == program.pk) for day in days
                ]
                row.pools.append(
                    PoolTake(
                        pool=pool,
                        program_free_today=parts[0].free_gpu_hours,
                        program_free_horizon=sum(p.free_gpu_hours for p in parts),
                        pool_free_today=days[0]["free_gpu_hours"],
                    )
                )
            rows.append(row)
    return rows


def program_rules(*, user: User) -> list[dict[str, Any]]:
    """The bounds of the programs the user's organizations may apply to, for the apply form
    to check in the browser before anything is sent (the server checks them again)."""
    seen: dict[Any, dict[str, Any]] = {}
    for row in eligible_programs(user=user):
        program = row.program
        entry = seen.setdefault(
            program.pk,
            {
                "id": str(program.pk),
                "name": program.name,
                "min_gpu_hours": program.min_gpu_hours,
                "max_gpu_hours": program.max_gpu_hours,
                "max_duration_days": program.max_duration_days,
                "auto_approve_max_gpu_hours": program.auto_approve_max_gpu_hours,
                "organizations": [],
            },
        )
        entry["organizations"].append(str(row.organization.pk))
    return list(seen.values())


def waitlist_position(*, application: Application) -> int | None:
    """1 for the first the worker re-checks in its pool: program priority, then submission."""
    if application.status != ApplicationStatus.WAITLISTED or application.submitted_at is None:
        return None
    ahead = (
        Application.objects.filter(pool_id=application.pool_id, status=ApplicationStatus.WAITLISTED)
        .filter(
            Q(program__priority__lt=application.program.priority)
            | Q(
                program__priority=application.program.priority,
                submitted_at__lt=application.submitted_at,
            )
        )
        .count()
    )
    return ahead + 1


@dataclass
class ApplicationRow:
    application: Application
    position: int | None


def applications(*, user: User) -> list[ApplicationRow]:
    """The applications of the user's organizations (not those they only review)."""
    found = list(
        application_list_for_user(user=user).filter(
            organization_id__in=Membership.objects.filter(user=user).values("organization_id")
        )[:200]
    )
    return [ApplicationRow(a, waitlist_position(application=a)) for a in found]


def reasons(application: Application) -> list[dict[str, Any]]:
    return [
        {
            "code": entry.get("code", ""),
            "title": REASON_TITLES.get(entry.get("code", ""), entry.get("code", "")),
            "message": message_of(entry),
            "day": entry.get("day"),
        }
        for entry in application.reasons or []
    ]


@dataclass
class AllocationRow:
    allocation: Allocation
    used_percent: int
    energy_estimate_mwh: Decimal


def allocations(*, user: User) -> list[AllocationRow]:
    found = allocation_list_for_user(user=user).select_related("program", "organization")[:200]
    rows = []
    for allocation in found:
        granted = allocation.granted_gpu_hours or 1
        used_percent = min(int(allocation.used_gpu_hours * 100 / granted), 100)
        estimate = (
            Decimal(allocation.granted_gpu_hours)
            * energy_kwh_per_gpu_hour(
                accelerator=allocation.pool.accelerator, pue=allocation.pool.site.pue
            )
            / 1000
        ).quantize(Decimal("0.1"))
        rows.append(AllocationRow(allocation, used_percent, estimate))
    return rows
