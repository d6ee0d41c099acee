from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_url_answers_json_404(client):
    # when
    response = client.get("/api/v1/no-such-thing/")

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_malformed_id_in_api_url_answers_json_404(client_for, member):
    # when
    response = client_for(member).get("/api/v1/organizations/not-a-uuid/")

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_anonymous_request_answers_401_not_authenticated(api):
    # when
    response = api.get("/api/v1/me/")

    # then
    assert response.status_code == 401
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_wrong_method_answers_405_with_code(client_for, member):
    # when
    response = client_for(member).put("/api/v1/me/", {}, format="json")

    # then
    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "message": 'Method "PUT" not allowed.'}


def test_form_encoded_body_answers_415_with_code(client_for, member):
    # when
    response = client_for(member).post(
        "/api/v1/organizations/", "name=x", content_type="application/x-www-form-urlencoded"
    )

    # then
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_wrong_json_type_answers_field_errors(client_for, member):
    # when: a list where an object is expected
    response = client_for(member).post("/api/v1/organizations/", [1, 2], format="json")

    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": {
            "non_field_errors": [
                {
                    "code": "invalid",
                    "message": "Invalid data. Expected a dictionary, but got list.",
                }
            ]
        },
    }
