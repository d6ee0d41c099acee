"""The demand: applications for GPU-hours and the allocations their approval makes."""

from __future__ import annotations

import unicodedata
import uuid
from decimal import ROUND_DOWN, Decimal

from django.db import models
from django.db.models import F, Q

SECONDS_PER_HOUR = 3600


def lineage_key(name: str) -> str:
    """A model lineage's name as it is compared: Unicode NFKC, case folded, whitespace
    collapsed to single spaces and trimmed ("  Fjord\u00a0LLM" and "ＦＪＯＲＤ llm" are one)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


class ApplicationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted, waiting for the worker"
    IN_REVIEW = "in_review", "In review"
    WAITLISTED = "waitlisted", "Waitlisted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ApplicationKind(models.TextChoices):
    NEW = "new", "New allocation"
    SUPPLEMENT = "supplement", "More GPU-hours inside an allocation's window"
    EXTENSION = "extension", "A longer window with more GPU-hours"


class RiskCategory(models.TextChoices):
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"
    PROHIBITED = "prohibited", "Prohibited"


class Application(models.Model):
    """A request for GPU-hours in one pool and program, over a window of days."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="applications"
    )
    program = models.ForeignKey(
        "allocations.Program", on_delete=models.PROTECT, related_name="applications"
    )
    pool = models.ForeignKey(
        "allocations.GpuPool", on_delete=models.PROTECT, related_name="applications"
    )
    applicant = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="applications"
    )
    kind = models.CharField(
        max_length=16, choices=ApplicationKind.choices, default=ApplicationKind.NEW
    )
    allocation = models.ForeignKey(
        "allocations.Allocation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="changes",
        help_text="The allocation a supplement or extension changes.",
    )
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    gpu_hours = models.PositiveBigIntegerField("GPU-hours")
    start_date = models.DateField()
    end_date = models.DateField()
    purpose = models.TextField(blank=True, help_text="What the GPU-hours are for (AI Act).")
    risk_category = models.CharField(
        "AI Act risk category",
        max_length=16,
        choices=RiskCategory.choices,
        default=RiskCategory.MINIMAL,
    )
    data_stays_in_eea = models.BooleanField("data stays in the EEA", default=True)
    model_lineage = models.CharField(
        max_length=100,
        blank=True,
        help_text="The model family trained, to sum its training compute across allocations.",
    )

    status = models.CharField(
        max_length=16, choices=ApplicationStatus.choices, default=ApplicationStatus.DRAFT
    )
    reasons = models.JSONField(default=list, blank=True)
    failed_day = models.DateField(
        null=True, blank=True, help_text="The first day that did not fit, when waitlisted."
    )
    submission = models.PositiveIntegerField(
        default=0, help_text="How often submitted; a decision task carries the number it decides."
    )
    holds_capacity = models.BooleanField(default=False)
    reserved_wh_per_gpu_hour = models.DecimalField(
        "reserved Wh per GPU-hour",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Facility Wh per GPU-hour its reservation (hold or grant) holds in the energy "
        "ledger: each day holds its share × this. Re-priced with the inventory.",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gpu_hours__gt=0), name="application_gpu_hours_positive"
            ),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="application_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(kind=ApplicationKind.NEW, allocation__isnull=True)
                | (~Q(kind=ApplicationKind.NEW) & Q(allocation__isnull=False)),
                name="application_allocation_iff_change",
            ),
        ]
        indexes = [
            models.Index(fields=["pool", "status"], name="application_pool_status"),
            models.Index(fields=["status", "submitted_at"], name="application_status_submitted"),
            # Keyset pages, newest first: everyone's (operators), and one organization's.
            models.Index(fields=["created_at", "id"], name="application_created"),
            models.Index(
                fields=["organization", "created_at", "id"], name="application_org_created"
            ),
            # The turnaround report's window of decision days: the final decisions only, with
            # the columns it reads, so that a window costs what it holds, not the history.
            models.Index(
                fields=["decided_at"],
                include=["program", "submitted_at"],
                condition=models.Q(
                    status__in=[ApplicationStatus.APPROVED, ApplicationStatus.REJECTED],
                    submitted_at__isnull=False,
                    decided_at__isnull=False,
                ),
                name="application_decided",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.gpu_hours:,} GPU-hours)"

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


class AllocationStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    EXHAUSTED = "exhausted", "Exhausted"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released early"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"


class Allocation(models.Model):
    """GPU-hours granted to an organization in one pool and program, over a window."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    application = models.OneToOneField(
        Application, on_delete=models.PROTECT, related_name="granted_allocation"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="allocations"
    )
    program = models.ForeignKey(
        "allocations.Program", on_delete=models.PROTECT, related_name="allocations"
    )
    pool = models.ForeignKey(
        "allocations.GpuPool", on_delete=models.PROTECT, related_name="allocations"
    )
    start_date = models.DateField()
    end_date = models.DateField()
    granted_gpu_hours = models.PositiveBigIntegerField("granted GPU-hours")
    used_gpu_seconds = models.PositiveBigIntegerField("used GPU-seconds", default=0)
    status = models.CharField(
        max_length=16, choices=AllocationStatus.choices, default=AllocationStatus.SCHEDULED
    )
    model_lineage = models.CharField(max_length=100, blank=True)
    lineage_key = models.CharField(
        max_length=2000,
        blank=True,
        default="",
        help_text="The lineage's normalized name (`lineage_key`), summed for the AI Act.",
    )
    energy_kwh = models.DecimalField(
        "energy (kWh)",
        max_digits=18,
        decimal_places=3,
        default=0,
        help_text="Measured from usage: the kWh reported, else estimated from GPU-seconds.",
    )
    notified_percent = models.PositiveSmallIntegerField(
        "usage notified (%)",
        default=0,
        help_text="The highest usage threshold (75, 90, 100) already notified.",
    )
    expiry_notified = models.BooleanField(default=False)
    released_from = models.DateField(
        null=True, blank=True, help_text="Its days from this one on were given back early."
    )
    at_risk = models.BooleanField(
        default=False,
        help_text="Capacity shrank under it: some of its days are overcommitted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="allocation_end_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "start_date"], name="allocation_status_start"),
            # Keyset pages, newest first: everyone's (operators, schedulers), and one
            # organization's.
            models.Index(fields=["created_at", "id"], name="allocation_created"),
            models.Index(
                fields=["organization", "created_at", "id"], name="allocation_org_created"
            ),
            models.Index(fields=["status", "end_date"], name="allocation_status_end"),
            models.Index(fields=["model_lineage"], name="allocation_lineage"),
            models.Index(fields=["lineage_key"], name="allocation_lineage_key"),
        ]

    def __str__(self) -> str:
        # Named by its application's title and its organization, as people know it.
        return f"{self.application.title} ({self.organization.name})"

    @property
    def used_gpu_hours(self) -> Decimal:
        """Used GPU-hours to the hundredth, rounded down (exact seconds are kept)."""
        hours = Decimal(self.used_gpu_seconds) / SECONDS_PER_HOUR
        return hours.quantize(Decimal("0.01"), rounding=ROUND_DOWN)

    @property
    def energy_mwh(self) -> Decimal:
        return (self.energy_kwh / 1000).quantize(Decimal("0.001"))

    @property
    def remaining_gpu_hours(self) -> Decimal:
        return max(Decimal(self.granted_gpu_hours) - self.used_gpu_hours, Decimal(0))


class ReviewQueueItem(Application):
    """The applications in review, as the admin's review queue."""

    class Meta:
        proxy = True
        verbose_name = "review queue item"
        verbose_name_plural = "review queue"


class WaitlistItem(Application):
    """The waitlisted applications, in the order the worker re-checks them."""

    class Meta:
        proxy = True
        verbose_name = "waitlisted application"
        verbose_name_plural = "waitlist"
