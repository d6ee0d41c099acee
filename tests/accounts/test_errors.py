"""Every accounts endpoint answers bad requests with the portal's JSON error body and writes
nothing: malformed JSON, the wrong JSON type, the wrong media type, the wrong method."""

from __future__ import annotations

import pytest

from accounts.services import token_create
from tests.bodies import MALFORMED_JSON, NOT_FOUND

pytestmark = pytest.mark.django_db

# Each writing endpoint, as the organization admin calls it.
POSTS = [
    "/api/v1/auth/token/",
    "/api/v1/tokens/",
    "/api/v1/organizations/",
    "/api/v1/organizations/{organization}/invitations/",
]


@pytest.fixture
def admin_client(client_for, org_admin):
    return client_for(org_admin)


@pytest.mark.parametrize("path", POSTS)
def test_malformed_json_answers_400_malformed_request_and_writes_nothing(
    admin_client, organization, counts, path
):
    # given
    before = counts()

    # when
    response = admin_client.post(
        path.format(organization=organization.pk), "{", content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON
    assert counts() == before


@pytest.mark.parametrize("path", POSTS)
def test_a_json_list_instead_of_an_object_is_a_body_error(admin_client, organization, counts, path):
    # given
    before = counts()

    # when
    response = admin_client.post(path.format(organization=organization.pk), [1, 2], format="json")

    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": {
            "non_field_errors": [
                {"code": "invalid", "message": "Invalid data. Expected a dictionary, but got list."}
            ]
        },
    }
    assert counts() == before


@pytest.mark.parametrize("path", POSTS)
def test_a_form_encoded_body_answers_415_and_writes_nothing(
    admin_client, organization, counts, path
):
    # given
    before = counts()

    # when
    response = admin_client.post(
        path.format(organization=organization.pk),
        "name=x",
        content_type="application/x-www-form-urlencoded",
    )

    # then
    assert response.status_code == 415
    assert response.json() == {
        "code": "unsupported_media_type",
        "message": 'Unsupported media type "application/x-www-form-urlencoded" in request.',
    }
    assert counts() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/auth/token/"),
        ("post", "/api/v1/me/"),
        ("put", "/api/v1/tokens/"),
        ("patch", "/api/v1/tokens/{token}/"),
        ("delete", "/api/v1/organizations/{organization}/"),
        ("get", "/api/v1/organizations/{organization}/verify/"),
        ("patch", "/api/v1/organizations/{organization}/members/{user}/"),
    ],
)
def test_a_method_an_endpoint_lacks_answers_405_and_changes_nothing(
    client_for, operator, org_admin, organization, counts, method, path
):
    # given: an operator, who passes every permission, so only the method is wrong
    token = token_create(user=operator, name="laptop").token
    url = path.format(
        token=token.pk,
        organization=organization.pk,
        user=org_admin.pk,
    )
    before = counts()

    # when
    response = getattr(client_for(operator), method)(url, {}, format="json")

    # then
    assert response.status_code == 405
    assert response.json() == {
        "code": "method_not_allowed",
        "message": f'Method "{method.upper()}" not allowed.',
    }
    assert counts() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tokens/not-a-uuid/",
        "/api/v1/organizations/not-a-uuid/verify/",
        "/api/v1/organizations/{organization}/members/not-a-uuid/",
        "/api/v1/organizations/{organization}/nothing-here/",
    ],
)
def test_an_unknown_accounts_url_answers_a_json_404(admin_client, organization, path):
    # when
    response = admin_client.get(path.format(organization=organization.pk))

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
