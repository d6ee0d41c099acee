from __future__ import annotations

import io
import warnings

import pytest
import yaml
from django.core.management import call_command
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def _schema() -> dict:
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_command("spectacular", "--fail-on-warn", "--validate", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_schema_generates_without_warning_and_validates():
    # when
    schema = _schema()

    # then
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/organizations/{organization_id}/verify/" in schema["paths"]


def test_every_operation_documents_its_errors_with_the_error_component():
    # given
    schema = _schema()
    error_refs = {"#/components/schemas/Error", "#/components/schemas/ValidationError"}

    # then
    for path, operations in schema["paths"].items():
        if path == "/api/v1/":  # the public list of links cannot fail
            continue
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
            assert errors, f"{method.upper()} {path} documents no error"
            for code, response in errors.items():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref in error_refs, f"{method.upper()} {path} {code}: {ref}"


def test_protected_operations_document_401_and_bearer_auth():
    # given
    schema = _schema()

    # then
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = schema["paths"]["/api/v1/me/"]["get"]
    assert "401" in me["responses"]
    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert token.get("security", [{}]) == [{}]
    assert "invalid_credentials" in token["responses"]["401"]["description"]


def test_docs_pages_are_served_from_local_files(client):
    # when
    swagger = client.get("/api/docs/")
    redoc = client.get("/api/redoc/")

    # then: the pages load their assets from this server, never from a CDN
    assert swagger.status_code == 200
    assert redoc.status_code == 200
    for page in (swagger.content.decode(), redoc.content.decode()):
        assert "/static/drf_spectacular_sidecar/" in page
        assert "cdn." not in page
        assert "unpkg" not in page
