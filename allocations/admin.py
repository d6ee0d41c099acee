"""The admin of the inventory and the programs: editable, through the services only.

Every save, inline save, delete and bulk delete calls allocations.services.inventory, so each
change is audited and rewrites the capacity ledger where it must. A refusal by a service (a
DomainError such as SharesExceeded or InUse) is shown as an error message, and the whole
change, inlines included, is rolled back with the admin's transaction.

The demand side (applications, allocations, the ledger, usage) is in admin_demand.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Model, OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_countries import countries

from accounts.authz import signed_in
from accounts.models import OrganizationKind, User
from allocations import admin_applications, admin_demand  # noqa: F401 - the demand side
from allocations.models import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PoolDay,
    PowerPhase,
    Program,
    ProgramDay,
    QuotaUsage,
    Site,
    SiteDay,
)
from allocations.services import inventory as services
from portal.admin import ActionReport
from portal.errors import DomainError

# Rows the services derive from the inventory and delete with it (the capacity ledger). The
# admin shows them read-only, which would otherwise forbid deleting what they hang from.
DERIVED_MODELS: tuple[type[Model], ...] = (PoolDay, ProgramDay, SiteDay, QuotaUsage)


def _values_to_create(obj: Model) -> dict[str, Any]:
    """The new row's concrete field values. Not its id: the admin clears a new parent's id
    while it builds the inlines, and the service makes one."""
    return {
        field.name: getattr(obj, field.name)
        for field in obj._meta.concrete_fields
        if not field.primary_key and not getattr(field, "auto_now_add", False)
    }


def _adopt(obj: Model, created: Model) -> None:
    """Make the admin's unsaved object stand for the row the service wrote, so that its log
    entry, its redirect and its inlines (their foreign key) refer to that row."""
    obj.pk = created.pk
    obj._state.adding = False
    obj._state.db = created._state.db


def _values_changed(obj: Model, changed: list[str]) -> dict[str, Any]:
    """The changed model fields of a form (not its `id`, `DELETE` or many-to-many fields)."""
    concrete = {field.name for field in obj._meta.concrete_fields if not field.primary_key}
    return {name: getattr(obj, name) for name in changed if name in concrete}


def _refusal(error: DomainError | ValidationError) -> str:
    if isinstance(error, DomainError):
        return error.message
    return " ".join(error.messages)


class ServiceAdmin(admin.ModelAdmin[Any]):
    """Saves, deletes and inline changes go through the inventory services."""

    actions = ["delete_selected"]

    def create_row(self, obj: Any, values: dict[str, Any], actor: User) -> Model:
        """The service call that creates the admin's row; answers the row written."""
        return services.inventory_create(model=type(obj), values=values, actor=actor)

    def update_row(self, obj: Any, values: dict[str, Any], actor: User) -> None:
        """The service call that changes the admin's row."""
        services.inventory_update(instance=obj, values=values, actor=actor)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = signed_in(request)
        if change:
            self.update_row(obj, _values_changed(obj, form.changed_data), actor)
        else:
            _adopt(obj, self.create_row(obj, _values_to_create(obj), actor))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.inventory_delete(instance=obj, actor=signed_in(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # Not reached through the admin's own action (replaced below); kept safe regardless.
        for obj in queryset:
            services.inventory_delete(instance=obj, actor=signed_in(request))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """The inline rows (power phases, capacity events), each through its service. Deletes
        come first, so that a day or a name freed by one can be taken by another."""
        actor = signed_in(request)
        formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.inventory_delete(instance=obj, actor=actor)
        for obj, changed in formset.changed_objects:
            values = _values_changed(obj, changed)
            services.inventory_update(instance=obj, values=values, actor=actor)
        for obj in formset.new_objects:
            values = _values_to_create(obj)
            _adopt(obj, services.inventory_create(model=type(obj), values=values, actor=actor))

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError) as error:
            # The admin's transaction was rolled back, inlines included: say why.
            self.message_user(request, _refusal(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, _refusal(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deletable, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        derived = {str(model._meta.verbose_name) for model in DERIVED_MODELS}
        perms_needed = {name for name in perms_needed if str(name) not in derived}
        return deletable, model_count, perms_needed, protected

    @admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """Django's confirmation page (with what is protected), then one service call per
        row. A refused row is reported and the others go on."""
        if not request.POST.get("post"):
            return django_delete_selected(self, request, queryset)
        actor = signed_in(request)
        with ActionReport(self, request, "deleted") as report:
            for obj in queryset:
                with report.row(obj), transaction.atomic():
                    self.log_deletions(request, type(obj)._default_manager.filter(pk=obj.pk))
                    services.inventory_delete(instance=obj, actor=actor)
        return None


class PowerPhaseInline(admin.TabularInline[PowerPhase, Site]):
    model = PowerPhase
    extra = 0
    fields = ("name", "power_mw", "online_from", "online_until")
    ordering = ("online_from", "name")


@admin.register(Site)
class SiteAdmin(ServiceAdmin):
    list_display = ("name", "country", "pue", "power_today_mw", "pool_count", "capacity_chart")
    list_filter = ("country",)
    search_fields = ("name",)
    inlines = (PowerPhaseInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Site]:
        today = timezone.localdate()
        online = (
            PowerPhase.objects.filter(site=OuterRef("pk"), online_from__lte=today)
            .filter(Q(online_until__isnull=True) | Q(online_until__gte=today))
            .values("site")
            .annotate(total=Sum("power_mw"))
            .values("total")
        )
        pools = (
            GpuPool.objects.filter(site=OuterRef("pk")).values("site").annotate(count=Count("pk"))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(power_today=Subquery(online), pool_total=Subquery(pools.values("count")))
        )

    @admin.display(description="MW online today", ordering="power_today")
    def power_today_mw(self, site: Site) -> Decimal:
        return site.power_today or Decimal(0)  # type: ignore[attr-defined]

    @admin.display(description="pools", ordering="pool_total")
    def pool_count(self, site: Site) -> int:
        return site.pool_total or 0  # type: ignore[attr-defined]

    @admin.display(description="chart")
    def capacity_chart(self, site: Site) -> SafeString:
        return format_html(
            '<a href="{}?site={}">capacity chart</a>', reverse("admin-capacity-chart"), site.pk
        )


@admin.register(AcceleratorModel)
class AcceleratorAdmin(ServiceAdmin):
    list_display = ("name", "board_power_w", "it_power_w", "peak_bf16_flops")
    search_fields = ("name",)


class CapacityEventInline(admin.TabularInline[CapacityEvent, GpuPool]):
    model = CapacityEvent
    extra = 0
    fields = ("effective_from", "gpus_in_service", "note")
    ordering = ("effective_from",)


@admin.register(GpuPool)
class GpuPoolAdmin(ServiceAdmin):
    list_display = ("name", "site", "accelerator", "availability", "is_open", "gpus_today")
    list_filter = ("is_open", "site", "accelerator")
    search_fields = ("name", "site__name", "accelerator__name")
    list_select_related = ("site", "accelerator")
    inlines = (CapacityEventInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[GpuPool]:
        # A pool's GPUs on a day are those of its latest capacity event on or before it.
        latest = (
            CapacityEvent.objects.filter(
                pool=OuterRef("pk"), effective_from__lte=timezone.localdate()
            )
            .order_by("-effective_from")
            .values("gpus_in_service")[:1]
        )
        return super().get_queryset(request).annotate(gpus_in_service_today=Subquery(latest))

    @admin.display(description="GPUs in service today", ordering="gpus_in_service_today")
    def gpus_today(self, pool: GpuPool) -> int:
        return pool.gpus_in_service_today or 0  # type: ignore[attr-defined]


SHARE_QUANTUM = Decimal("0.0001")  # the field's precision; SQLite sums decimals loosely


def _shares_of_others(program: Program) -> Decimal:
    others = Program.objects.exclude(pk=program.pk).aggregate(total=Sum("nominal_share"))
    return Decimal(others["total"] or 0).quantize(SHARE_QUANTUM)


class ProgramForm(forms.ModelForm[Program]):
    eligible_countries = forms.MultipleChoiceField(
        choices=lambda: [(country.code, country.name) for country in countries],
        required=False,
        widget=FilteredSelectMultiple("countries", is_stacked=False),
        help_text="None chosen: any country.",
    )
    eligible_kinds = forms.MultipleChoiceField(
        choices=OrganizationKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: any kind of organization.",
    )

    class Meta:
        model = Program
        fields = "__all__"  # noqa: DJ007 - the admin chooses the fields it shows

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "reviewers" in self.fields:
            # Active users, and those already reviewing, so that no edit drops one silently.
            current = Program.reviewers.through.objects.filter(program_id=self.instance.pk)
            field = self.fields["reviewers"]
            field.queryset = User.objects.filter(  # type: ignore[attr-defined]
                Q(is_active=True) | Q(pk__in=current.values("user_id"))
            )
        if "nominal_share" in self.fields:
            taken = _shares_of_others(self.instance)
            self.fields["nominal_share"].help_text = (
                f"Fraction of each pool's daily capacity reserved for this program. Other "
                f"programs hold {taken}: at most {Decimal(1) - taken} is left."
            )

    def clean_nominal_share(self) -> Decimal:
        """The service checks the sum again under lock; this shows the error on the form."""
        share = self.cleaned_data["nominal_share"]
        taken = _shares_of_others(self.instance)
        if taken + share > 1:
            raise ValidationError(
                f"The shares of all programs would sum to more than 1: others hold {taken}.",
                code="shares_exceeded",
            )
        return Decimal(share)


@admin.register(Program)
class ProgramAdmin(ServiceAdmin):
    form = ProgramForm
    list_display = (
        "priority",
        "name",
        "nominal_share",
        "lending_limit",
        "borrowing_limit",
        "min_gpu_hours",
        "max_gpu_hours",
        "max_duration_days",
        "auto_approve_max_gpu_hours",
        "org_cap_gpu_hours",
        "turnaround_days",
        "is_open",
    )
    list_display_links = ("name",)
    list_filter = ("is_open", "verification_required")
    search_fields = ("name", "slug")
    filter_horizontal = ("reviewers",)
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "priority", "is_open")}),
        (
            "Eligibility",
            {"fields": ("eligible_countries", "eligible_kinds", "verification_required")},
        ),
        (
            "Requests",
            {
                "fields": (
                    "min_gpu_hours",
                    "max_gpu_hours",
                    "max_duration_days",
                    "auto_approve_max_gpu_hours",
                    "org_cap_gpu_hours",
                )
            },
        ),
        ("Share of every pool", {"fields": ("nominal_share", "lending_limit", "borrowing_limit")}),
        ("Review", {"fields": ("turnaround_days", "reviewers")}),
    )

    def create_row(self, obj: Any, values: dict[str, Any], actor: User) -> Model:
        return services.program_create(values=values, actor=actor)

    def update_row(self, obj: Any, values: dict[str, Any], actor: User) -> None:
        services.program_update(program=obj, values=values, actor=actor)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Not form.save_m2m(): the reviewers change through the service, audited.
        services.program_set_reviewers(
            program=form.instance,
            reviewers=form.cleaned_data.get("reviewers", []),
            actor=signed_in(request),
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
