"""The outbox: one row per side effect, written in the transaction of its cause.

A row is `pending` until a relay publishes it to the broker as a Celery message, then
`published`; the worker that takes the message claims the row (its name and a lease) and
marks it `done` once the task has finished. Each publication carries the row's `delivery`
number: a relay that publishes a row again (its worker died, its lease ran out, its message
was never taken) raises the number, so that a late copy of an older message finds a newer
delivery and does nothing.
"""

from __future__ import annotations

from django.db import models


class Effect(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending (not yet published)"
        PUBLISHED = "published", "Published (queued or running)"
        DONE = "done", "Done"
        FAILED = "failed", "Failed (retries exhausted)"

    id = models.BigAutoField(primary_key=True)
    task = models.CharField(max_length=200, help_text="The Celery task's name.")
    queue = models.CharField(max_length=64)
    args = models.JSONField(default=list, blank=True)
    # What the effect is about, e.g. `decide:<application>:<submission>`: lets a caller see
    # whether the same effect is already on its way instead of writing it again.
    key = models.CharField(max_length=200, blank=True, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    delivery = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The relay's two questions: what is pending, and what is published and overdue.
            models.Index(
                fields=["state", "id"],
                name="outbox_effect_live",
                condition=models.Q(state__in=["pending", "published"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.args} ({self.state}, delivery {self.delivery})"


class Worker(models.Model):
    """A Celery worker's heartbeat: rows claimed by a worker unseen for a while are
    published again."""

    name = models.CharField(max_length=255, primary_key=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
