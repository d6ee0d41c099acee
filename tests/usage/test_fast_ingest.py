"""The fast path of usage ingest: validation without a DRF field per value, and the store
through a COPY-loaded staging table on PostgreSQL, with the answers of the serializer and of
the ORM store."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from allocations.models import UsageRecord
from allocations.serializers.usage import (
    RECORD_FIELDS,
    UsageBatchInputSerializer,
    usage_batch_validate,
)
from allocations.services import usage as usage_services
from portal.errors import _flatten

pytestmark = pytest.mark.django_db

ALLOCATION = "6f1d1a8e-58f4-4d0a-9a53-0c3e0f1b2c3d"


def _record(**overrides: object) -> dict[str, object]:
    return {
        "source": "slurm-narvik",
        "external_id": "job-1",
        "allocation": ALLOCATION,
        "gpu_seconds": 3600,
        "started_at": "2027-01-01T00:00:00+01:00",
        "ended_at": "2027-01-01T01:00:00Z",
        **overrides,
    }


# Each in a plain form, in another form the serializer accepts, or in one it refuses.
RECORDS = [
    _record(),
    _record(energy_kwh="12.5"),
    _record(energy_kwh=None),
    _record(energy_kwh=7),
    _record(energy_kwh="0.0005"),
    _record(energy_kwh="-1"),
    _record(energy_kwh="123456789012.5"),
    _record(gpu_seconds="3600"),
    _record(gpu_seconds=3600.0),
    _record(gpu_seconds=1.5),
    _record(gpu_seconds=True),
    _record(gpu_seconds=2**62 + 1),
    _record(gpu_seconds=-(2**62)),
    _record(started_at="2027-01-01T00:00:00"),
    _record(started_at="2027-01-01"),
    _record(started_at="2027-01-01T00:00:00.123456+05:30"),
    _record(started_at="not a time"),
    _record(started_at=20270101),
    _record(external_id=" job-1 "),
    _record(external_id=""),
    _record(external_id="job\t1"),
    _record(external_id="jøb-1"),
    _record(external_id="x" * 129),
    _record(external_id=17),
    _record(source="s" * 65),
    _record(allocation=ALLOCATION.upper()),
    _record(allocation=ALLOCATION.replace("-", "")),
    _record(allocation="{" + ALLOCATION[:34] + "}"),
    _record(allocation="not-a-uuid-at-all-but-36-characters"),
    # values of another JSON type wherever a text, a number or an id is expected
    _record(source={}),
    _record(source=["slurm-narvik"]),
    _record(source=None),
    _record(external_id={}),
    _record(allocation={}),
    _record(allocation=[ALLOCATION]),
    _record(energy_kwh={}),
    _record(energy_kwh=[]),
    _record(started_at={}),
    _record(gpu_seconds={}),
    _record(gpu_secs=1),
    {key: value for key, value in _record().items() if key != "ended_at"},
    "not a record",
]


def _answers_as_the_serializer(data: dict[str, object]) -> None:
    """The fast validation gives the serializer's records, or raises its errors (at the same
    paths, with the same codes), and never raises anything else."""
    serializer = UsageBatchInputSerializer(data=data)
    try:
        fast, error = usage_batch_validate(data), None
    except ValidationError as raised:
        fast, error = None, raised
    if serializer.is_valid():
        assert error is None
        assert fast == [dict(item) for item in serializer.validated_data["records"]]
    else:
        assert error is not None
        assert _flatten(error.detail) == _flatten(serializer.errors)


@pytest.mark.parametrize("record", RECORDS, ids=range(len(RECORDS)))
def test_the_fast_validation_answers_as_the_serializer(record):
    # given
    data = {"records": [_record(external_id="job-0"), record]}

    # then: the fast validation answers as the serializer does
    _answers_as_the_serializer(data)


@pytest.mark.parametrize(
    "data",
    [{"records": []}, {"records": {}}, {"records": [_record()], "batch": 1}, [], {"records": None}],
)
def test_a_malformed_batch_is_refused_as_the_serializer_refuses_it(data):
    # given
    serializer = UsageBatchInputSerializer(data=data)
    assert not serializer.is_valid()

    # when
    with pytest.raises(ValidationError) as raised:
        usage_batch_validate(data)

    # then
    assert _flatten(raised.value.detail) == _flatten(serializer.errors)


@pytest.fixture(params=["copy", "orm"])
def store(request, monkeypatch):
    """Each test below runs through the store PostgreSQL uses and through the ORM's."""
    if request.param == "copy" and connection.vendor != "postgresql":
        pytest.skip("the COPY store needs PostgreSQL")
    if request.param == "orm":
        monkeypatch.setattr(usage_services, "_store_copy", usage_services._store_orm)
    return request.param


