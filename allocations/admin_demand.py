"""The admin of the demand side: applications (with the review queue and the waitlist),
allocations and the capacity ledger. Everything here is read-only except through actions
that call the services, so nothing bypasses them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest

from accounts.models import User
from allocations.models import (
    Allocation,
    Application,
    ApplicationStatus,
    BackendCall,
    PoolDay,
    QuotaUsage,
    SchedulerCheck,
    SiteDay,
    UsageRecord,
)
from allocations.models.demand import ReviewQueueItem, WaitlistItem
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from allocations.services import usage as usage_services
from portal.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Rows change only through services: no add, no edit, no delete here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DecisionForm(ActionForm):
    reason = forms.CharField(
        required=False, max_length=2000, help_text="Shown to the applicant with the decision."
    )


def _for_each(
    admin_view: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    service: Callable[..., Any],
    done_message: str,
    **arguments: Any,
) -> int:
    """Call a service for each selected row; a refusal is reported and the rest go on."""
    user = request.user
    assert isinstance(user, User)
    done = 0
    for row in queryset:
        try:
            service(row, actor=user, **arguments)
            done += 1
        except DomainError as error:
            admin_view.message_user(request, f"{row}: {error.message}", messages.ERROR)
    if done:
        admin_view.message_user(request, f"{done} {done_message}.", messages.SUCCESS)
    return done


def _decide(
    admin_view: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Application],
    approve: bool,
) -> None:
    """Decide each selected application through the service, which refuses anyone but a
    reviewer of its program who is no member of the applying organization."""
    if not request.user.has_perm("allocations.change_application"):
        raise PermissionDenied
    reason = (request.POST.get("reason") or "").strip()
    if not reason:
        admin_view.message_user(request, "Give a reason with the decision.", messages.ERROR)
        return
    decide = services.application_approve if approve else services.application_reject
    _for_each(
        admin_view,
        request,
        queryset.select_related("program"),
        lambda application, **kw: decide(application=application, **kw),
        "application(s) " + ("approved" if approve else "rejected"),
        note=reason,
    )


@admin.action(description="Approve the selected applications (reviewers)", permissions=["change"])
def approve_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Application]
) -> None:
    _decide(admin_view, request, queryset, approve=True)


@admin.action(description="Reject the selected applications (reviewers)", permissions=["change"])
def reject_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Application]
) -> None:
    _decide(admin_view, request, queryset, approve=False)


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = [
        "title",
        "organization",
        "program",
        "pool",
        "gpu_hours",
        "start_date",
        "end_date",
        "status",
        "risk_category",
        "submitted_at",
        "decided_at",
    ]
    list_filter = ["status", "program", "pool", "kind", "risk_category", "data_stays_in_eea"]
    search_fields = ["title", "organization__name", "applicant__email", "model_lineage"]
    date_hierarchy = "submitted_at"
    list_select_related = ["organization", "program", "pool"]
    action_form = DecisionForm
    actions = [approve_selected, reject_selected]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The changelist accepts actions from those granted the change of applications; the
        # change form itself stays read-only.
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Application._meta.fields]


@admin.register(ReviewQueueItem)
class ReviewQueueAdmin(ApplicationAdmin):
    """Applications in review, oldest first: what reviewers decide next."""

    list_display = [
        "title",
        "organization",
        "program",
        "gpu_hours",
        "start_date",
        "risk_category",
        "reason_codes",
        "submitted_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            .filter(status=ApplicationStatus.IN_REVIEW)
            .order_by("submitted_at")
        )

    @admin.display(description="why review")
    def reason_codes(self, application: Application) -> str:
        return ", ".join(reason["code"] for reason in application.reasons)


@admin.register(WaitlistItem)
class WaitlistAdmin(ApplicationAdmin):
    """Waitlisted applications in the order the worker re-checks them."""

    list_display = [
        "title",
        "organization",
        "program",
        "pool",
        "gpu_hours",
        "start_date",
        "end_date",
        "failed_day",
        "constraint",
        "submitted_at",
    ]
    actions = [reject_selected]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            .filter(status=ApplicationStatus.WAITLISTED)
            .order_by("program__priority", "submitted_at")
        )

    @admin.display(description="constraint")
    def constraint(self, application: Application) -> str:
        return application.reasons[0]["code"] if application.reasons else ""


@admin.action(
    description="Release the future days of the selected allocations",
    permissions=["change"],
)
def release_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Allocation]
) -> None:
    _for_each(admin_view, request, queryset,
              lambda allocation, **kw: allocation_services.allocation_release(
                  allocation=allocation, **kw), "allocation(s) released")  # fmt: skip


@admin.action(
    description="Suspend the selected allocations (the scheduler stops their jobs)",
    permissions=["change"],
)
def suspend_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Allocation]
) -> None:
    _for_each(admin_view, request, queryset,
              lambda allocation, **kw: usage_services.allocation_suspend(
                  allocation=allocation, **kw), "allocation(s) suspended")  # fmt: skip


@admin.action(
    description="Resume the selected allocations",
    permissions=["change"],
)
def resume_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Allocation]
) -> None:
    _for_each(admin_view, request, queryset,
              lambda allocation, **kw: usage_services.allocation_resume(
                  allocation=allocation, **kw), "allocation(s) resumed")  # fmt: skip


class BackendCallInline(admin.TabularInline[BackendCall, Allocation]):
    model = BackendCall
    extra = 0
    can_delete = False
    fields = ("created_at", "backend", "action", "outcome", "attempts", "commands", "detail")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        "program",
        "pool",
        "start_date",
        "end_date",
        "granted_gpu_hours",
        "used_gpu_hours",
        "energy_mwh",
        "status",
        "at_risk",
    ]
    list_filter = ["status", "at_risk", "program", "pool"]
    search_fields = ["organization__name", "application__title", "model_lineage"]
    list_select_related = ["organization", "program", "pool"]
    actions = [release_selected, suspend_selected, resume_selected]
    inlines = [BackendCallInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The actions need the change of allocations; the page of one allocation, read-only,
        # shows its backend calls to whoever may view it.
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Allocation._meta.fields]


class OvercommittedFilter(admin.SimpleListFilter):
    title = "overcommitted"
    parameter_name = "overcommitted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overcommitted: capacity shrank under commitments")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(
                capacity_gpu_hours__lt=F("committed_gpu_hours") + F("held_gpu_hours")
            )
        return queryset


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


class PowerOvercommittedFilter(admin.SimpleListFilter):
    title = "past the power envelope"
    parameter_name = "overcommitted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Reserved energy past the envelope")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(envelope_wh__lt=F("committed_wh") + F("held_wh"))
        return queryset


@admin.register(SiteDay)
class SiteDayAdmin(ReadOnlyAdmin):
    list_display = ["site", "day", "envelope_mw", "committed_mw", "held_mw"]
    list_filter = [PowerOvercommittedFilter, "site"]
    date_hierarchy = "day"

    @admin.display(description="envelope MW")
    def envelope_mw(self, row: SiteDay) -> str:
        return f"{row.envelope_wh / 24_000_000:.3f}"

    @admin.display(description="committed MW")
    def committed_mw(self, row: SiteDay) -> str:
        return f"{row.committed_wh / 24_000_000:.3f}"

    @admin.display(description="held MW")
    def held_mw(self, row: SiteDay) -> str:
        return f"{row.held_wh / 24_000_000:.3f}"


@admin.register(QuotaUsage)
class QuotaUsageAdmin(ReadOnlyAdmin):
    list_display = ["organization", "program", "held_gpu_hours"]
    list_filter = ["program"]
    search_fields = ["organization__name"]
    list_select_related = ["organization", "program"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "source",
        "external_id",
        "allocation",
        "gpu_seconds",
        "started_at",
        "ended_at",
        "energy_kwh",
        "received_at",
    ]
    list_filter = ["source"]
    search_fields = ["external_id", "allocation__organization__name"]
    date_hierarchy = "ended_at"
    list_select_related = ["allocation"]


@admin.register(BackendCall)
class BackendCallAdmin(ReadOnlyAdmin):
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
    search_fields = ["allocation__organization__name", "arguments"]
    list_select_related = ["allocation"]


@admin.register(SchedulerCheck)
class SchedulerCheckAdmin(ReadOnlyAdmin):
    """Each comparison of the scheduler with the portal (`scheduler_reconcile`, and the beat
    that runs it without mending): how many accounts drifted, and how."""

    list_display = ["checked_at", "backend", "drifted_accounts", "mended"]
    list_filter = ["backend", "mended"]
    date_hierarchy = "checked_at"
