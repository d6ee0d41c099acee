"""The outbox in the admin, read-only: what waits, what runs where, what failed and why."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from outbox.models import Effect, Worker


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Effect)
class EffectAdmin(ReadOnly):
    list_display = ("id", "task", "queue", "state", "delivery", "claimed_by", "created_at")
    list_filter = ("state", "queue", "task")
    search_fields = ("key", "claimed_by")
    ordering = ("-id",)


@admin.register(Worker)
class WorkerAdmin(ReadOnly):
    list_display = ("name", "started_at", "seen_at")
    ordering = ("-seen_at",)
