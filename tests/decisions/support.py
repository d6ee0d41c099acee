"""Helpers for the decision tests that are not fixtures."""

from __future__ import annotations

from typing import Any


def queued_tasks(callbacks: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """The Celery tasks that `delay_on_commit` left in captured on-commit callbacks, by name
    and arguments."""
    found = []
    for callback in callbacks:
        task = getattr(getattr(callback, "func", None), "__self__", None)
        if task is not None and hasattr(task, "name"):
            found.append((task.name.rsplit(".", 1)[-1], tuple(callback.args)))
    return found


def said(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored reasons as the API and the pages give them: code, message and day (the stored
    message key and figures are how another language writes them again)."""
    return [
        {name: entry[name] for name in ("code", "message", "day") if name in entry}
        for entry in reasons
    ]
