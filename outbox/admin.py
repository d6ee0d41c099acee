"""The outbox in the admin, read-only: what waits, what runs where, what failed and why."""

from __future__ import annotations

from django.contrib import admin

from outbox.models import Effect, Worker
from portal.admin import ReadOnlyAdmin


@admin.register(Effect)
class EffectAdmin(ReadOnlyAdmin):
    list_display = ("id", "task", "queue", "state", "delivery", "claimed_by", "created_at")
    list_filter = ("state", "queue", "task")
    search_fields = ("key", "claimed_by")
    ordering = ("-id",)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = ("name", "started_at", "seen_at")
    ordering = ("-seen_at",)
