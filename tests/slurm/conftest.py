"""The one-node Slurm cluster of the integration tests: installed with apt-get where it is
missing, started once for the session, stopped by pid at the end.

Where Slurm cannot be installed or started (no root, no apt-get, no MariaDB) the tests skip
with the reason; under CI (CI=true) they fail instead.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _missing
from tests.decisions.conftest import (  # noqa: F401 - the site, program and people
    fast_lane,
    founder,
    pool,
    reviewer,
    startup,
    today,
)
from tests.slurm.cluster import PREFIX, Cluster, ClusterUnavailable, ensure_installed, reap_stale


def _mariadb_answers() -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", 3306)) == 0


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        _missing("the Slurm integration tests run slurmd and jobs as other users: they need root")
    if not _mariadb_answers():
        _missing("the Slurm integration tests need MariaDB on 127.0.0.1:3306 for slurmdbd")
    try:
        ensure_installed()
    except ClusterUnavailable as error:
        _missing(f"Slurm cannot be installed here: {error}")
    reap_stale(Path(tempfile.gettempdir()))
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    os.chmod(root, 0o755)  # the jobs' users read slurm.conf
    cluster = Cluster(root)
    previous = os.environ.get("SLURM_CONF")
    try:
        cluster.start()
    except (ClusterUnavailable, subprocess.SubprocessError, OSError) as error:
        cluster.stop()
        _missing(f"the Slurm cluster did not start: {error}")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def unix_user(slurm_cluster: Cluster) -> Iterator[Callable[[], str]]:
    """Makes Unix users for the test's members (removed afterwards)."""
    made: list[str] = []

    def make() -> str:
        name = f"papu{secrets.token_hex(4)}"
        for _attempt in range(20):  # another run may hold the lock on /etc/passwd
            added = subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/bin/sh", name], capture_output=True
            )
            if added.returncode == 0:
                made.append(name)
                return name
            time.sleep(0.5)
        raise RuntimeError(f"useradd {name}: {added.stderr.decode().strip()}")

    yield make
    for name in made:
        slurm_cluster.run("scancel", "--user", name, check=False)
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def slurm_backend(settings: Any, slurm_cluster: Cluster) -> Cluster:
    settings.PORTAL_SCHEDULER_BACKEND = "allocations.backends.slurm.SlurmBackend"
    settings.PORTAL_SLURM_CLUSTER = slurm_cluster.name
    settings.PORTAL_SLURM_SOURCE = f"slurm-{slurm_cluster.name}"
    return slurm_cluster


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery tasks run in this process as they are queued, as a worker would run them."""
    from portal.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False
