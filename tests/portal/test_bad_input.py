"""Bad input answers a JSON 400 (or 404, 413) with a stable code, never a 500 or an HTML page,
and changes nothing."""

from __future__ import annotations

import json
from datetime import date

import pytest

from accounts.models import Organization
from allocations.models import Application
from portal.parsers import MAX_DEPTH, _deeper_than
from tests.factories import CapacityEventFactory, PoolFactory, ProgramFactory, SiteFactory

pytestmark = pytest.mark.django_db

DAY_OUT_OF_RANGE = [
    {"code": "date_out_of_range", "message": "Give a day from 2000-01-01 to 2999-12-31."}
]


def _validation_error(fields: dict) -> dict:
    return {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": fields,
    }


def test_json_nested_a_thousand_deep_is_a_malformed_request(client_for, member):
    # given
    body = "[" * 1000 + "]" * 1000
    before = Organization.objects.count()

    # when
    response = client_for(member).post(
        "/api/v1/organizations/", body, content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "malformed_request",
        "message": "JSON parse error - the body nests too deeply.",
    }
    assert Organization.objects.count() == before


@pytest.mark.parametrize(
    ("body", "deeper"),
    [
        ("[" * 32 + "]" * 32, False),
        ("[" * 33 + "]" * 33, True),
        ('{"a": ' * 32 + "1" + "}" * 32, False),
        ('{"a": ' * 33 + "1" + "}" * 33, True),
        # the deep branch beside shallow ones, and after a scalar
        ('{"records": [{"a": 1}, ' + "[" * 31 + "]" * 31 + ', "x"]}', True),
        ('{"records": [{"a": 1}, ' + "[" * 30 + "]" * 30 + ', "x"]}', False),
        ('[1, "[[[[", {"b": "]]]"}]', False),
        ("7", False),
    ],
)
def test_the_depth_check_counts_levels_of_containers(body, deeper):
    assert _deeper_than(json.loads(body), MAX_DEPTH) is deeper


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/capacity/?pool={pool}&start=9999-12-31",
        "/api/v1/pools/{pool}/availability/?start=9999-12-31",
        "/api/v1/reports/capacity/?pool={pool}&start=9999-12-31",
    ],
)
def test_a_start_at_the_end_of_the_calendar_is_a_field_error(url, client_for, operator):
    # given
    pool = PoolFactory()
    CapacityEventFactory(pool=pool, effective_from=date(2026, 1, 1))

    # when
    response = client_for(operator).get(url.format(pool=pool.pk))

    # then
    assert response.status_code == 400
    assert response.json() == _validation_error({"start": DAY_OUT_OF_RANGE})


def test_an_application_at_the_end_of_the_calendar_is_a_field_error(
    client_for, member, organization
):
    # given
    pool = PoolFactory()
    program = ProgramFactory()

    # when
    response = client_for(member).post(
        "/api/v1/applications/",
        {
            "organization": str(organization.pk),
            "program": str(program.pk),
            "pool": str(pool.pk),
            "title": "Far away",
            "gpu_hours": 10,
            "start_date": "9999-12-30",
            "end_date": "9999-12-31",
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _validation_error(
        {"start_date": DAY_OUT_OF_RANGE, "end_date": DAY_OUT_OF_RANGE}
    )
    assert not Application.objects.exists()


def test_a_registry_number_with_non_ascii_digits_is_a_field_error(client_for, member):
    # given
    before = Organization.objects.count()

    # when
    response = client_for(member).post(
        "/api/v1/organizations/",
        {
            "name": "Superscript AS",
            "kind": "startup",
            "country": "NO",
            "registry_number": "12345678²",
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _validation_error(
        {
            "registry_number": [
                {
                    "code": "invalid_registry_number",
                    "message": "A Norwegian organization number has nine digits.",
                }
            ]
        }
    )
    assert Organization.objects.count() == before


def test_a_body_over_the_upload_limit_is_refused_with_413(client_for, member, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = Organization.objects.count()

    # when
    response = client_for(member).post(
        "/api/v1/organizations/",
        {"name": "x" * 2000, "kind": "startup", "country": "SE"},
        format="json",
    )

    # then
    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "message": "The request body is larger than 1000 bytes.",
    }
    assert Organization.objects.count() == before


def test_a_bad_host_under_the_api_answers_json_400(client):
    # when
    response = client.get("/api/v1/", HTTP_HOST="evil.example")

    # then
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "bad_request", "message": "The request was refused."}


def test_a_post_without_the_trailing_slash_answers_json_404_not_a_redirect(client_for, member):
    # given
    before = Organization.objects.count()

    # when
    response = client_for(member).post(
        "/api/v1/organizations",
        {"name": "No slash AS", "kind": "startup", "country": "SE"},
        format="json",
    )

    # then
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "Not found. API paths end with a slash: /api/v1/organizations/",
    }
    assert Organization.objects.count() == before


def test_an_object_as_country_is_a_field_error_not_an_empty_country(client_for, member):
    # given
    before = Organization.objects.count()

    # when
    response = client_for(member).post(
        "/api/v1/organizations/",
        {"name": "Nowhere AS", "kind": "startup", "country": {}},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _validation_error(
        {"country": [{"code": "invalid_choice", "message": '"{}" is not a valid choice.'}]}
    )
    assert Organization.objects.count() == before


def test_an_object_as_a_site_country_is_a_field_error(client_for, operator):
    # given
    SiteFactory(name="existing")

    # when
    response = client_for(operator).post(
        "/api/v1/sites/", {"name": "nowhere", "country": {}, "pue": "1.10"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == _validation_error(
        {"country": [{"code": "invalid_choice", "message": '"{}" is not a valid choice.'}]}
    )


def test_a_two_megabyte_summary_is_refused(client_for, member, organization):
    # given
    pool = PoolFactory()
    program = ProgramFactory()

    # when
    response = client_for(member).post(
        "/api/v1/applications/",
        {
            "organization": str(organization.pk),
            "program": str(program.pk),
            "pool": str(pool.pk),
            "title": "Long story",
            "summary": "x" * 2_000_000,
            "gpu_hours": 10,
            "start_date": "2027-01-01",
            "end_date": "2027-01-31",
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _validation_error(
        {
            "summary": [
                {
                    "code": "max_length",
                    "message": "Ensure this field has no more than 10000 characters.",
                }
            ]
        }
    )
    assert not Application.objects.exists()
