from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Organization
from allocations.models import (
    Allocation,
    Application,
    ApplicationKind,
    GpuPool,
    Program,
    RiskCategory,
)
from allocations.reasons import message_of
from allocations.selectors import energy_kwh_per_gpu_hour
from audit.models import AuditEvent
from portal.serializers import (
    MAX_WINDOW_DAYS,
    BoundedDateField,
    FastOutputMixin,
    NaturalKeyRelatedField,
    StrictModelSerializer,
    StrictSerializer,
    window_validate,
)


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable code, e.g. `capacity_pool`, `over_quota`.")
    message = serializers.CharField()
    day = serializers.DateField(
        required=False, help_text="For capacity: the first day that failed."
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # The message in the reader's language (allocations.reasons): stored reasons keep
        # their key and figures.
        answer = super().to_representation(instance)
        if isinstance(instance, Mapping):
            answer["message"] = message_of(instance)
        return answer


class ApplicationSerializer(FastOutputMixin, serializers.ModelSerializer):
    reasons = ReasonSerializer(many=True, read_only=True)
    allocation = serializers.SerializerMethodField()
    changes_allocation: serializers.PrimaryKeyRelatedField[Allocation] = (
        serializers.PrimaryKeyRelatedField(
            source="allocation",
            read_only=True,
            allow_null=True,
            help_text="The allocation a supplement or extension changes; null for a new one.",
        )
    )

    class Meta:
        model = Application
        fields = [
            "id",
            "organization",
            "program",
            "pool",
            "applicant",
            "kind",
            "changes_allocation",
            "title",
            "summary",
            "gpu_hours",
            "start_date",
            "end_date",
            "purpose",
            "risk_category",
            "data_stays_in_eea",
            "model_lineage",
            "status",
            "reasons",
            "failed_day",
            "holds_capacity",
            "created_at",
            "submitted_at",
            "decided_at",
            "allocation",
        ]

    def get_allocation(self, application: Application) -> str | None:
        """The allocation this application made or changed, once approved."""
        if application.status != "approved":
            return None
        if application.allocation_id is not None:
            return str(application.allocation_id)
        # Lists read the granted allocation's id alone (see `application_page_rows`).
        if hasattr(application, "granted_allocation_pk"):
            pk = application.granted_allocation_pk
            return None if pk is None else str(pk)
        granted = getattr(application, "granted_allocation", None)
        return str(granted.pk) if granted is not None else None


class ApplicationWriteSerializer(StrictModelSerializer):
    """A draft as posted: `allocation` names the allocation a supplement or extension changes."""

    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())
    program = NaturalKeyRelatedField(queryset=Program.objects.all(), natural_keys=("slug", "name"))
    pool = NaturalKeyRelatedField(queryset=GpuPool.objects.all(), natural_keys=("name",))
    allocation = serializers.PrimaryKeyRelatedField(
        queryset=Allocation.objects.all(), required=False, allow_null=True
    )
    gpu_hours = serializers.IntegerField(min_value=1, max_value=10**12)
    kind = serializers.ChoiceField(choices=ApplicationKind.choices, default=ApplicationKind.NEW)
    risk_category = serializers.ChoiceField(
        choices=RiskCategory.choices, default=RiskCategory.MINIMAL
    )

    class Meta:
        model = Application
        fields = [
            "organization",
            "program",
            "pool",
            "title",
            "summary",
            "gpu_hours",
            "start_date",
            "end_date",
            "kind",
            "allocation",
            "purpose",
            "risk_category",
            "data_stays_in_eea",
            "model_lineage",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def value(name: str) -> Any:
            return attrs.get(name, getattr(self.instance, name, None))

        start, end = value("start_date"), value("end_date")
        if start and end:
            if end < start:
                raise serializers.ValidationError(
                    {"end_date": "The window ends on or after its first day."}, code="before_start"
                )
            if (end - start).days + 1 > MAX_WINDOW_DAYS:
                raise serializers.ValidationError(
                    {"end_date": f"A window covers at most {MAX_WINDOW_DAYS} days."},
                    code="window_too_long",
                )
            if start > timezone.localdate() + timedelta(days=MAX_WINDOW_DAYS):
                raise serializers.ValidationError(
                    {"start_date": "The window starts too far ahead."}, code="too_far_ahead"
                )
        kind, allocation = value("kind"), value("allocation")
        if kind == ApplicationKind.NEW and allocation is not None:
            raise serializers.ValidationError(
                {"allocation": "Only a supplement or an extension names an allocation."},
                code="not_allowed",
            )
        if kind != ApplicationKind.NEW and allocation is None:
            raise serializers.ValidationError(
                {"allocation": "A supplement or an extension names the allocation it changes."},
                code="required",
            )
        return attrs


class DecisionInputSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Why: shown to the applicant.")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.EmailField(source="actor.email", read_only=True, allow_null=True)
    reasons = ReasonSerializer(many=True, read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "verb", "before", "after", "reasons"]


class AllocationSerializer(FastOutputMixin, serializers.ModelSerializer):
    used_gpu_hours = serializers.DecimalField(max_digits=20, decimal_places=2, read_only=True)
    remaining_gpu_hours = serializers.DecimalField(max_digits=20, decimal_places=2, read_only=True)
    energy_estimate_mwh = serializers.SerializerMethodField(
        help_text="Facility energy of the granted GPU-hours at the site's PUE."
    )
    energy_measured_mwh = serializers.DecimalField(
        source="energy_mwh",
        max_digits=18,
        decimal_places=3,
        read_only=True,
        help_text="From usage: the kWh reported, else estimated from GPU-seconds.",
    )

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=3))
    def get_energy_estimate_mwh(self, allocation: Allocation) -> str:
        # Lists read the pool's two figures alone (see `allocation_page_rows`).
        if hasattr(allocation, "pool_it_power_w"):
            kwh = Decimal(allocation.pool_it_power_w) * allocation.pool_pue / 1000  # type: ignore[attr-defined]
        else:
            kwh = energy_kwh_per_gpu_hour(
                accelerator=allocation.pool.accelerator, pue=allocation.pool.site.pue
            )
        return str((allocation.granted_gpu_hours * kwh / 1000).quantize(Decimal("0.001")))

    class Meta:
        model = Allocation
        fields = [
            "id",
            "application",
            "organization",
            "program",
            "pool",
            "start_date",
            "end_date",
            "granted_gpu_hours",
            "used_gpu_hours",
            "remaining_gpu_hours",
            "used_gpu_seconds",
            "energy_estimate_mwh",
            "energy_measured_mwh",
            "status",
            "at_risk",
            "released_from",
            "model_lineage",
            "created_at",
        ]


