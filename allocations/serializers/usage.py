from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

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


# --- the fast path of the same validation ---------------------------------------------------
#
# A batch of 10,000 records through `UsageBatchInputSerializer` builds and runs 10,000 × 7 DRF
# fields: most of the cost of an ingest. `usage_batch_validate` accepts the records whose every
# value is in its plain JSON form (strings, whole numbers, ISO 8601 times with an offset, a
# decimal string) with a few type checks per value, and hands any other record to
# `UsageRecordInputSerializer`, so the answer is the serializer's, to the value and to the
# error: a record in another form the serializer accepts (a number as a string, a naive time)
# is accepted all the same; a bad one gets the serializer's errors at its path.

RECORD_FIELDS = frozenset(UsageRecordInputSerializer().fields)
REQUIRED_FIELDS = RECORD_FIELDS - {"energy_kwh"}
GPU_SECONDS_BOUND = 2**62
ENERGY_PATTERN = re.compile(r"[0-9]{1,11}(\.[0-9]{1,3})?")
ENERGY_PLACES = Decimal("0.001")


def _plain_text(value: Any, max_length: int) -> bool:
    """A string DRF's CharField keeps as it is: not blank, no surrounding blanks, ASCII
    printable (no NUL, no surrogate), within the length."""
    return (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isascii()
        and value.isprintable()
        and not value[0].isspace()
        and not value[-1].isspace()
    )


class _Plain:
    """What one batch has learnt of its values: a source, an allocation and an energy appear
    in many records of a batch, and are judged once each."""

    __slots__ = ("allocations", "energies", "sources")

    def __init__(self) -> None:
        self.sources: set[str] = set()
        self.allocations: dict[str, uuid.UUID] = {}
        self.energies: dict[str, Decimal] = {}


def _fast_record(
    record: Any,
    known: _Plain,
    _parse_time: Any = datetime.fromisoformat,
) -> dict[str, Any] | None:
    """The validated record, or None when it is not in the plain form (the serializer then
    decides). Times keep the offset they were given in: the same instants as the serializer's
    (which moves them to the current time zone), compared and stored alike, cheaper to read
    and to write out again. Runs 10,000 times a batch: each check is the cheapest that
    answers, inline rather than in a call, and a value seen before in the batch is not judged
    again."""
    if type(record) is not dict or not (REQUIRED_FIELDS <= record.keys() <= RECORD_FIELDS):
        return None
    source = record["source"]
    external_id = record["external_id"]
    started = record["started_at"]
    ended = record["ended_at"]
    seconds = record["gpu_seconds"]
    allocation = record["allocation"]
    # The external id as `_plain_text` judges it, inline: in printable ASCII the only blank is
    # the space, so "no surrounding blanks" is its first and last character not being one.
    if not (
        type(seconds) is int
        and -GPU_SECONDS_BOUND <= seconds <= GPU_SECONDS_BOUND
        and type(started) is str
        and type(ended) is str
        and type(source) is str
        and (source in known.sources or (_plain_text(source, 64) and _learn(known, source)))
        and type(external_id) is str
        and 0 < len(external_id) <= 128
        and external_id.isascii()
        and external_id.isprintable()
        and external_id[0] != " "
        and external_id[-1] != " "
        and type(allocation) is str
        and len(allocation) == 36
    ):
        return None
    try:
        allocation_id = known.allocations.get(allocation)
        if allocation_id is None:
            allocation_id = known.allocations[allocation] = uuid.UUID(allocation)
        started_at = _parse_time(started)
        ended_at = _parse_time(ended)
    except ValueError:
        return None
    # Naive times, and times so near the calendar's ends that moving them to another zone
    # could overflow, are the serializer's to judge.
    if (
        started_at.tzinfo is None
        or ended_at.tzinfo is None
        or not (1 < started_at.year < 9999 and 1 < ended_at.year < 9999)
    ):
        return None
    valid = {
        "source": source,
        "external_id": external_id,
        "allocation": allocation_id,
        "gpu_seconds": seconds,
        "started_at": started_at,
        "ended_at": ended_at,
    }
    if "energy_kwh" not in record:
        return valid
    energy = record["energy_kwh"]
    if energy is None:
        kwh = None
    elif type(energy) is not str:
        return None
    else:
        kwh = known.energies.get(energy)
        if kwh is None:
            if not ENERGY_PATTERN.fullmatch(energy):
                return None
            kwh = known.energies[energy] = Decimal(energy).quantize(ENERGY_PLACES)
    valid["energy_kwh"] = kwh
    return valid


def _learn(known: _Plain, source: str) -> bool:
    known.sources.add(source)
    return True


def usage_batch_validate(data: Any) -> list[dict[str, Any]]:
    """The validated records of a batch, as `UsageBatchInputSerializer` would give them;
    raises its ValidationError (at the same paths, with the same codes) otherwise."""
    if not (
        isinstance(data, dict)
        and data.keys() == {"records"}
        and type(data["records"]) is list
        and 0 < len(data["records"]) <= MAX_BATCH
    ):
        serializer = UsageBatchInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return list(serializer.validated_data["records"])
    known = _Plain()
    records: list[dict[str, Any]] = []
    errors: list[Any] = []
    for record in data["records"]:
        validated = _fast_record(record, known)
        if validated is None:
            single = UsageRecordInputSerializer(data=record)
            if single.is_valid():
                validated = dict(single.validated_data)
            else:
                errors.append(single.errors)
                continue
        records.append(validated)
        errors.append({})
    if len(records) != len(errors):
        raise serializers.ValidationError({"records": errors})
    return records
