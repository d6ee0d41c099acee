"""The audit trail in the admin: append-only, so read-only; newest first."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from allocations.reasons import message_of
from audit.models import AuditEvent
from portal.admin import ReadOnlyAdmin


def _changes_html(before: dict[str, Any], after: dict[str, Any]) -> SafeString:
    """Before and after as a table of the values that changed (all of them for a creation)."""
    keys = sorted(set(before) | set(after))
    changed = [key for key in keys if before.get(key) != after.get(key)] or keys
    if not changed:
        return format_html("{}", "–")

    def shown(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    rows = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
        ((key.replace("_", " "), shown(before.get(key)), shown(after.get(key))) for key in changed),
    )
    return format_html(
        "<table><thead><tr><th></th><th>before</th><th>after</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        rows,
    )


def _reasons_html(reasons: list[Any]) -> SafeString:
    if not reasons:
        return format_html("{}", "–")
    return format_html(
        '<ul style="margin:0;padding-left:1.2em">{}</ul>',
        format_html_join(
            "",
            "<li>{} ({})</li>",
            (
                (message_of(reason), str(reason.get("code", "")).replace("_", " "))
                if isinstance(reason, dict)
                else (str(reason), "")
                for reason in reasons
            ),
        ),
    )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail: append-only, so read-only here (no add, change or delete). Newest
    first, fifty to a page; one object's trail is `?target_id=<its id>`."""

    list_display = ("created_at", "verb", "target_type", "target_repr", "actor", "reasons_shown")
    list_filter = ("verb", "target_type")
    search_fields = ("target_repr",)
    search_help_text = "Search the changed object by its name."
    date_hierarchy = "created_at"
    list_select_related = ("actor", "target_type")
    list_per_page = 50
    ordering = ("-created_at",)
    fields = ("created_at", "actor", "verb", "target_type", "target_id", "target_repr",
              "changes", "reasons_shown")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="changes")
    def changes(self, event: AuditEvent) -> SafeString:
        return _changes_html(event.before, event.after)

    @admin.display(description="reasons")
    def reasons_shown(self, event: AuditEvent) -> SafeString:
        return _reasons_html(event.reasons)
