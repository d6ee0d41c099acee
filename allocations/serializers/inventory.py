from __future__ import annotations

from datetime import date
from typing import Any

from django_countries import countries
from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from accounts.models import OrganizationKind, User
from allocations.models import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
)
from portal.serializers import (
    MAX_WINDOW_DAYS,
    BoundedDateField,
    PortalCountryField,
    StrictModelSerializer,
    window_validate,
)


class SiteSerializer(serializers.ModelSerializer):
    # Null, never "", for a row stored without a country before countries were checked.
    country = CountryField(country_dict=False, allow_null=True)

    class Meta:
        model = Site
        fields = ["id", "name", "country", "pue", "created_at"]
        read_only_fields = ["id", "created_at"]


class SiteWriteSerializer(StrictModelSerializer):
    country = PortalCountryField()

    class Meta:
        model = Site
        fields = ["name", "country", "pue"]


class PowerPhaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = PowerPhase
        fields = ["id", "site", "name", "power_mw", "online_from", "online_until"]


class PowerPhaseWriteSerializer(StrictModelSerializer):
    class Meta:
        model = PowerPhase
        fields = ["name", "power_mw", "online_from", "online_until"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        online_from = attrs.get("online_from", getattr(self.instance, "online_from", None))
        online_until = attrs.get("online_until", getattr(self.instance, "online_until", None))
        if online_from and online_until and online_until < online_from:
            raise serializers.ValidationError(
                {"online_until": "The last day online comes on or after the first."},
                code="before_start",
            )
        if attrs.get("power_mw") == 0:
            raise serializers.ValidationError(
                {"power_mw": "A phase adds or removes power: it cannot be 0 MW."}, code="zero"
            )
        return attrs


class AcceleratorSerializer(serializers.ModelSerializer):
    class Meta:
        model = AcceleratorModel
        fields = ["id", "name", "board_power_w", "it_power_w", "peak_bf16_flops"]


class AcceleratorWriteSerializer(StrictModelSerializer):
    class Meta:
        model = AcceleratorModel
        fields = ["name", "board_power_w", "it_power_w", "peak_bf16_flops"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        board = attrs.get("board_power_w", getattr(self.instance, "board_power_w", None))
        it_power = attrs.get("it_power_w", getattr(self.instance, "it_power_w", None))
        if board is not None and it_power is not None and it_power < board:
            raise serializers.ValidationError(
                {"it_power_w": "IT power per GPU includes the board: it cannot be smaller."},
                code="below_board_power",
            )
        return attrs


class PoolSerializer(serializers.ModelSerializer):
    class Meta:
        model = GpuPool
        fields = ["id", "name", "site", "accelerator", "availability", "is_open", "created_at"]


class PoolWriteSerializer(StrictModelSerializer):
    class Meta:
        model = GpuPool
        fields = ["name", "site", "accelerator", "availability", "is_open"]


class CapacityEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CapacityEvent
        fields = ["id", "pool", "effective_from", "gpus_in_service", "note"]


class CapacityEventWriteSerializer(StrictModelSerializer):
    class Meta:
        model = CapacityEvent
        fields = ["effective_from", "gpus_in_service", "note"]

    def validate_effective_from(self, value: date) -> date:
        pool = self.context["pool"]
        clash = CapacityEvent.objects.filter(pool=pool, effective_from=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                "The pool already has a capacity event on this day.", code="unique"
            )
        return value


class WindowQuerySerializer(serializers.Serializer):
    start = BoundedDateField(help_text="First day (default today).", required=False)
    end = BoundedDateField(
        help_text="Last day, included (default start + 30 days).", required=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = window_validate(attrs, default_days=30, max_days=MAX_WINDOW_DAYS)
        return {"start": start, "end": end}


class PoolDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    gpus_in_service = serializers.IntegerField()
    capacity_gpu_hours = serializers.IntegerField(
        help_text="Deliverable GPU-hours: GPUs × 24 × availability, rounded down."
    )
    full_load_mw = serializers.DecimalField(max_digits=12, decimal_places=3)
    power_envelope_mw = serializers.DecimalField(
        max_digits=12, decimal_places=3, help_text="The whole site's envelope that day."
    )


class ProgramSerializer(serializers.ModelSerializer):
    reviewers: serializers.PrimaryKeyRelatedField[User] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = Program
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "priority",
            "is_open",
            "eligible_countries",
            "eligible_kinds",
            "verification_required",
            "min_gpu_hours",
            "max_gpu_hours",
            "max_duration_days",
            "auto_approve_max_gpu_hours",
            "org_cap_gpu_hours",
            "nominal_share",
            "lending_limit",
            "borrowing_limit",
            "turnaround_days",
            "reviewers",
        ]


class ProgramWriteSerializer(StrictModelSerializer):
    eligible_countries = serializers.ListField(
        child=serializers.ChoiceField(choices=[(c.code, c.name) for c in countries]),
        required=False,
        max_length=300,
    )
    eligible_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=OrganizationKind.choices), required=False
    )
    reviewers: serializers.PrimaryKeyRelatedField[User] = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=User.objects.filter(is_active=True)
    )

    class Meta:
        model = Program
        fields = [f for f in ProgramSerializer.Meta.fields if f != "id"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def value(name: str) -> Any:
            return attrs.get(name, getattr(self.instance, name, None))

        errors: dict[str, str] = {}
        if value("min_gpu_hours") is not None and value("max_gpu_hours") is not None:
            if value("min_gpu_hours") > value("max_gpu_hours"):
                errors["min_gpu_hours"] = "The minimum is at most the maximum."
            if (value("auto_approve_max_gpu_hours") or 0) > value("max_gpu_hours"):
                errors["auto_approve_max_gpu_hours"] = "Auto-approval stays within the maximum."
        if errors:
            raise serializers.ValidationError(errors, code="out_of_bounds")
        return attrs
