"""Usage reported by the site's scheduler, and the calls made to it."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q


class UsageRecord(models.Model):
    """One job's GPU-seconds, counted once per (source, external id) however often posted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=64, help_text="The reporting system, e.g. `slurm-narvik`.")
    external_id = models.CharField(max_length=128, help_text="The job id in that system.")
    # No index of its own: `usage_allocation_end` starts with the allocation and serves every
    # lookup by it (the PROTECT check too); one index fewer to write for each record ingested.
    allocation = models.ForeignKey(
        "allocations.Allocation",
        on_delete=models.PROTECT,
        related_name="usage_records",
        db_index=False,
    )
    gpu_seconds = models.PositiveBigIntegerField("GPU-seconds")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    energy_kwh = models.DecimalField(
        "energy (kWh)", max_digits=14, decimal_places=3, null=True, blank=True
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ended_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="usage_once_per_job"),
            models.CheckConstraint(
                condition=Q(gpu_seconds__gt=0), name="usage_gpu_seconds_positive"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__gte=F("started_at")), name="usage_end_after_start"
            ),
        ]
        indexes = [models.Index(fields=["allocation", "ended_at"], name="usage_allocation_end")]

    def __str__(self) -> str:
        return f"{self.source}/{self.external_id}: {self.gpu_seconds} GPU-s"


class BackendCall(models.Model):
    """A call to the scheduler backend: what was asked, and how it went."""

    class Action(models.TextChoices):
        CREATE_ACCOUNT = "create_account", "Create the account"
        SET_LIMIT = "set_limit", "Set the GPU-minute limit"
        SUSPEND = "suspend", "Suspend"
        RESUME = "resume", "Resume"
        SYNC_USERS = "sync_users", "Bring the users up to date"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed (retrying)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    allocation = models.ForeignKey(
        "allocations.Allocation", on_delete=models.CASCADE, related_name="backend_calls"
    )
    backend = models.CharField(max_length=32)
    action = models.CharField(max_length=32, choices=Action.choices)
    arguments = models.JSONField(default=dict, blank=True)
    commands = models.JSONField(default=list, blank=True, help_text="What was (or would be) run.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} for {self.allocation} ({self.get_outcome_display()})"


class SchedulerCheck(models.Model):
    """One comparison of what the portal intends with what the scheduler holds."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    checked_at = models.DateTimeField()
    backend = models.CharField(max_length=32)
    drifted_accounts = models.PositiveIntegerField(default=0)
    drift = models.JSONField(default=list, blank=True, help_text="What differed, per account.")
    mended = models.BooleanField(default=False, help_text="Whether the drift was mended.")

    class Meta:
        ordering = ["-checked_at"]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M}: {self.drifted_accounts} accounts drifted"
