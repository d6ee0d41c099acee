"""The console's figures for the admin's index page (portal/templates/admin/index.html)."""

from __future__ import annotations

from typing import Any

from django import template

from allocations.selectors.console import console_summary

register = template.Library()


@register.simple_tag
def operators_console() -> dict[str, Any]:
    """The review queue, the waitlist, pool headroom, risks and recent decisions."""
    return console_summary()


@register.filter
def thousands(value: Any) -> str:
    """12345 as 12,345: GPU-hours are read in thousands."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)