def test_new_duplicate_and_conflicting_records_are_told_apart(
    store, scheduler_client, record, allocation
):
    # given: two stored jobs
    scheduler_client.post("/api/v1/usage/", {"records": [record(1), record(2)]}, format="json")
    batch = [
        record(1),  # the same again: a duplicate
        record(2, gpu_seconds=5),  # other content: a conflict
        record(3, energy_kwh="2.5"),  # new
        record(3, energy_kwh="2.500"),  # the same job twice in the batch: a duplicate
        record(4),  # new
        record(4, gpu_seconds=7),  # the same job with other content in the batch: a conflict
        record("tab\there"),  # new, with a character COPY escapes
    ]

    # when
    response = scheduler_client.post("/api/v1/usage/", {"records": batch}, format="json")

    # then
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (3, 2)
    assert [(item["index"], item["code"]) for item in body["rejected"]] == [
        (1, "conflicting_record"),
        (5, "conflicting_record"),
    ]
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 5 * 3_600 * 8
    assert UsageRecord.objects.get(external_id="job-3").energy_kwh == Decimal("2.5")
    assert UsageRecord.objects.filter(external_id="job-tab\there").exists()
    assert UsageRecord.objects.get(external_id="job-2").gpu_seconds == 3_600 * 8


def test_energy_is_counted_as_reported_or_from_the_pools_power(
    store, scheduler_client, record, allocation
):
    # given
    batch = [record(1, energy_kwh="10.125"), record(2, gpu_seconds=3_601)]
    per_gpu_hour = Decimal(allocation.pool.accelerator.it_power_w) * allocation.pool.site.pue / 1000
    estimated = (Decimal(3_601) / 3600 * per_gpu_hour).quantize(Decimal("0.001"))

    # when
    scheduler_client.post("/api/v1/usage/", {"records": batch}, format="json")

    # then
    allocation.refresh_from_db()
    assert allocation.energy_kwh == Decimal("10.125") + estimated
    assert UsageRecord.objects.get(external_id="job-2").energy_kwh is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY store is PostgreSQL's")
def test_the_copy_store_costs_the_same_queries_for_ten_records_and_for_a_thousand(
    scheduler_client, record, allocation
):
    # given: the token used once already (its first use is noted, at most once a minute)
    scheduler_client.post("/api/v1/usage/", {"records": [record(0, gpu_seconds=1)]}, format="json")
    small = [record(index, gpu_seconds=1) for index in range(1, 11)]
    large = [record(1_000 + index, gpu_seconds=1) for index in range(1_000)]

    # when
    with CaptureQueriesContext(connection) as few:
        scheduler_client.post("/api/v1/usage/", {"records": small}, format="json")
    with CaptureQueriesContext(connection) as many:
        response = scheduler_client.post("/api/v1/usage/", {"records": large}, format="json")

    # then
    assert response.json()["accepted"] == 1_000
    assert len(many.captured_queries) == len(few.captured_queries)
    assert any("ON CONFLICT" in query["sql"] for query in many.captured_queries)


def test_two_ingests_in_one_transaction_count_each_record_once(
    store, scheduler, record, allocation
):
    # given: a caller that holds one transaction around both batches
    from django.db import transaction

    def ingest(*numbers: int) -> usage_services.IngestResult:
        records = usage_batch_validate({"records": [record(number) for number in numbers]})
        return usage_services.usage_ingest(records=records, source="slurm-narvik")

    # when: a record, the same again (not inserted), then a new one beside it once more
    with transaction.atomic():
        first = ingest(1)
        again = ingest(1)
        third = ingest(2, 1)

    # then: each batch answers for its own records only
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates) == (0, 1)
    assert (third.accepted, third.duplicates, third.rejected) == (1, 1, [])
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 2 * 3_600 * 8


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(RECORD_FIELDS)), value=JSON)
def test_any_json_value_in_any_field_is_answered_as_the_serializer_answers_it(field, value):
    # given: a plain record, and a second one with one field of any JSON value
    data = {"records": [_record(), _record(**{"external_id": "job-2", field: value})]}

    # then: the fast validation answers as the serializer does
    _answers_as_the_serializer(data)
