"""The admin of the demand side: allocations, the capacity ledger, usage and the scheduler's
calls (applications, the review queue and the waitlist are in admin_applications.py).
Everything here is read-only except through actions that call the services, so nothing
bypasses them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.authz import signed_in
from allocations import quantities
from allocations.models import (
    Allocation,
    BackendCall,
    PoolDay,
    QuotaUsage,
    SchedulerCheck,
    SiteDay,
    UsageRecord,
)
from allocations.services import allocations as allocation_services
from portal.admin import ActionReport, ConditionsFilter, ReadOnlyAdmin, ReadOnlyInline, every_field

SECONDS_PER_HOUR = 3600


def _hours(seconds: int) -> str:
    return f"{Decimal(seconds) / SECONDS_PER_HOUR:,.2f}"


def _allocation_action(
    name: str, service: Callable[..., Allocation], description: str, done: str
) -> Callable[[admin.ModelAdmin[Any], HttpRequest, QuerySet[Allocation]], None]:
    """An admin action that calls an allocation service for each selected allocation, as
    the signed-in operator; a refusal is reported and the others go on."""

    def action(
        admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Allocation]
    ) -> None:
        actor = signed_in(request)
        with ActionReport(admin_view, request, done) as report:
            for allocation in queryset:
                with report.row(allocation):
                    service(allocation=allocation, actor=actor)

    action.__name__ = name
    return admin.action(description=description, permissions=["change"])(action)


release_selected = _allocation_action(
    "release_selected",
    allocation_services.allocation_release,
    "Release the future days of the selected allocations",
    "allocation(s) released",
)
suspend_selected = _allocation_action(
    "suspend_selected",
    allocation_services.allocation_suspend,
    "Suspend the selected allocations (the scheduler stops their jobs)",
    "allocation(s) suspended",
)
resume_selected = _allocation_action(
    "resume_selected",
    allocation_services.allocation_resume,
    "Resume the selected allocations",
    "allocation(s) resumed",
)
revoke_selected = _allocation_action(
    "revoke_selected",
    allocation_services.allocation_revoke,
    "Revoke the selected allocations for good (their future days go back to the ledger)",
    "allocation(s) revoked",
)


class BackendCallInline(ReadOnlyInline):
    model = BackendCall
    fields = ("created_at", "backend", "action", "outcome", "attempts", "commands", "detail")


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = [
        "title",
        "organization",
        "program",
        "pool",
        "start_date",
        "end_date",
        "granted_shown",
        "used_shown",
        "energy_mwh",
        "status",
        "at_risk",
    ]
    list_filter = ["status", "at_risk", "program", "pool"]
    search_fields = ["organization__name", "application__title", "model_lineage"]
    list_select_related = ["application", "organization", "program", "pool"]
    actions = [release_selected, suspend_selected, resume_selected, revoke_selected]
    inlines = [BackendCallInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "application",
                    "organization",
                    "program",
                    "pool",
                    "start_date",
                    "end_date",
                    "status",
                    "at_risk",
                    "released_from",
                ]
            },
        ),
        (
            "GPU-hours and energy",
            {
                "fields": [
                    "granted_shown",
                    "used_shown",
                    "remaining_shown",
                    "energy_kwh",
                    "notified_percent",
                    "expiry_notified",
                ]
            },
        ),
        ("AI Act", {"fields": ["model_lineage", "lineage_key"]}),
        ("Bookkeeping", {"classes": ["collapse"], "fields": ["created_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return super().get_queryset(request).select_related("application", "organization")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The actions need the change of allocations; the page of one allocation is read-only
        # (no Save: every field is) and shows its backend calls to whoever may view it.
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    readonly_fields = every_field(Allocation, "granted_shown", "used_shown", "remaining_shown")

    @admin.display(description="application", ordering="application__title")
    def title(self, allocation: Allocation) -> str:
        return allocation.application.title

    @admin.display(description="granted GPU-hours", ordering="granted_gpu_hours")
    def granted_shown(self, allocation: Allocation) -> str:
        return f"{allocation.granted_gpu_hours:,}"

    @admin.display(description="used GPU-hours", ordering="used_gpu_seconds")
    def used_shown(self, allocation: Allocation) -> SafeString:
        granted = allocation.granted_gpu_hours
        percent = 100 * allocation.used_gpu_hours / granted if granted else 0
        return format_html(
            '{} <span class="quiet">({} %)</span>',
            f"{allocation.used_gpu_hours:,.2f}",
            f"{percent:.0f}",
        )

    @admin.display(description="remaining GPU-hours")
    def remaining_shown(self, allocation: Allocation) -> str:
        return f"{allocation.remaining_gpu_hours:,.2f}"

    @admin.display(description="energy (MWh)")
    def energy_mwh(self, allocation: Allocation) -> Decimal:
        return allocation.energy_mwh


class OvercommittedFilter(ConditionsFilter):
    title = "overcommitted"
    parameter_name = "overcommitted"

    def conditions(self) -> dict[str, tuple[str, Q]]:
        past = Q(capacity_gpu_hours__lt=F("committed_gpu_hours") + F("held_gpu_hours"))
        return {"yes": ("Overcommitted: capacity shrank under commitments", past)}


@admin.register(PoolDay)
class PoolDayAdmin(ReadOnlyAdmin):
    list_display = [
        "pool",
        "day",
        "capacity_gpu_hours",
        "committed_gpu_hours",
        "held_gpu_hours",
        "free",
        "overcommitted",
    ]
    list_filter = [OvercommittedFilter, "pool"]
    date_hierarchy = "day"
    list_select_related = ["pool"]

    @admin.display(description="free GPU-hours")
    def free(self, row: PoolDay) -> int:
        return max(row.capacity_gpu_hours - row.reserved_gpu_hours, 0)

    @admin.display(boolean=True)
    def overcommitted(self, row: PoolDay) -> bool:
        return row.reserved_gpu_hours > row.capacity_gpu_hours


class PowerOvercommittedFilter(OvercommittedFilter):
    title = "past the power envelope"

    def conditions(self) -> dict[str, tuple[str, Q]]:
        past = Q(envelope_wh__lt=F("committed_wh") + F("held_wh"))
        return {"yes": ("Reserved energy past the envelope", past)}


@admin.register(SiteDay)
class SiteDayAdmin(ReadOnlyAdmin):
    list_display = ["site", "day", "envelope_mw", "committed_mw", "held_mw"]
    list_filter = [PowerOvercommittedFilter, "site"]
    date_hierarchy = "day"

    @admin.display(description="envelope MW")
    def envelope_mw(self, row: SiteDay) -> str:
        return str(quantities.mw(row.envelope_wh))

    @admin.display(description="committed MW")
    def committed_mw(self, row: SiteDay) -> str:
        return str(quantities.mw(row.committed_wh))

    @admin.display(description="held MW")
    def held_mw(self, row: SiteDay) -> str:
        return str(quantities.mw(row.held_wh))


@admin.register(QuotaUsage)
class QuotaUsageAdmin(ReadOnlyAdmin):
    list_display = ["organization", "program", "held_shown", "cap_shown"]
    list_filter = ["program"]
    search_fields = ["organization__name"]
    list_select_related = ["organization", "program"]

    @admin.display(description="held GPU-hours", ordering="held_gpu_hours")
    def held_shown(self, row: QuotaUsage) -> str:
        return f"{row.held_gpu_hours:,}"

    @admin.display(description="cap of the program (GPU-hours)")
    def cap_shown(self, row: QuotaUsage) -> str:
        return f"{row.program.org_cap_gpu_hours:,}"


class AllocationRowAdmin(ReadOnlyAdmin):
    """Rows of an allocation, listed and shown with its application and organization."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super()
            .get_queryset(request)
            .select_related("allocation__application", "allocation__organization")
        )


