"""A database or broker that is away answers 503 `unavailable` with Retry-After, never 500."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory
from kombu.exceptions import OperationalError as BrokerOperationalError

from accounts.services import token_create
from portal.errors import UNAVAILABLE_MESSAGE, handler500

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
        InterfaceError("connection already closed"),
        BrokerOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    ],
)
def test_an_api_view_whose_dependency_is_away_answers_503_with_retry_after(
    api, member, monkeypatch, caplog, error
):
    # given
    secret = token_create(user=member, name="t").secret

    def away(**kwargs):
        raise error

    monkeypatch.setattr("allocations.selectors.demand.application_list_for_user", away)

    # when
    with caplog.at_level(logging.WARNING, logger="portal.errors"):
        response = api.get("/api/v1/applications/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"code": "unavailable", "message": UNAVAILABLE_MESSAGE}
    assert "unavailable; answered 503 to /api/v1/applications/" in caplog.text


def test_retry_after_follows_its_setting(api, member, monkeypatch, settings):
    # given
    settings.PORTAL_RETRY_AFTER_SECONDS = 17
    secret = token_create(user=member, name="t").secret

    def away(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("allocations.selectors.demand.application_list_for_user", away)

    # when
    response = api.get("/api/v1/applications/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == "17"


def test_other_failures_stay_500():
    # given
    request = RequestFactory().get("/api/v1/programs/")

    # when
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = handler500(request)

    # then
    assert response.status_code == 500
    assert json.loads(response.content)["code"] == "server_error"


@pytest.mark.parametrize(
    ("path", "content_type"), [("/api/v1/me/", "application/json"), ("/admin/", "text/plain")]
)
def test_outside_the_api_views_a_database_away_answers_503_too(path, content_type):
    # given: Django calls handler500 while handling an exception no view handled
    request = RequestFactory().get(path)

    # when
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = handler500(request)

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith(content_type)
