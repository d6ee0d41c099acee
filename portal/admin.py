"""The admin's base classes: the portal's rows change through its services, so the admin
lists and shows them, and changes them only through actions that call those services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse


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
