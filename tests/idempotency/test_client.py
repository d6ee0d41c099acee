"""The client tool's retries: each write carries one Idempotency-Key for all its tries."""

from __future__ import annotations

import httpx
import pytest

from portal_client.api import PortalClient, Unreachable


def _client(handler, **options) -> PortalClient:
    client = PortalClient("http://portal.test", "pap_x", **options)
    client.http = httpx.Client(
        base_url="http://portal.test", transport=httpx.MockTransport(handler)
    )
    return client


def test_a_write_cut_off_is_retried_with_the_same_key(monkeypatch):
    # given: the first try's connection drops, the second is answered
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(202, json={"id": "a1", "status": "submitted"})

    # when
    answer = _client(handler).application_submit("a1")

    # then
    assert answer == {"id": "a1", "status": "submitted"}
    keys = [request.headers.get("Idempotency-Key") for request in seen]
    assert len(keys) == 2
    assert keys[0]
    assert keys[0] == keys[1]


def test_each_write_gets_its_own_key_and_reads_none():
    # given
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [], "next": None, "accepted": 1})

    client = _client(handler)

    # when
    client.usage_post([{"external_id": "1"}])
    client.usage_post([{"external_id": "1"}])
    client.allocations()

    # then
    first, second, read = (request.headers.get("Idempotency-Key") for request in seen)
    assert first
    assert second
    assert first != second
    assert read is None


def test_a_503_is_retried_after_retry_after_and_a_key_in_use_too(monkeypatch):
    # given
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)
    answers = iter(
        [
            httpx.Response(
                503, json={"code": "unavailable", "message": "x"}, headers={"Retry-After": "5"}
            ),
            httpx.Response(
                409,
                json={"code": "idempotency_key_in_use", "message": "x"},
                headers={"Retry-After": "1"},
            ),
            httpx.Response(200, json={"id": "b2"}),
        ]
    )
    keys: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        keys.add(request.headers["Idempotency-Key"])
        return next(answers)

    # when
    answer = _client(handler).release("b2")

    # then
    assert answer == {"id": "b2"}
    assert waits == [5.0, 1.0]
    assert len(keys) == 1


def test_other_refusals_are_not_retried():
    # given
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(409, json={"code": "invalid_transition", "message": "no"})

    # when / then
    with pytest.raises(Exception, match="invalid_transition"):
        _client(handler).application_submit("a1")
    assert len(calls) == 1


def test_a_sign_in_is_not_retried_and_an_unreachable_portal_gives_up(monkeypatch):
    # given
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("refused")

    client = _client(handler, retries=2)

    # when / then
    with pytest.raises(Unreachable):
        client.token_obtain(email="a@b.example", password="x", name="cli")
    with pytest.raises(Unreachable):
        client.allocations()
    assert calls == ["/api/v1/auth/token/"] + ["/api/v1/allocations/"] * 3
