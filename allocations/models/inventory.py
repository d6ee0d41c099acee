"""Inventory (sites, power, accelerators, pools) and programs: the supply side."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django_countries.fields import CountryField

ZERO = Decimal("0")
ONE = Decimal("1")


def fraction_field(help_text: str) -> models.DecimalField:
    """A fraction from 0 to 1, to four decimals (a program's shares of a pool)."""
    return models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(ZERO), MaxValueValidator(ONE)],
        help_text=help_text,
    )


class Site(models.Model):
    """A datacenter. Its power envelope on a day is the sum of its phases online that day."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    country = CountryField()
    pue = models.DecimalField(
        "PUE",
        max_digits=4,
        decimal_places=2,
        validators=[MinValueValidator(ONE)],
        help_text="Power usage effectiveness: facility power over IT power, e.g. 1.10.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(pue__gte=1), name="site_pue_at_least_1")]

    def __str__(self) -> str:
        return self.name


class PowerPhase(models.Model):
    """Facility power that comes online (positive) or is curtailed (negative) for a window."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="power_phases")
    name = models.CharField(max_length=100)
    power_mw = models.DecimalField(
        "power (MW)",
        max_digits=9,
        decimal_places=3,
        help_text="Facility power in MW; negative for a curtailment.",
    )
    online_from = models.DateField()
    online_until = models.DateField(
        null=True, blank=True, help_text="The last day online (inclusive); empty: for good."
    )

    class Meta:
        ordering = ["site", "online_from", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(online_until__isnull=True) | Q(online_until__gte=F("online_from")),
                name="power_phase_until_after_from",
            ),
            models.CheckConstraint(condition=~Q(power_mw=0), name="power_phase_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.site}: {self.name} ({self.power_mw} MW from {self.online_from})"


class AcceleratorModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=50, unique=True)
    board_power_w = models.PositiveIntegerField(
        "board power (W)", help_text="GPU board power in W."
    )
    it_power_w = models.PositiveIntegerField(
        "IT power per GPU (W)",
        help_text="IT power per GPU in W, all included (CPU, memory, network share).",
    )
    peak_bf16_flops = models.PositiveBigIntegerField(
        "peak BF16 FLOP/s",
        help_text="Peak dense BF16 FLOP/s of one GPU, e.g. 2500000000000000 (2.5 PFLOP/s).",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(board_power_w__gt=0), name="accelerator_board_power_positive"
            ),
            models.CheckConstraint(
                condition=Q(it_power_w__gte=F("board_power_w")),
                name="accelerator_it_power_covers_board",
            ),
            models.CheckConstraint(
                condition=Q(peak_bf16_flops__gt=0), name="accelerator_flops_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GpuPool(models.Model):
    """A partition of one accelerator model at one site. GPUs come from capacity events."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100, unique=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="pools")
    accelerator = models.ForeignKey(
        AcceleratorModel, on_delete=models.PROTECT, related_name="pools"
    )
    availability = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        validators=[MinValueValidator(Decimal("0.001")), MaxValueValidator(ONE)],
        help_text="Fraction of GPUs in service that can be promised; the rest is headroom.",
    )
    is_open = models.BooleanField(default=True, help_text="Closed pools take no applications.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(availability__gt=0) & Q(availability__lte=1),
                name="pool_availability_in_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CapacityEvent(models.Model):
    """From `effective_from` on, the pool has `gpus_in_service` GPUs, until the next event."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pool = models.ForeignKey(GpuPool, on_delete=models.CASCADE, related_name="capacity_events")
    effective_from = models.DateField()
    gpus_in_service = models.PositiveIntegerField("GPUs in service")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["pool", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["pool", "effective_from"], name="capacity_event_one_per_pool_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool}: {self.gpus_in_service} GPUs from {self.effective_from}"


class Program(models.Model):
    """An access track: eligibility, request bounds, a share of every pool, reviewers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=150, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    priority = models.PositiveSmallIntegerField(help_text="Lower first; orders the waitlist.")
    is_open = models.BooleanField(default=True)

    eligible_countries = models.JSONField(
        default=list,
        blank=True,
        help_text="ISO 3166-1 alpha-2 codes; empty: any country.",
    )
    eligible_kinds = models.JSONField(
        default=list, blank=True, help_text="Organization kinds; empty: any kind."
    )
    verification_required = models.BooleanField(default=True)

    min_gpu_hours = models.PositiveIntegerField("minimum GPU-hours", default=1)
    max_gpu_hours = models.PositiveIntegerField("maximum GPU-hours")
    max_duration_days = models.PositiveIntegerField("maximum duration (days)")
    auto_approve_max_gpu_hours = models.PositiveIntegerField(
        "auto-approved up to (GPU-hours)",
        default=0,
        help_text="At or below: approved by the worker if it fits. 0: never.",
    )
    org_cap_gpu_hours = models.PositiveBigIntegerField(
        "organization cap (GPU-hours)",
        help_text="Most GPU-hours one organization may hold in this program at once.",
    )

    nominal_share = fraction_field(
        "Fraction of each pool's daily capacity reserved for this program."
    )
    lending_limit = fraction_field(
        "Fraction of its nominal share other programs may borrow when it is idle."
    )
    borrowing_limit = fraction_field(
        "Most it may borrow beyond its share per day, as a fraction of the pool."
    )
    turnaround_days = models.PositiveSmallIntegerField(
        "turnaround (days)", help_text="The published decision time."
    )
    reviewers = models.ManyToManyField(
        "accounts.User", blank=True, related_name="reviewed_programs"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_gpu_hours__gt=0) & Q(min_gpu_hours__lte=F("max_gpu_hours")),
                name="program_request_bounds",
            ),
            models.CheckConstraint(
                condition=Q(auto_approve_max_gpu_hours__lte=F("max_gpu_hours")),
                name="program_auto_approve_within_max",
            ),
            models.CheckConstraint(
                condition=Q(max_duration_days__gt=0), name="program_duration_positive"
            ),
            models.CheckConstraint(
                condition=Q(nominal_share__gte=0) & Q(nominal_share__lte=1),
                name="program_share_in_0_1",
            ),
            models.CheckConstraint(
                condition=Q(lending_limit__gte=0) & Q(lending_limit__lte=1),
                name="program_lending_in_0_1",
            ),
            models.CheckConstraint(
                condition=Q(borrowing_limit__gte=0) & Q(borrowing_limit__lte=1),
                name="program_borrowing_in_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name
