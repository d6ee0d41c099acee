"""Fixtures shared by the whole suite.

Tests that need PostgreSQL or a real broker take the `postgres` or `broker` fixture: where
the service is missing they skip with the reason, except under CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import MembershipRole, Organization, User
from portal.celery import app as celery_app
from tests.factories import MembershipFactory, OperatorFactory, OrganizationFactory, UserFactory

UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    if UNDER_CI:
        pytest.fail(f"{reason} (CI must provide it)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    # Unit tests never reach a broker: what they queue goes to memory. Tests with real
    # workers use PORTAL_TEST_BROKER_URL through the `broker` fixture.
    celery_app.conf.broker_url = "memory://"
    celery_app.conf.broker_transport_options = {}


@pytest.fixture(scope="session", autouse=True)
def _ci_runs_on_postgres(django_db_setup: None, django_db_blocker: object) -> None:
    if UNDER_CI and connection.vendor != "postgresql":
        pytest.fail("Under CI the suite runs on PostgreSQL: set DATABASE_URL.", pytrace=False)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # The rate-limit counters live in the cache; each test starts with none spent.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Iterator[None]:
    # A request activates its reader's language for the thread (LocaleMiddleware), and it
    # stays active after the response, as in a server where the next request sets its own.
    # A test that then calls a service directly would read the last request's language.
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's hundreds of thousands of rounds protect real passwords, not test users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings: Any) -> None:
    # Production serves collected, hashed files (collectstatic runs in the image); tests
    # render pages without collecting, so they use the plain storage.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        _missing(
            "needs PostgreSQL: run `make test` with PostgreSQL on 127.0.0.1:5432 "
            "or set DATABASE_URL=postgres://…"
        )


@pytest.fixture
def broker_url() -> str:
    url = os.environ.get("PORTAL_TEST_BROKER_URL", "")
    if not url:
        _missing(
            "needs a real Celery broker: run `make test` with Redis on 127.0.0.1:6379 "
            "or set PORTAL_TEST_BROKER_URL=redis://… or amqp://…"
        )
    return url


@pytest.fixture
def amqp_url() -> str:
    url = os.environ.get("PORTAL_TEST_AMQP_URL", "")
    if not url:
        _missing(
            "needs RabbitMQ: run `make test` with RabbitMQ on 127.0.0.1:5672 "
            "or set PORTAL_TEST_AMQP_URL=amqp://…"
        )
    return url


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    """An API client signed in as the given user (session-style, no token)."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def operator(db: None) -> User:
    return OperatorFactory(email="operator@example.org")


@pytest.fixture
def organization(db: None) -> Organization:
    return OrganizationFactory(name="Fjord AI AS", registry_number="923609016")


@pytest.fixture
def org_admin(organization: Organization) -> User:
    user = UserFactory(email="cto@fjord.example")
    MembershipFactory(user=user, organization=organization, role=MembershipRole.ADMIN)
    return user


@pytest.fixture
def member(organization: Organization) -> User:
    user = UserFactory(email="researcher@fjord.example")
    MembershipFactory(user=user, organization=organization, role=MembershipRole.MEMBER)
    return user


@pytest.fixture
def scheduler_account(db: None) -> User:
    """A scheduler service account of a test cluster: it holds `usage:write` tokens only."""
    from accounts.authz import SYSTEM
    from accounts.services import scheduler_account_create

    return scheduler_account_create(source="slurm-test", actor=SYSTEM)


@pytest.fixture
def outsider(db: None) -> User:
    return UserFactory(email="someone@elsewhere.example")
