"""Helpers for tests that look at the side effects services write to the outbox."""

from __future__ import annotations

from typing import Any


def queued(callbacks: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """The effects (task name, arguments) whose publication the captured on-commit callbacks
    would make, in the order they were written."""
    from outbox.models import Effect
    from outbox.services import publish_after_commit

    found = []
    for callback in callbacks:
        if getattr(callback, "func", None) is publish_after_commit:
            effect = Effect.objects.get(pk=callback.args[0])
            found.append((effect.task, tuple(effect.args)))
    return found


def run_effects(*, tasks: set[str] | None = None) -> int:
    """Run the effects not yet done in this process, as a worker would (the broker is the
    outside world), oldest first, until none is left; only those of `tasks` if given.
    Answers how many ran."""
    from celery import current_app

    from outbox.models import Effect

    ran = 0
    while True:
        waiting = Effect.objects.filter(state__in=("pending", "published")).order_by("id")
        if tasks is not None:
            waiting = waiting.filter(task__in=tasks)
        effect = waiting.first()
        if effect is None:
            return ran
        Effect.objects.filter(pk=effect.pk).update(state="done")
        current_app.tasks[effect.task](*effect.args)
        ran += 1
