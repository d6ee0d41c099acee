"""The list serializers write what DRF's field machinery writes, row for row, for the rows a
list page reads (ids only, no related row loaded) and for whole rows alike."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from allocations.models import Allocation, Application
from allocations.selectors import demand as selectors
from allocations.serializers.demand import AllocationSerializer, ApplicationSerializer
from portal.renderers import PortalJSONRenderer

pytestmark = pytest.mark.django_db


def _drf(serializer_class: type[serializers.ModelSerializer], instance: object) -> dict:
    """What ModelSerializer itself writes for the instance."""
    return dict(serializers.ModelSerializer.to_representation(serializer_class(), instance))


def test_applications_are_written_as_drf_writes_them(draft, decide, founder, window):
    # given: a draft, an approved one with its allocation, one in review with reasons
    draft(title="Still a draft")
    decide(draft(title="Approved", gpu_hours=100, **window(1, 3)))
    decide(draft(title="Large", gpu_hours=40_000, **window(1, 30)))
    rows = selectors.application_list_for_user(user=founder)
    page = selectors.application_page_rows(rows)

    # when
    written = [ApplicationSerializer(row).data for row in page]

    # then
    assert written == [_drf(ApplicationSerializer, row) for row in rows]
    assert [dict(item) for item in written] == [ApplicationSerializer(row).data for row in rows]
    assert {item["status"] for item in written} >= {"draft", "approved"}
    assert any(item["allocation"] for item in written)


def test_allocations_are_written_as_drf_writes_them(draft, decide, founder, window):
    # given
    for index in range(3):
        decide(draft(title=f"Run {index}", gpu_hours=100 + index, **window(1, 2 + index)))
    rows = selectors.allocation_list_for_user(user=founder)
    page = selectors.allocation_page_rows(rows)

    # when
    with CaptureQueriesContext(connection) as queries:
        written = AllocationSerializer(page, many=True).data

    # then
    assert len(queries.captured_queries) == 1
    assert [dict(item) for item in written] == [_drf(AllocationSerializer, row) for row in rows]
    assert Allocation.objects.count() == 3 == len(written)


def test_the_api_renders_a_page_to_the_bytes_drf_renders(draft, decide, founder, window):
    # given
    for index in range(3):
        decide(draft(title=f"Run {index}", gpu_hours=100 + index, **window(1, 2 + index)))
    page = selectors.allocation_page_rows(selectors.allocation_list_for_user(user=founder))
    data = {"next": None, "previous": None, "results": AllocationSerializer(page, many=True).data}

    # when
    rendered = PortalJSONRenderer().render(data)

    # then
    assert rendered == JSONRenderer().render(data)
    assert rendered.count(b'"organization":"') == 3


def test_a_new_application_is_written_before_it_is_read_back(founder, draft):
    # given: values as the code set them (choices as members, not yet read from the database)
    application = draft()
    fresh = Application.objects.get(pk=application.pk)

    # when / then
    assert ApplicationSerializer(application).data == _drf(ApplicationSerializer, application)
    assert ApplicationSerializer(fresh).data == _drf(ApplicationSerializer, fresh)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Oslo", "Asia/Kolkata", "America/St_Johns"])
def test_times_and_decimals_are_written_as_drf_writes_them_in_any_time_zone(
    draft, decide, founder, window, zone
):
    # given: usage that leaves digits to round, read in another time zone than the stored one
    for index in range(2):
        decide(draft(title=f"Run {index}", gpu_hours=100 + index, **window(1, 2 + index)))
    Allocation.objects.update(used_gpu_seconds=1_234_567, energy_kwh="1234.5675")
    rows = selectors.allocation_list_for_user(user=founder)
    page = selectors.allocation_page_rows(rows)

    # when
    with timezone.override(zone):
        written = [dict(item) for item in AllocationSerializer(page, many=True).data]
        expected = [_drf(AllocationSerializer, row) for row in rows]

    # then
    assert written == expected
    assert written[0]["used_gpu_hours"] == "342.93"  # rounded down by the model
    assert written[0]["created_at"].endswith("Z") == (zone == "UTC")
