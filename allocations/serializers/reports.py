from __future__ import annotations

from typing import Any

from rest_framework import serializers

from allocations.models import GpuPool, Site
from allocations.selectors.reports import (
    TURNAROUND_DEFAULT_DAYS,
    TURNAROUND_MAX_DAYS,
)
from allocations.serializers.demand import COMMITTED_MW, HELD_MW, megawatts
from portal.serializers import BoundedDateField, NaturalKeyRelatedField, window_validate


class CapacityReportQuerySerializer(serializers.Serializer):
    site = NaturalKeyRelatedField(
        queryset=Site.objects.all(), natural_keys=("name",), required=False
    )
    pool = NaturalKeyRelatedField(
        queryset=GpuPool.objects.select_related("site", "accelerator"),
        natural_keys=("name",),
        required=False,
    )
    start = BoundedDateField(required=False, help_text="First day (default today).")
    end = BoundedDateField(required=False, help_text="Last day (default start + 90).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("site")) == bool(attrs.get("pool")):
            raise serializers.ValidationError("Name either a site or a pool.", code="site_or_pool")
        start, end = window_validate(attrs, default_days=90)
        return {**attrs, "start": start, "end": end}


class SharesQuerySerializer(serializers.Serializer):
    start = BoundedDateField(required=False, help_text="Allocations starting on or after.")
    end = BoundedDateField(required=False, help_text="Allocations starting on or before.")


class TurnaroundQuerySerializer(serializers.Serializer):
    start = BoundedDateField(
        required=False,
        help_text=f"First day of decisions (default {TURNAROUND_DEFAULT_DAYS - 1} days before the"
        " end).",
    )
    end = BoundedDateField(required=False, help_text="Last day of decisions (default today).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = window_validate(
            attrs,
            default_days=TURNAROUND_DEFAULT_DAYS - 1,
            max_days=TURNAROUND_MAX_DAYS,
            looking_back=True,
        )
        return {"start": start, "end": end}


class CapacityReportDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    capacity_gpu_hours = serializers.IntegerField()
    committed_gpu_hours = serializers.IntegerField()
    held_gpu_hours = serializers.IntegerField()
    used_gpu_hours = serializers.DecimalField(max_digits=20, decimal_places=2)
    free_gpu_hours = serializers.IntegerField()
    power_envelope_mw = megawatts()
    committed_mw = megawatts(COMMITTED_MW)
    held_mw = megawatts(HELD_MW)
    programs = serializers.DictField(
        child=serializers.IntegerField(), help_text="Committed GPU-hours by program slug."
    )


class ShareRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    granted_gpu_hours = serializers.IntegerField()
    used_gpu_hours = serializers.DecimalField(max_digits=20, decimal_places=2)


class SharesReportSerializer(serializers.Serializer):
    granted_gpu_hours = serializers.IntegerField()
    norwegian_fraction = serializers.DecimalField(
        max_digits=6,
        decimal_places=4,
        help_text="Of the granted GPU-hours, to Norwegian organizations.",
    )
    by_program = ShareRowSerializer(many=True)
    by_country = ShareRowSerializer(many=True)
    by_organization_kind = ShareRowSerializer(many=True)


class TurnaroundRowSerializer(serializers.Serializer):
    program = serializers.CharField()
    turnaround_days = serializers.IntegerField()
    decided = serializers.IntegerField()
    median_hours = serializers.FloatField(allow_null=True)
    p90_hours = serializers.FloatField(allow_null=True)
    within_target_fraction = serializers.FloatField(allow_null=True)
