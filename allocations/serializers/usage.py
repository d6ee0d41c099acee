from __future__ import annotations

from rest_framework import serializers

from portal.serializers import StrictSerializer

MAX_BATCH = 10_000


class UsageRecordInputSerializer(StrictSerializer):
    # DRF pops declared fields from the class, so this does not shadow Field.source.
    source = serializers.CharField(max_length=64)  # type: ignore[assignment]
    external_id = serializers.CharField(max_length=128)
    allocation = serializers.UUIDField()
    # Any integer: a negative one is a per-record rejection, not a malformed batch.
    gpu_seconds = serializers.IntegerField(min_value=-(2**62), max_value=2**62)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    energy_kwh = serializers.DecimalField(
        max_digits=14, decimal_places=3, required=False, allow_null=True, min_value=0
    )


class UsageBatchInputSerializer(StrictSerializer):
    records = UsageRecordInputSerializer(  # type: ignore[call-arg]  # the stubs lack max_length
        many=True, allow_empty=False, max_length=MAX_BATCH
    )


class UsageRejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The record's position in the batch, from 0.")
    code = serializers.CharField(
        help_text="`wrong_source`, `unknown_allocation`, `invalid_gpu_seconds`, "
        "`absurd_gpu_seconds`, `ended_before_started`, `outside_window`, "
        "`allocation_not_active` or `conflicting_record` (the job was reported before with "
        "other content; the first report stands)."
    )
    message = serializers.CharField()


class UsageBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="New records, added to their allocations.")
    duplicates = serializers.IntegerField(
        help_text="Records already counted (same source and id, same content)."
    )
    rejected = UsageRejectionSerializer(many=True)
