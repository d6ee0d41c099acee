"""Fixtures of the fault tests: a private PostgreSQL cluster for the run, and per test a
database of its own (copied from a migrated template), a `redis-server` of its own and the
portal's processes against them.

These tests are marked `faults`. They skip with the reason where `initdb`, `postgres` or
`redis-server` is missing, and fail under CI (CI=true). `make test ARGS='-m "not faults"'`
leaves them out of a local run.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _missing
from tests.faults.harness import (
    Portal,
    PostgresCluster,
    RedisServer,
    missing_programs,
    postgres_os_user,
)

TEMPLATE = "portal_template"
_numbers = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this run's own, with a migrated template database."""
    missing = missing_programs()
    if missing:
        _missing(
            f"fault tests need {', '.join(missing)} (PostgreSQL's server programs and "
            "redis-server): apt-get install postgresql redis-server"
        )
    try:
        postgres_os_user()
    except RuntimeError as error:
        _missing(f"fault tests: {error}")
    root = Path(tempfile.mkdtemp(prefix="portal-faults-pg-"))
    root.chmod(0o755)
    cluster = PostgresCluster(root / "cluster")
    cluster.init()
    cluster.start()
    try:
        cluster.execute("postgres", f'CREATE DATABASE "{TEMPLATE}"')
        migrating = Portal(
            root / "migrate",
            database_url=cluster.url(TEMPLATE),
            broker_url="memory://",
            cache_url="locmemcache://",
        )
        migrating.manage("migrate", "--no-input", extra_env={"DATABASE_CONN_MAX_AGE": "0"})
        yield cluster
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Stack:
    """One fault test's services and portal: `postgres` (the run's cluster), `database`
    (this test's), `redis` (this test's), `portal` (not started: the test starts what it
    needs), `seeded` (what `seed()` returned)."""

    postgres: PostgresCluster
    database: str
    redis: RedisServer
    portal: Portal
    root: Path
    seeded: dict[str, Any] = field(default_factory=dict)

    def seed(self, **spec: Any) -> dict[str, Any]:
        self.seeded = json.loads(self.portal.run_python("tests.faults.seed", json.dumps(spec)))
        return self.seeded

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A statement on this test's database (the cluster must be up)."""
        return self.postgres.execute(self.database, query, *params)

    def scalar(self, query: str, *params: Any) -> Any:
        rows = self.sql(query, *params)
        return rows[0][0] if rows else None


@pytest.fixture
def fault_stack(fault_postgres: PostgresCluster, tmp_path: Path) -> Iterator[Stack]:
    """A database copied from the template, a `redis-server` (no persistence), and a
    `Portal` configured for both: broker on Redis database 0, cache on database 1, as
    `.env.example` sets them. Everything the test started is stopped by pid at the end; a
    cluster the test left stopped is started again for the next test."""
    database = f"faults_{next(_numbers)}"
    fault_postgres.execute("postgres", f'CREATE DATABASE "{database}" TEMPLATE "{TEMPLATE}"')
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    portal = Portal(
        tmp_path / "portal",
        database_url=fault_postgres.url(database),
        broker_url=redis.url(0),
        cache_url=redis.url(1),
    )
    stack = Stack(fault_postgres, database, redis, portal, tmp_path)
    try:
        yield stack
    finally:
        try:
            portal.stop()
        finally:
            redis.stop()
            if not fault_postgres.running():
                fault_postgres.start()
            fault_postgres.execute("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
