"""The base of every serializer that reads a request body.

- A field the serializer does not accept is refused with `unknown_field`, named at its path,
  never silently dropped: a misspelt `eligible_kinds` must not save a program open to every
  kind of organization.
- Days lie between 2000-01-01 and 2999-12-31, so that every window and every `day + n` the
  ledger counts stays inside Python's calendar.
- Free texts have a length bound even where the model column has none.
"""

from __future__ import annotations

import decimal
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone
from django_countries.serializer_fields import CountryField
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import ISO_8601, api_settings  # type: ignore[attr-defined]

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)
MAX_TEXT_LENGTH = 10_000
UNKNOWN_FIELD_MESSAGE = "This field is not one the request accepts."


# A day as the schema documents it: inside the portal's calendar (years 2000 to 2999).
DAY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date",
    "pattern": r"^2[0-9]{3}-[0-9]{2}-[0-9]{2}$",
}


@extend_schema_field(DAY_SCHEMA)
class BoundedDateField(serializers.DateField):
    """A day inside the calendar the portal counts in (see `FIRST_DAY`, `LAST_DAY`)."""

    default_error_messages = {
        "date_out_of_range": f"Give a day from {FIRST_DAY} to {LAST_DAY}.",
    }

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        if not FIRST_DAY <= day <= LAST_DAY:
            self.fail("date_out_of_range")
        return day


#: The longest window an application, or a pool's availability, covers (ten years).
MAX_WINDOW_DAYS = 3660
#: The longest window of days a report or the capacity may be asked for (two years, a leap
#: day included): every day of it is a row of the ledger or the timeline the answer is made of.
MAX_QUERY_DAYS = 731


def window_validate(
    attrs: dict[str, Any],
    *,
    default_days: int,
    max_days: int = MAX_QUERY_DAYS,
    looking_back: bool = False,
) -> tuple[date, date]:
    """The `start` and `end` of a query: when not given, from today to `default_days` later
    (or, `looking_back`, from `default_days` before the end to the end, today by default);
    the end on or after the start (`before_start`), at most `max_days` days in all
    (`window_too_long`), both named at the field `end`."""
    if looking_back:
        end = attrs.get("end") or timezone.localdate()
        start = attrs.get("start") or end - timedelta(days=default_days)
    else:
        start = attrs.get("start") or timezone.localdate()
        end = attrs.get("end") or start + timedelta(days=default_days)
    if end < start:
        raise serializers.ValidationError(
            {"end": "The end comes on or after the start."}, code="before_start"
        )
    if (end - start).days + 1 > max_days:
        raise serializers.ValidationError(
            {"end": f"Ask for at most {max_days} days at a time."}, code="window_too_long"
        )
    return start, end


class PortalCountryField(CountryField):
    """An ISO 3166-1 country code (or name) as a string; an object or a blank is refused
    rather than stored as no country."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not data.strip():
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


if TYPE_CHECKING:
    _SerializerBase = serializers.Serializer
else:
    _SerializerBase = object


class StrictFieldsMixin(_SerializerBase):
    """Refuses every key of the body that is not a writable field of the serializer."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[ErrorDetail]] = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {
                str(key): [ErrorDetail(UNKNOWN_FIELD_MESSAGE, code="unknown_field")]
                for key in data
                if key not in writable
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, Mapping):
                raise serializers.ValidationError({**error.detail, **unknown}) from error
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    """A request body: unknown fields refused."""


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A request body for a model: unknown fields refused, days bounded, texts bounded."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateField: BoundedDateField,
    }

    def build_standard_field(
        self, field_name: str, model_field: models.Field[Any, Any]
    ) -> tuple[type[serializers.Field], dict[str, Any]]:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if isinstance(model_field, models.TextField) and "max_length" not in field_kwargs:
            field_kwargs["max_length"] = MAX_TEXT_LENGTH
        return field_class, field_kwargs


