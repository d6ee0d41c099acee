"""Helpers for the decision tests that are not fixtures."""

from __future__ import annotations

from typing import Any


def queued_tasks(callbacks: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """The tasks whose outbox rows the captured on-commit callbacks publish, by name and
    arguments, in the order they were written."""
    from outbox.models import Effect
    from outbox.services import publish_after_commit

    found = []
    for callback in callbacks:
        if getattr(callback, "func", None) is publish_after_commit:
            effect = Effect.objects.get(pk=callback.args[0])
            found.append((effect.task.rsplit(".", 1)[-1], tuple(effect.args)))
    return found


def said(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored reasons as the API and the pages give them: code, message and day (the stored
    message key and figures are how another language writes them again)."""
    return [
        {name: entry[name] for name in ("code", "message", "day") if name in entry}
        for entry in reasons
    ]
