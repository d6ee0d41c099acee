"""The admin's base classes: the portal's rows change through its services, so the admin
lists and shows them, and changes them only through actions that call those services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse

from portal.errors import DomainError


def every_field(model: type[Model], *shown: str) -> list[str]:
    """A page whose every field is read-only: the model's fields, and the values the admin
    shows beside them (`shown`, its display methods)."""
    return [*(field.name for field in model._meta.fields), *shown]


class ActionReport:
    """What an admin action did to the rows it was given, reported to the user: a row whose
    service refuses (`with report.row(row): ...`) is reported by name and the action goes on
    with the next; at the end, "<count> <done>." for the rows done (also for none, with
    `report_none`)."""

    def __init__(
        self,
        model_admin: admin.ModelAdmin[Any],
        request: HttpRequest,
        done: str,
        *,
        report_none: bool = False,
    ) -> None:
        self.model_admin, self.request = model_admin, request
        self.done, self.report_none = done, report_none
        self.count = 0

    def __enter__(self) -> ActionReport:
        return self

    def __exit__(self, raised: type[BaseException] | None, *details: object) -> None:
        if raised is None and (self.count or self.report_none):
            self.model_admin.message_user(
                self.request, f"{self.count} {self.done}.", messages.SUCCESS
            )

    @contextmanager
    def row(self, row: object) -> Iterator[None]:
        try:
            yield
        except DomainError as error:
            self.model_admin.message_user(self.request, f"{row}: {error.message}", messages.ERROR)
        else:
            self.count += 1


class ConditionsFilter(admin.SimpleListFilter):
    """A list filter whose every choice keeps the rows of one condition: a subclass answers
    `conditions()`, `{value: (label, condition)}`."""

    def conditions(self) -> dict[str, tuple[str, Q]]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _condition) in self.conditions().items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        chosen = self.conditions().get(self.value() or "")
        return queryset.filter(chosen[1]) if chosen else queryset


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Listed and viewed only: no add, no edit, no delete here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        # A page whose every field is read-only saves nothing: no Save buttons on it, even
        # where the change permission is kept for the list's actions.
        if not add and not context["adminform"].form.fields:
            context.update(
                show_save=False, show_save_and_continue=False, show_save_and_add_another=False
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


class ActionsOnlyAdmin(ReadOnlyAdmin):
    """Read-only rows whose changelist takes actions that call the services. The actions
    need the change permission, so it is kept for the list alone; the page of one row is
    read-only."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)


class ReadOnlyInline(admin.TabularInline[Any, Any]):
    """Related rows shown on their parent's page, never added, changed or deleted there.
    A subclass names its `model` and `fields`; every field is read-only."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