@extend_schema_field(
    {
        "type": "string",
        "description": "The object's id (a UUID), or its slug or name where it has them.",
    }
)
class NaturalKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An object named by its id or by one of its unique natural keys: people know a pool as
    `narvik-gb300-a` and a program as `no-startups-fast-lane`, not by their UUIDs. A key that
    is not a UUID is looked up by each natural key exactly, then by name in any case."""

    def __init__(self, *, natural_keys: tuple[str, ...], **kwargs: Any) -> None:
        self.natural_keys = natural_keys
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and not _is_uuid(data):
            queryset = self.get_queryset()
            assert queryset is not None
            for key in self.natural_keys:
                found = list(queryset.filter(**{key: data})[:2])
                if len(found) == 1:
                    return found[0]
            if "name" in self.natural_keys:
                found = list(queryset.filter(name__iexact=data)[:2])
                if len(found) == 1:
                    return found[0]
            # The code of an unknown id; the message names what was looked for.
            raise serializers.ValidationError(
                f'Nothing has the id or name "{data}".', code="does_not_exist"
            )
        return super().to_internal_value(data)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class FastOutputMixin(_SerializerBase):
    """Output without the per-value cost of DRF's field machinery, for serializers of long
    lists. The fields stay declared as they are (they make the schema); what each one writes
    is worked out once per serializer instance (a list's child serves every row): plain
    attributes are copied, ids and choices made strings, days written in ISO 8601, related
    ids read from their column without loading the row, as DRF's fields would; any other
    field (times, decimals, nested ones, methods) is asked as DRF asks it.

    The plan is made once per class, from the fields of its first instance: building a
    ModelSerializer's fields costs more than writing a page of rows. So a field asked as DRF
    asks it is that first instance's: the mixin is for output serializers whose fields and
    methods read nothing of the serializer's context or instance."""

    def _output_plan(self) -> list[tuple[str, int, str, Any]]:
        plan = []
        model = getattr(getattr(self, "Meta", None), "model", None)
        for field in self._readable_fields:
            attribute = field.source_attrs[0] if len(field.source_attrs) == 1 else ""
            kind = GENERIC
            if not attribute or type(field).to_representation is not _OWN[type(field)]:
                kind = GENERIC
            elif type(field) in _COPIED:
                kind = COPIED
            elif type(field) is serializers.BigIntegerField:
                coerced = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
                kind = AS_TEXT if coerced else COPIED
            elif type(field) in _AS_TEXT and getattr(field, "uuid_format", "hex_verbose") == (
                "hex_verbose"
            ):
                kind = AS_TEXT
            elif type(field) is serializers.DateField and _day_format(field) == ISO_8601:
                kind = ISO_DAY
            elif (
                type(field) is serializers.DateTimeField
                and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601
            ):
                kind = ISO_TIME
            elif (
                type(field) is serializers.DecimalField
                and getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
                and not field.localize
                and not field.normalize_output
                and field.decimal_places is not None
            ):
                kind = DECIMAL
            elif (
                type(field) is serializers.PrimaryKeyRelatedField
                and field.pk_field is None
                and model is not None
            ):
                related = model._meta.get_field(attribute)
                if (related.many_to_one or related.one_to_one) and hasattr(related, "attname"):
                    kind, attribute = COPIED, related.attname
            plan.append((str(field.field_name), kind, attribute, field))
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = _PLANS.get(type(self))
        if plan is None:
            plan = _PLANS[type(self)] = self._output_plan()
        answer: dict[str, Any] = {}
        # The current time zone, read when a time is first written and kept by the serializer
        # (a list's child serves every row): its output is made once too (`.data` is kept).
        zone: Any = self.__dict__.get("_portal_zone", _UNSET)
        context: Any = None
        for name, kind, attribute, field in plan:
            if kind == GENERIC:
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                marker = value.pk if isinstance(value, PKOnlyObject) else value
                answer[name] = None if marker is None else field.to_representation(value)
                continue
            value = getattr(instance, attribute)
            if value is None or kind == COPIED:
                answer[name] = value
            elif kind == AS_TEXT:
                answer[name] = str(value)
            elif kind == ISO_DAY:
                answer[name] = value if isinstance(value, str) else value.isoformat()
            elif kind == ISO_TIME:
                if hasattr(field, "timezone"):
                    field_zone = field.timezone
                else:
                    if zone is _UNSET:
                        zone = self.__dict__["_portal_zone"] = field.default_timezone()
                    field_zone = zone
                try:
                    if (
                        field_zone is None
                        or type(value) is not datetime
                        or value.utcoffset() is None
                    ):
                        raise TypeError
                    text = value.astimezone(field_zone).isoformat()
                except (TypeError, OverflowError):
                    answer[name] = field.to_representation(value)
                    continue
                answer[name] = text[:-6] + "Z" if text.endswith("+00:00") else text
            else:  # DECIMAL: DecimalField.to_representation and its quantize, step by step
                if callable(value):
                    answer[name] = field.to_representation(value)
                    continue
                if not isinstance(value, Decimal):
                    value = Decimal(str(value).strip())
                if context is None:
                    context = decimal.getcontext().copy()
                if field.max_digits is not None:
                    context.prec = field.max_digits
                else:
                    context.prec = decimal.getcontext().prec
                quantized = value.quantize(
                    _QUANTA[field.decimal_places], rounding=field.rounding, context=context
                )
                answer[name] = f"{quantized:f}"
        return answer


GENERIC, COPIED, AS_TEXT, ISO_DAY, ISO_TIME, DECIMAL = range(6)
_UNSET = object()


class _Quanta(dict[int, Decimal]):
    """`Decimal('.1') ** places`, as DecimalField.quantize makes it, made once per places."""

    def __missing__(self, places: int) -> Decimal:
        made = self[places] = Decimal(".1") ** places
        return made


_QUANTA = _Quanta()
_PLANS: dict[type, list[tuple[str, int, str, Any]]] = {}


def _day_format(field: serializers.DateField) -> Any:
    """The output format DateField.to_representation reads."""
    return getattr(field, "format", api_settings.DATE_FORMAT)


# Field classes whose to_representation gives back the value (for the values a model holds:
# whole numbers, booleans), or its text (ids, texts, choices); checked against the method
# DRF defines, so that a subclass that writes its own is asked as DRF asks it.
_COPIED = {serializers.IntegerField, serializers.BooleanField}
_AS_TEXT = {serializers.UUIDField, serializers.CharField, serializers.ChoiceField}
_OWN: dict[type, Any] = {
    cls: cls.to_representation  # type: ignore[attr-defined]
    for cls in (
        *_COPIED,
        *_AS_TEXT,
        serializers.BigIntegerField,
        serializers.DateField,
        serializers.DateTimeField,
        serializers.DecimalField,
        serializers.PrimaryKeyRelatedField,
    )
}
_OWN = defaultdict(lambda: None, _OWN)
