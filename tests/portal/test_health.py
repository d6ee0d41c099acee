from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from portal.celery import app as celery_app


@pytest.mark.django_db
def test_healthz_answers_ok_without_touching_services(client, django_assert_num_queries):
    # when
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_answers_ok_when_database_and_broker_answer(client):
    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "cache": "ok"},
        "unavailable": [],
    }


@pytest.mark.django_db
def test_readyz_answers_degraded_when_the_broker_is_down(client, monkeypatch):
    # given
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("kombu.Connection.ensure_connection", refuse)

    # when
    response = client.get("/readyz")

    # then: still ready (the portal serves without its broker), and says what is away
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "broker": "error: OperationalError", "cache": "ok"},
        "unavailable": ["broker"],
    }


@pytest.mark.django_db
def test_readyz_reaches_a_real_broker(client, broker_url, monkeypatch):
    # given: the broker of this machine (Redis or RabbitMQ)
    monkeypatch.setattr(celery_app.conf, "broker_url", broker_url)

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"] == "ok"


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker(client, monkeypatch):
    # given: nothing listens on port 9 of this machine
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:9/0")

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"].startswith("error: ")
    assert response.json()["unavailable"] == ["broker"]


@pytest.mark.django_db
def test_readyz_answers_degraded_when_the_cache_is_away(client, settings):
    # given: a Redis cache where nothing listens
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/1",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"].startswith("error: ")
    assert response.json()["unavailable"] == ["cache"]


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_database_when_it_is_away(client, monkeypatch):
    # given
    from django.db import OperationalError as DatabaseOperationalError

    def refuse(*args, **kwargs):
        raise DatabaseOperationalError("connection refused")

    monkeypatch.setattr("portal.views._check_database", refuse)

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == "error: OperationalError"
    assert response.json()["unavailable"] == ["database"]


def test_readyz_gives_up_on_a_database_host_that_never_answers_within_the_connect_timeout(
    tmp_path,
):
    # given: a "database" that accepts the TCP connection and then says nothing, as a host
    # behind a dead proxy or a stuck node does; a fresh process configured for it
    import os
    import socket
    import subprocess
    import sys
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    script = (
        "import django, time; django.setup()\n"
        "from django.test import Client\n"
        "start = time.monotonic()\n"
        "answer = Client().get('/readyz', HTTP_HOST='localhost')\n"
        "seconds = round(time.monotonic() - start, 1)\n"
        "print(answer.status_code, answer.json()['unavailable'], seconds)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE")},
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": "test-only",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/portal",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "PORTAL_VAR_DIR": str(tmp_path),
    }

    # when
    started = time.monotonic()
    try:
        ran = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        silent.close()
    elapsed = time.monotonic() - started

    # then: 503 naming the database, after about the timeout, not the kernel's minutes
    assert ran.returncode == 0, ran.stderr
    status, _, seconds = ran.stdout.strip().partition(" ")
    assert status == "503", ran.stdout
    assert "'database'" in ran.stdout
    assert float(seconds.rsplit(" ", 1)[-1]) < 10
    assert elapsed < 30
