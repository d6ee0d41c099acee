"""Fixtures for tests with real Celery worker processes on PostgreSQL and a real broker.

The workers are separate processes: they see only committed rows, so these tests use
`transactional_db` (or `live_server`, which implies it). They skip where PostgreSQL or a
broker is missing, and fail under CI (CI=true).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from portal.celery import app as celery_app
from tests.workers.harness import Workers, database_url, exclusive_broker, publishing_to, purge


@pytest.fixture
def real_broker(postgres: None, broker_url: str) -> Iterator[str]:
    """This process publishes to the real broker, whose queue starts empty; one run at a
    time per broker on this machine."""
    with exclusive_broker(broker_url), publishing_to(celery_app, broker_url):
        purge(celery_app)
        yield broker_url
        purge(celery_app)


@pytest.fixture
def start_workers(
    real_broker: str, transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., Workers]]:
    """Start real worker processes on the test database: `start_workers(3)`, or with
    `visibility_timeout=5` for Redis to redeliver a dead worker's task soon. They are
    stopped (SIGTERM, then SIGKILL) before the test database is flushed."""
    groups: list[Workers] = []

    def start(count: int, *, visibility_timeout: int | None = None) -> Workers:
        extra = {}
        if visibility_timeout is not None:
            extra["CELERY_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
        workers = Workers(
            celery_app,
            database_url=database_url(connection.settings_dict),
            broker_url=real_broker,
            log_dir=tmp_path,
            extra_env=extra,
        )
        groups.append(workers)
        workers.wait_ready(workers.start(count))
        return workers

    try:
        yield start
    finally:
        for workers in groups:
            workers.stop()
