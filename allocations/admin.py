"""The admin of the inventory and the programs: editable, through the services only.

The demand side (applications, allocations, the ledger, usage) is in admin_demand.py.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet, Sum
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone

from accounts.models import User
from allocations import admin_demand  # noqa: F401 - registers the demand side
from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Program, Site
from allocations.selectors import pool_capacity_days
from allocations.services import inventory as services
from portal.errors import DomainError


def _actor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _changed_values(form: ModelForm[Any]) -> dict[str, Any]:
    concrete = {field.name for field in form.instance._meta.concrete_fields}
    return {name: form.cleaned_data[name] for name in form.changed_data if name in concrete}


class ServiceAdmin(admin.ModelAdmin[Any]):
    """Saves and deletes through the inventory services, so that every change is audited and
    rewrites the capacity ledger where it must. A refusal is shown as an error message."""

    actions = ["delete_through_services"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would delete without the services
        return actions

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if change:
            services.inventory_update(
                instance=obj, values=_changed_values(form), actor=_actor(request)
            )
        else:
            values = {
                field.name: getattr(obj, field.name)
                for field in obj._meta.concrete_fields
                if not field.primary_key and not getattr(field, "auto_now_add", False)
            }
            created = services.inventory_create(
                model=type(obj), values=values, actor=_actor(request)
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        services.inventory_delete(instance=obj, actor=_actor(request))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.inventory_delete(instance=obj, actor=_actor(request))
        changed = {obj.pk: fields for obj, fields in formset.changed_objects}
        for obj in instances:
            if obj in formset.new_objects:
                values = {
                    field.name: getattr(obj, field.name)
                    for field in obj._meta.concrete_fields
                    if not field.primary_key
                }
                services.inventory_create(model=type(obj), values=values, actor=_actor(request))
            else:
                values = {name: getattr(obj, name) for name in changed.get(obj.pk, [])}
                services.inventory_update(instance=obj, values=values, actor=_actor(request))

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as error:  # the change was rolled back; say why
            self.message_user(request, error.message, messages.ERROR)
            return self._redirect_back(request)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return self._redirect_back(request)

    def _redirect_back(self, request: HttpRequest) -> HttpResponseRedirect:
        return HttpResponseRedirect(request.path)

    @admin.action(description="Delete the selected rows (through the services)")
    def delete_through_services(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            try:
                services.inventory_delete(instance=obj, actor=_actor(request))
            except DomainError as error:
                self.message_user(request, f"{obj}: {error.message}", messages.ERROR)


class PowerPhaseInline(admin.TabularInline[PowerPhase, Site]):
    model = PowerPhase
    extra = 0
    fields = ("name", "power_mw", "online_from", "online_until")


@admin.register(Site)
class SiteAdmin(ServiceAdmin):
    list_display = ("name", "country", "pue", "power_now_mw", "pools", "capacity_chart")
    search_fields = ("name",)
    inlines = (PowerPhaseInline,)

    @admin.display(description="MW online today")
    def power_now_mw(self, site: Site) -> Any:
        today = timezone.localdate()
        phases = site.power_phases.filter(online_from__lte=today).exclude(online_until__lt=today)
        return phases.aggregate(total=Sum("power_mw"))["total"] or 0

    @admin.display(description="pools")
    def pools(self, site: Site) -> int:
        return site.pools.count()

    @admin.display(description="chart")
    def capacity_chart(self, site: Site) -> Any:
        from django.urls import reverse
        from django.utils.html import format_html

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


@admin.register(GpuPool)
class GpuPoolAdmin(ServiceAdmin):
    list_display = ("name", "site", "accelerator", "availability", "is_open", "gpus_today")
    list_filter = ("site", "accelerator", "is_open")
    search_fields = ("name",)
    list_select_related = ("site", "accelerator")
    inlines = (CapacityEventInline,)

    @admin.display(description="GPUs in service today")
    def gpus_today(self, pool: GpuPool) -> int:
        today = timezone.localdate()
        return pool_capacity_days(pool=pool, start=today, end=today)[0].gpus_in_service


class ProgramForm(forms.ModelForm[Program]):
    class Meta:
        model = Program
        fields = "__all__"  # noqa: DJ007 - the admin chooses the fields it shows

    def clean_nominal_share(self) -> Any:
        share = self.cleaned_data["nominal_share"]
        others = Program.objects.exclude(pk=self.instance.pk).aggregate(total=Sum("nominal_share"))
        if (others["total"] or 0) + share > 1:
            raise ValidationError(
                "The shares of all programs would sum to more than 1.", code="shares_exceeded"
            )
        return share


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
        "auto_approve_max_gpu_hours",
        "org_cap_gpu_hours",
        "turnaround_days",
        "is_open",
    )
    list_display_links = ("name",)
    list_filter = ("is_open",)
    search_fields = ("name", "slug")
    filter_horizontal = ("reviewers",)
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        assert isinstance(obj, Program)
        if change:
            services.program_update(
                program=obj, values=_changed_values(form), actor=_actor(request)
            )
        else:
            values = {
                field.name: form.cleaned_data[field.name]
                for field in Program._meta.concrete_fields
                if field.name in form.cleaned_data
            }
            obj.pk = services.program_create(values=values, actor=_actor(request)).pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        program = Program.objects.get(pk=form.instance.pk)
        services.program_set_reviewers(
            program=program, reviewers=form.cleaned_data.get("reviewers", []), actor=_actor(request)
        )