@admin.register(UsageRecord)
class UsageRecordAdmin(AllocationRowAdmin):
    list_display = [
        "source",
        "external_id",
        "allocation",
        "gpu_hours",
        "started_at",
        "ended_at",
        "energy_kwh",
        "received_at",
    ]
    list_filter = ["source"]
    search_fields = [
        "external_id",
        "allocation__organization__name",
        "allocation__application__title",
    ]
    date_hierarchy = "ended_at"
    fields = ("source", "external_id", "allocation", "gpu_hours", "gpu_seconds", "started_at",
              "ended_at", "energy_kwh", "received_at")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="GPU-hours", ordering="gpu_seconds")
    def gpu_hours(self, record: UsageRecord) -> str:
        return _hours(record.gpu_seconds)


@admin.register(BackendCall)
class BackendCallAdmin(AllocationRowAdmin):
    """What the scheduler was told, and how it went: the recording backend's record."""

    list_display = [
        "created_at",
        "backend",
        "action",
        "allocation",
        "outcome",
        "attempts",
        "finished_at",
    ]
    list_filter = ["backend", "action", "outcome"]
    search_fields = ["allocation__organization__name", "allocation__application__title"]


@admin.register(SchedulerCheck)
class SchedulerCheckAdmin(ReadOnlyAdmin):
    """Each comparison of the scheduler with the portal (`scheduler_reconcile`, and the beat
    that runs it without mending): how many accounts drifted, and how."""

    list_display = ["checked_at", "backend", "drifted_accounts", "mended"]
    list_filter = ["backend", "mended"]
    date_hierarchy = "checked_at"