class CapacityQuerySerializer(serializers.Serializer):
    pool = NaturalKeyRelatedField(
        queryset=GpuPool.objects.select_related("site", "accelerator"), natural_keys=("name",)
    )
    start = BoundedDateField(required=False, help_text="First day (default today).")
    end = BoundedDateField(required=False, help_text="Last day, included (default +30).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = window_validate(attrs, default_days=30)
        return {"pool": attrs["pool"], "start": start, "end": end}


class ProgramPartSerializer(serializers.Serializer):
    program = serializers.UUIDField(source="program.pk")
    program_slug = serializers.CharField(source="program.slug")
    nominal_gpu_hours = serializers.IntegerField()
    committed_gpu_hours = serializers.IntegerField()
    held_gpu_hours = serializers.IntegerField()
    free_gpu_hours = serializers.IntegerField(
        help_text="What the program could still take that day: its share, what others lend "
        "and the common part, within its borrowing limit."
    )


COMMITTED_MW = "The site's energy committed to approved allocations, as average MW."
HELD_MW = "The site's energy held for applications in review, as average MW."


def megawatts(help_text: str = "") -> serializers.DecimalField:
    """Average power over a day, to the kW (allocations/quantities.py)."""
    return serializers.DecimalField(max_digits=12, decimal_places=3, help_text=help_text or None)


class CapacityDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    gpus_in_service = serializers.IntegerField()
    capacity_gpu_hours = serializers.IntegerField()
    committed_gpu_hours = serializers.IntegerField()
    held_gpu_hours = serializers.IntegerField(help_text="Held for applications in review.")
    free_gpu_hours = serializers.IntegerField()
    power_envelope_mw = megawatts()
    committed_mw = megawatts(COMMITTED_MW)
    held_mw = megawatts(HELD_MW)
    overcommitted = serializers.BooleanField(
        help_text=(
            "More reserved (committed + held) than the day's capacity, or more reserved "
            "energy than the site's power envelope: capacity or power shrank under "
            "reservations made before."
        )
    )
    programs = ProgramPartSerializer(many=True)
