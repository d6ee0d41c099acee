"""Writes refuse fields they do not know with a 400 naming them, and change nothing; one base
serializer does it for every write endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import spectacular_settings

from accounts.models import AccessToken, Organization
from allocations.models import Application, Program, Site
from portal.errors import _flatten
from portal.serializers import StrictFieldsMixin
from tests.factories import PoolFactory, ProgramFactory, SiteFactory

pytestmark = pytest.mark.django_db

UNKNOWN = [{"code": "unknown_field", "message": "This field is not one the request accepts."}]


def _refused(*names: str) -> dict[str, Any]:
    return {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": dict.fromkeys(names, UNKNOWN),
    }


def test_a_program_with_a_misspelt_field_is_refused_and_not_created(client_for, operator):
    # given
    body = {
        "name": "Sigma2 AI",
        "slug": "sigma2-ai",
        "priority": 10,
        "eligible_countries": ["NO"],
        "eligible_organization_kinds": ["university"],
        "min_gpu_hours": 100,
        "max_gpu_hours": 50_000,
        "max_duration_days": 180,
        "auto_approve_max_gpu_hours": 5_000,
        "org_cap_gpu_hours": 200_000,
        "nominal_share": "0.3",
        "lending_limit": "0.5",
        "borrowing_limit": "0.1",
        "turnaround_days": 10,
    }

    # when
    response = client_for(operator).post("/api/v1/programs/", body, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == _refused("eligible_organization_kinds")
    assert not Program.objects.exists()


def test_a_program_change_with_an_unknown_field_changes_nothing(client_for, operator):
    # given
    program = ProgramFactory(priority=10)

    # when
    response = client_for(operator).patch(
        f"/api/v1/programs/{program.pk}/", {"priority": 1, "prio": 2}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == _refused("prio")
    program.refresh_from_db()
    assert program.priority == 10


def test_an_organization_with_unknown_fields_is_refused(client_for, member):
    # given
    before = Organization.objects.count()

    # when
    response = client_for(member).post(
        "/api/v1/organizations/",
        {
            "name": "Extra AS",
            "kind": "startup",
            "country": "SE",
            "verified_at": "2026-01-01",
            "x": 1,
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _refused("verified_at", "x")
    assert Organization.objects.count() == before


def test_a_token_with_an_unknown_field_is_refused(client_for, member):
    # when
    response = client_for(member).post(
        "/api/v1/tokens/", {"name": "ci", "expires_in": 3}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == _refused("expires_in")
    assert not AccessToken.objects.exists()


def test_a_site_with_an_unknown_field_is_refused(client_for, operator):
    # when
    response = client_for(operator).post(
        "/api/v1/sites/",
        {"name": "bodø", "country": "NO", "pue": "1.10", "PUE": "2"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _refused("PUE")
    assert not Site.objects.exists()


def test_an_application_with_an_unknown_field_is_refused(client_for, member, organization):
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
            "title": "Typo",
            "gpu_hours": 10,
            "start_date": "2027-01-01",
            "end_date": "2027-01-31",
            "status": "approved",
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _refused("status")
    assert not Application.objects.exists()


def test_a_usage_record_with_an_unknown_field_is_refused_at_its_path():
    # given
    from allocations.serializers.usage import UsageBatchInputSerializer

    record = {
        "source": "slurm-narvik",
        "external_id": "90001",
        "allocation": "00000000-0000-0000-0000-000000000001",
        "gpu_seconds": 1,
        "gpu_secs": 1,
        "started_at": "2027-01-01T00:00:00Z",
        "ended_at": "2027-01-01T01:00:00Z",
    }

    # when
    serializer = UsageBatchInputSerializer(data={"records": [record], "batch": 1})

    # then
    assert not serializer.is_valid()
    assert _flatten(serializer.errors) == {"batch": UNKNOWN, "records.0.gpu_secs": UNKNOWN}


def test_every_write_endpoint_refuses_unknown_fields():
    # given: every operation of the API with a request body
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    endpoints = generator._get_paths_and_endpoints()

    # when
    loose = []
    for path, _, method, view in endpoints:
        if method not in ("POST", "PUT", "PATCH"):
            continue
        view.request = spectacular_settings.GET_MOCK_REQUEST(method, path, view, None)
        serializer = view.schema.get_request_serializer()
        if serializer is None:
            continue
        klass = serializer if isinstance(serializer, type) else type(serializer)
        if not issubclass(klass, StrictFieldsMixin):
            loose.append(f"{method} {path}: {klass.__name__}")

    # then
    assert loose == []


def test_a_known_site_is_still_created(client_for, operator):
    # given
    SiteFactory(name="existing")

    # when
    response = client_for(operator).post(
        "/api/v1/sites/", {"name": "bodø", "country": "NO", "pue": "1.10"}, format="json"
    )

    # then
    assert response.status_code == 201
