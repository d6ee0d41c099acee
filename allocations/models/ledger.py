"""The capacity ledger: one row per pool and day, per pool, program and day, per site and day.

Rows are made on first use for the days someone applies for, with their capacity computed
from the inventory; capacity events and power phases rewrite the capacity of the rows they
touch. `committed` counts approved allocations, `held` the applications in review.
Writers lock the pool-day rows of their window (allocations/locks.py), so the program-day
rows of a pool-day change only under its lock.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class PoolDay(models.Model):
    pool = models.ForeignKey("allocations.GpuPool", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    capacity_gpu_hours = models.BigIntegerField("capacity (GPU-hours)")
    committed_gpu_hours = models.BigIntegerField("committed GPU-hours", default=0)
    held_gpu_hours = models.BigIntegerField("held GPU-hours", default=0)

    class Meta:
        ordering = ["pool", "day"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "day"], name="pool_day_unique"),
            models.CheckConstraint(
                condition=Q(committed_gpu_hours__gte=0) & Q(held_gpu_hours__gte=0),
                name="pool_day_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool.name} on {self.day}"

    @property
    def reserved_gpu_hours(self) -> int:
        return self.committed_gpu_hours + self.held_gpu_hours


class ProgramDay(models.Model):
    pool = models.ForeignKey("allocations.GpuPool", on_delete=models.CASCADE, related_name="+")
    program = models.ForeignKey("allocations.Program", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    committed_gpu_hours = models.BigIntegerField("committed GPU-hours", default=0)
    held_gpu_hours = models.BigIntegerField("held GPU-hours", default=0)

    class Meta:
        ordering = ["pool", "day", "program"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "program", "day"], name="program_day_unique"),
            models.CheckConstraint(
                condition=Q(committed_gpu_hours__gte=0) & Q(held_gpu_hours__gte=0),
                name="program_day_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program.name} in {self.pool.name} on {self.day}"

    @property
    def reserved_gpu_hours(self) -> int:
        return self.committed_gpu_hours + self.held_gpu_hours


class SiteDay(models.Model):
    """Energy in Wh: the envelope (MW × 24 h) and what the site's pools have reserved."""

    site = models.ForeignKey("allocations.Site", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    envelope_wh = models.BigIntegerField("power envelope (Wh)")
    committed_wh = models.DecimalField(
        "committed energy (Wh)", max_digits=24, decimal_places=2, default=0
    )
    held_wh = models.DecimalField("held energy (Wh)", max_digits=24, decimal_places=2, default=0)

    class Meta:
        ordering = ["site", "day"]
        constraints = [
            models.UniqueConstraint(fields=["site", "day"], name="site_day_unique"),
            models.CheckConstraint(
                condition=Q(committed_wh__gte=0) & Q(held_wh__gte=0),
                name="site_day_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.name} on {self.day}"


class QuotaUsage(models.Model):
    """GPU-hours an organization holds in a program: granted and not expired, or in review.

    Its row is the organization's quota lock, taken first by every decision.
    """

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    program = models.ForeignKey("allocations.Program", on_delete=models.CASCADE, related_name="+")
    held_gpu_hours = models.BigIntegerField("held GPU-hours", default=0)

    class Meta:
        verbose_name = "quota use"
        constraints = [
            models.UniqueConstraint(fields=["organization", "program"], name="quota_usage_unique"),
            models.CheckConstraint(condition=Q(held_gpu_hours__gte=0), name="quota_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.organization.name} in {self.program.name}: {self.held_gpu_hours:,} GPU-hours"
