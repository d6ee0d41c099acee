"""Rate limits: per user (however many tokens it mints) and per address; the address comes
from `X-Forwarded-For` only behind as many proxies as PORTAL_TRUSTED_PROXIES says; the login
is limited per address and per email; the admin login locks out after repeated failures;
a rate-limit store that is away lets requests through."""

from __future__ import annotations

import logging

import pytest
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AccessToken
from accounts.services import token_create
from portal import observability
from tests.factories import PASSWORD, OperatorFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/token/"


@pytest.fixture
def rates(monkeypatch):
    """Small rates, and a clock that stands still so that no window passes mid-test."""
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda _self: 1_000_000.0)

    def set_rates(**given: str) -> None:
        for throttle in observability.THROTTLES:
            monkeypatch.setattr(throttle, "THROTTLE_RATES", {**throttle.THROTTLE_RATES, **given})

    return set_rates


def _wrong_login(api, email: str, **headers: str):
    return api.post(LOGIN, {"email": email, "password": "wrong"}, format="json", **headers)


def test_spoofed_forwarded_addresses_do_not_escape_the_login_limit(api, member, rates, settings):
    # given: no proxy in front, three logins a minute per address
    settings.PORTAL_TRUSTED_PROXIES = 0
    rates(login="3/minute", login_email="100/minute")

    # when: each attempt claims another address
    answers = [
        _wrong_login(api, member.email, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(4)
    ]

    # then
    assert answers == [401, 401, 401, 429]


def test_behind_one_proxy_the_address_it_appended_is_the_client(api, member, rates, settings):
    # given: one proxy, which appends the address it saw to what the client sent
    settings.PORTAL_TRUSTED_PROXIES = 1
    rates(login="3/minute", login_email="100/minute")

    # when: one client forges a first address each time; another client comes after
    forged = [
        _wrong_login(api, member.email, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.7").status_code
        for n in range(4)
    ]
    other = _wrong_login(api, member.email, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code

    # then
    assert forged == [401, 401, 401, 429]
    assert other == 401


def test_logins_for_one_email_are_limited_across_addresses(api, member, rates, settings):
    # given
    settings.PORTAL_TRUSTED_PROXIES = 1
    rates(login="100/minute", login_email="3/minute")

    # when: four addresses try one account, in any case
    answers = [
        _wrong_login(
            api,
            member.email.upper() if n % 2 else member.email,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        ).status_code
        for n in range(4)
    ]
    right = api.post(
        LOGIN,
        {"email": member.email, "password": PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR="203.0.113.99",
    )

    # then
    assert answers == [401, 401, 401, 429]
    assert right.status_code == 429
    assert not AccessToken.objects.exists()


def test_minting_tokens_does_not_multiply_a_users_rate(api, member, rates):
    # given: three requests a minute per user, and two tokens
    rates(user="3/minute")
    first = token_create(user=member, name="one").secret
    second = token_create(user=member, name="two").secret

    # when
    answers = [
        api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
        for secret in (first, second, first, second)
    ]

    # then
    assert answers == [200, 200, 200, 429]


def test_users_behind_one_address_share_its_rate(api, rates):
    # given: many users a minute per user, three requests per address
    rates(user="100/minute", address="3/minute")
    secrets = [token_create(user=UserFactory(), name="t").secret for _ in range(4)]

    # when
    answers = [
        api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
        for secret in secrets
    ]

    # then
    assert answers == [200, 200, 200, 429]


def test_a_rate_limit_store_that_is_away_lets_requests_through_and_logs(
    api, member, monkeypatch, caplog
):
    # given: the cache behind the counters fails
    class BrokenCache:
        def get(self, *args, **kwargs):
            raise ConnectionError("cache away")

        def set(self, *args, **kwargs):
            raise ConnectionError("cache away")

    for throttle in observability.THROTTLES:
        monkeypatch.setattr(throttle, "cache", BrokenCache())
    monkeypatch.setattr(observability, "_fail_open_logged_at", {})
    secret = token_create(user=member, name="t").secret
    counted = observability.RATE_LIMIT_UNAVAILABLE.labels("UserRateThrottle")
    before = counted._value.get()

    # when
    with caplog.at_level(logging.WARNING, logger="portal.observability"):
        answers = [
            api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
            for _ in range(3)
        ]

    # then: let through, counted each time, logged once per limit (not once per request)
    assert answers == [200, 200, 200]
    assert counted._value.get() == before + 3
    lines = [
        r.getMessage() for r in caplog.records if "rate limit store unavailable" in r.getMessage()
    ]
    assert len(lines) == 2  # the user and the address limits; the login one does not apply
    assert "UserRateThrottle: ConnectionError: cache away" in " ".join(lines)


def test_the_admin_login_refuses_the_right_password_after_thirty_wrong_ones(client, settings):
    # given
    operator = OperatorFactory(email="ops@narvik.example")
    for _ in range(30):
        client.post("/admin/login/", {"username": operator.email, "password": "wrong"})

    # when
    response = client.post(
        "/admin/login/", {"username": operator.email, "password": PASSWORD}, follow=False
    )

    # then
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_admin_login_still_works_for_another_address(client):
    # given
    operator = OperatorFactory(email="ops@narvik.example")
    for _ in range(30):
        client.post(
            "/admin/login/",
            {"username": operator.email, "password": "wrong"},
            REMOTE_ADDR="198.51.100.1",
        )

    # when
    response = client.post(
        "/admin/login/",
        {"username": operator.email, "password": PASSWORD},
        REMOTE_ADDR="198.51.100.2",
    )

    # then
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_the_api_login_is_locked_out_like_the_admins_after_repeated_failures(
    api, member, settings, rates
):
    # given: rate limits that do not come first
    rates(login="1000/minute", login_email="1000/minute")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _wrong_login(api, member.email)

    # when
    response = api.post(LOGIN, {"email": member.email, "password": PASSWORD}, format="json")

    # then
    assert response.status_code == 429
    assert response.json() == {
        "code": "locked_out",
        "message": "Too many failed sign-ins for this account from this address; try again later.",
    }
    assert not AccessToken.objects.exists()
