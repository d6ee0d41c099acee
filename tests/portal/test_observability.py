from __future__ import annotations

import json
import logging

import pytest

from accounts.services import token_create

pytestmark = pytest.mark.django_db


def test_a_request_id_is_taken_or_made_and_answered(client):
    # when
    given = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    made = client.get("/healthz")
    hostile = client.get("/healthz", HTTP_X_REQUEST_ID="x" * 500)

    # then
    assert given["X-Request-ID"] == "abc-123"
    assert len(made["X-Request-ID"]) == 32
    assert len(hostile["X-Request-ID"]) == 32


def test_json_logs_carry_the_request_id(client, capsys):
    from pythonjsonlogger.json import JsonFormatter

    from portal.observability import RequestIdFilter

    # given: a JSON handler as production has it
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(request_id)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        # when: a 404 is logged by Django
        client.get("/api/v1/nothing/", HTTP_X_REQUEST_ID="req-42")
    finally:
        logger.removeHandler(handler)

    # then
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["request_id"] == "req-42"
    assert line["levelname"] == "WARNING"


def test_metrics_report_requests_applications_and_capacity(client, settings):
    # given
    settings.PORTAL_METRICS_TOKEN = "scrape-me"
    client.get("/healthz")

    # when
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")

    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert 'portal_http_requests_total{method="GET",route="healthz",status="200"}' in body
    assert 'portal_applications{status="submitted"} 0.0' in body
    assert "portal_oldest_submitted_seconds 0.0" in body
    assert "portal_queue_messages" in body


def test_metrics_without_a_configured_token_are_not_found_outside_debug(client, settings):
    # given
    settings.PORTAL_METRICS_TOKEN = ""
    settings.DEBUG = False

    # when
    response = client.get("/metrics")

    # then
    assert response.status_code == 404
    assert b"portal_http_requests_total" not in response.content


def test_metrics_without_a_configured_token_are_open_in_debug(client, settings):
    # given
    settings.PORTAL_METRICS_TOKEN = ""
    settings.DEBUG = True

    # when
    response = client.get("/metrics")

    # then
    assert response.status_code == 200


def test_metrics_can_require_a_token(client, settings):
    # given
    settings.PORTAL_METRICS_TOKEN = "scrape-me"

    # when
    refused = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-you")
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")

    # then
    assert refused.status_code == 401
    assert wrong.status_code == 401
    assert allowed.status_code == 200


def test_the_metrics_token_is_compared_in_constant_time(client, settings, monkeypatch):
    # given
    import hmac

    settings.PORTAL_METRICS_TOKEN = "scrape-me"
    compared = []
    real = hmac.compare_digest

    def spy(given, expected):
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    # when
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-you")

    # then
    assert response.status_code == 401
    assert compared == [(b"scrape-you", b"scrape-me")]


def test_unknown_http_methods_share_one_metrics_label(client, settings):
    # given
    settings.PORTAL_METRICS_TOKEN = "scrape-me"
    for index in range(200):
        client.generic(f"M{index}X", "/healthz")
    client.generic("PATCH", "/healthz")

    # when
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()

    # then
    methods = {
        line.split('method="')[1].split('"')[0]
        for line in body.splitlines()
        if line.startswith("portal_http_requests_total{")
    }
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods
    assert 'route="healthz"' in body


def test_metrics_label_a_route_by_its_pattern_not_its_path(client_for, member, settings):
    # given
    settings.PORTAL_METRICS_TOKEN = "scrape-me"
    client = client_for(member)
    client.get("/api/v1/organizations/00000000-0000-0000-0000-000000000001/")
    client.get("/api/v1/no-such-thing-1234/")

    # when
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()

    # then
    assert 'route="api/v1/organizations/<uuid:organization_id>/"' in body
    assert "00000000-0000-0000-0000-000000000001" not in body
    assert "no-such-thing-1234" not in body


def test_a_user_past_its_rate_gets_429_with_retry_after(api, member, monkeypatch):
    from portal.observability import UserRateThrottle

    # given: three requests a minute (the class keeps the rates it read at import)
    rates = {**UserRateThrottle.THROTTLE_RATES, "user": "3/minute"}
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", rates)
    issued = token_create(user=member, name="busy")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    # when
    answers = [api.get("/api/v1/me/", **auth) for _ in range(4)]

    # then
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert int(answers[-1]["Retry-After"]) > 0
