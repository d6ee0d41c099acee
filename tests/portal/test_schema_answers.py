"""What the API answers matches what its schema documents: each answer below is validated
against the generated schema's response for its path, method and status."""

from __future__ import annotations

import copy
import io
import re
from functools import cache
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from accounts.models import Organization
from tests.factories import OrganizationFactory, PoolFactory, ProgramFactory

pytestmark = pytest.mark.django_db

PAGINATED = [
    "/api/v1/tokens/",
    "/api/v1/organizations/",
    "/api/v1/sites/",
    "/api/v1/accelerators/",
    "/api/v1/pools/",
    "/api/v1/programs/",
]
KEYSET_PAGINATED = ["/api/v1/applications/", "/api/v1/allocations/"]


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's `null` type, recursively."""
    if isinstance(node, dict):
        node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    return node


@cache
def _document() -> dict[str, Any]:
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    return _nullable_to_json_schema(yaml.safe_load(out.getvalue()))


def _operation(path: str, method: str) -> dict[str, Any]:
    document = _document()
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in the schema")


def assert_documented(response: Any, method: str) -> None:
    """The response's status is documented for its operation and its body matches."""
    path = response.wsgi_request.path
    operation = _operation(path, method)
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} {status} is undocumented"
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    document = _document()
    registry = Registry().with_resource("urn:schema", Resource.opaque(copy.deepcopy(document)))
    wrapped = {"$ref": "urn:schema#" + schema["$ref"][1:]} if "$ref" in schema else schema
    errors = list(Draft202012Validator(wrapped, registry=registry).iter_errors(response.json()))
    assert errors == [], [error.message for error in errors]


def test_a_malformed_body_answers_the_documented_400(client_for, member):
    # when
    response = client_for(member).post(
        "/api/v1/organizations/", "{", content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert_documented(response, "POST")


def test_wrong_credentials_answer_the_documented_401(api, member):
    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": member.email, "password": "wrong"}, format="json"
    )

    # then
    assert response.status_code == 401
    assert_documented(response, "POST")


def test_an_application_that_changes_no_allocation_matches_its_schema(
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
            "title": "New",
            "gpu_hours": 10,
            "start_date": "2027-01-01",
            "end_date": "2027-01-31",
        },
        format="json",
    )

    # then
    assert response.status_code == 201
    assert response.json()["changes_allocation"] is None
    assert_documented(response, "POST")


def test_an_organization_stored_without_a_country_reads_null_as_documented(client_for, operator):
    # given: a row from before countries were checked
    OrganizationFactory(name="Nowhere AS", country="")
    organization = Organization.objects.get(name="Nowhere AS")

    # when
    response = client_for(operator).get(f"/api/v1/organizations/{organization.pk}/")

    # then
    assert response.status_code == 200
    assert response.json()["country"] is None
    assert_documented(response, "GET")


@pytest.mark.parametrize("url", KEYSET_PAGINATED)
def test_a_cursor_the_api_did_not_give_answers_the_documented_404(url, client_for, operator):
    # when
    response = client_for(operator).get(f"{url}?cursor=bz14")

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Invalid cursor"}
    assert_documented(response, "GET")


@pytest.mark.parametrize("url", PAGINATED)
def test_a_page_past_the_last_answers_the_documented_404(url, client_for, operator):
    # when
    response = client_for(operator).get(f"{url}?page=999")

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Invalid page."}
    assert_documented(response, "GET")


def test_a_bad_day_on_the_shares_report_answers_the_documented_400(client_for, operator):
    # when
    response = client_for(operator).get("/api/v1/reports/shares/?start=someday")

    # then
    assert response.status_code == 400
    assert response.json()["fields"]["start"][0]["code"] == "invalid"
    assert_documented(response, "GET")


@pytest.mark.parametrize("value", ["many", "0", "-3", "1.5"])
def test_a_page_size_that_is_not_a_positive_whole_number_is_refused(value, client_for, operator):
    # when
    response = client_for(operator).get(f"/api/v1/programs/?page_size={value}")

    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": {
            "page_size": [{"code": "invalid", "message": "Give a whole number from 1 to 500."}]
        },
    }
    assert_documented(response, "GET")


def test_a_page_size_past_the_most_is_clamped_to_it(client_for, operator):
    # given
    ProgramFactory()

    # when
    response = client_for(operator).get("/api/v1/programs/?page_size=100000")

    # then
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_a_revoked_token_on_the_api_root_answers_the_documented_401(api, member):
    # given
    from accounts.services import token_create, token_revoke

    issued = token_create(user=member, name="old")
    token_revoke(token=issued.token, actor=member)

    # when
    response = api.get("/api/v1/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert_documented(response, "GET")


def test_every_request_body_is_documented_closed_to_unknown_fields():
    # given
    document = _document()

    # when
    open_bodies = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            name = body["schema"]["$ref"].rsplit("/", 1)[-1]
            if document["components"]["schemas"][name].get("additionalProperties") is not False:
                open_bodies.append(f"{method.upper()} {path}: {name}")

    # then
    assert open_bodies == []


def test_page_numbers_and_sizes_are_documented_from_one():
    # given
    document = _document()

    # when
    loose = [
        f"{path} {parameter['name']}"
        for path, operations in document["paths"].items()
        for parameter in operations.get("get", {}).get("parameters", [])
        if parameter["name"] in ("page", "page_size") and parameter["schema"].get("minimum") != 1
    ]

    # then
    assert loose == []


@pytest.mark.parametrize(
    "path",
    ["/api/v1/capacity/", "/api/v1/pools/{id}/availability/", "/api/v1/reports/capacity/",
     "/api/v1/reports/shares/"],
)  # fmt: skip
def test_days_in_queries_are_documented_inside_the_portals_calendar(path):
    # given
    parameters = _document()["paths"][path]["get"]["parameters"]

    # when
    days = {p["name"]: p["schema"] for p in parameters if p["name"] in ("start", "end")}

    # then
    assert days == {
        name: {"type": "string", "format": "date", "pattern": "^2[0-9]{3}-[0-9]{2}-[0-9]{2}$"}
        for name in ("start", "end")
    }
