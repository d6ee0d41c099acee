"""The list serializers write what DRF's field machinery writes, row for row, for the rows a
list page reads (ids only, no related row loaded) and for whole rows alike."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from allocations.models import Allocation, Application
from allocations.selectors import demand as selectors
from allocations.serializers.demand import AllocationSerializer, ApplicationSerializer

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


def test_a_new_application_is_written_before_it_is_read_back(founder, draft):
    # given: values as the code set them (choices as members, not yet read from the database)
    application = draft()
    fresh = Application.objects.get(pk=application.pk)

    # when / then
    assert ApplicationSerializer(application).data == _drf(ApplicationSerializer, application)
    assert ApplicationSerializer(fresh).data == _drf(ApplicationSerializer, fresh)
