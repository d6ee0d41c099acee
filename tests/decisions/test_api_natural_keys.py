"""Pools, programs and sites by their slug or name where an id is taken; every unknown path
under /api/ is the API's JSON 404, in DEBUG as well."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from allocations.models import Application

pytestmark = pytest.mark.django_db


def _body(startup, today, **overrides) -> dict:
    return {
        "organization": str(startup.pk),
        "title": "Sámi speech model",
        "gpu_hours": 2_000,
        "start_date": str(today + timedelta(days=3)),
        "end_date": str(today + timedelta(days=12)),
        **overrides,
    }


@pytest.mark.parametrize("program_key", ["slug", "name", "NAME IN CAPITALS", "pk"])
def test_a_draft_names_its_program_and_pool_as_people_know_them(
    client_for, founder, startup, fast_lane, pool, today, program_key
):
    # given
    program = {
        "slug": fast_lane.slug,
        "name": fast_lane.name,
        "NAME IN CAPITALS": fast_lane.name.upper(),
        "pk": str(fast_lane.pk),
    }[program_key]

    # when
    response = client_for(founder).post(
        "/api/v1/applications/", _body(startup, today, program=program, pool=pool.name)
    )

    # then
    assert response.status_code == 201, response.json()
    created = Application.objects.get()
    assert (created.program, created.pool) == (fast_lane, pool)
    assert response.json()["program"] == str(fast_lane.pk)


def test_an_unknown_name_is_a_validation_error_and_writes_nothing(
    client_for, founder, startup, fast_lane, pool, today
):
    # when
    response = client_for(founder).post(
        "/api/v1/applications/", _body(startup, today, program="no-such-program", pool=pool.name)
    )

    # then
    assert response.status_code == 400
    assert response.json()["fields"]["program"][0]["code"] == "does_not_exist"
    assert Application.objects.count() == 0


def test_capacity_and_reports_take_a_pool_or_site_by_name(client_for, founder, operator, pool):
    # when
    capacity = client_for(founder).get("/api/v1/capacity/", {"pool": pool.name})
    by_site = client_for(operator).get("/api/v1/reports/capacity/", {"site": pool.site.name})

    # then
    assert capacity.status_code == 200
    assert by_site.status_code == 200


def test_a_draft_that_can_never_pass_is_refused_with_the_reasons_codes(
    client_for, founder, startup, fast_lane, pool, today
):
    # when
    response = client_for(founder).post(
        "/api/v1/applications/",
        _body(
            startup,
            today,
            program=fast_lane.slug,
            pool=pool.name,
            gpu_hours=60_000,
            start_date=str(today - timedelta(days=1)),
        ),
    )

    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert {name: [e["code"] for e in errors] for name, errors in body["fields"].items()} == {
        "gpu_hours": ["out_of_bounds"],
        "start_date": ["window_in_past"],
    }
    assert Application.objects.count() == 0


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/nothing", "/api/v1/nothing/here/", "/api/v2/"])
def test_every_unknown_api_path_answers_the_json_404(api, path, debug):
    # when
    with override_settings(DEBUG=debug):
        response = api.get(path)

    # then
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_a_known_api_path_without_its_slash_still_redirects_a_read(api):
    # when
    response = api.get("/api/v1/programs")

    # then
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/programs/"


def test_a_write_to_an_unknown_api_path_with_a_session_is_the_json_404_not_a_csrf_page(
    founder,
):
    # given: a browser session (a cookie, no CSRF token)
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(founder)

    # when
    response = client.post("/api/v1/pools/null,null/capacity-events/", {})

    # then
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
