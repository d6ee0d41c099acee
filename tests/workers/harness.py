"""Real Celery worker processes on a real broker, for the worker tests and the benchmark.

Workers are started as separate `celery -A portal worker` processes, so they share nothing
with the process that starts them but the database and the broker: what they decide has
gone through PostgreSQL's row locks and the broker's delivery, acknowledgement and
redelivery, as in production. They are always stopped by their process ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from celery import Celery
from django.utils import timezone
from kombu import pools as kombu_pools

from accounts.models import MembershipRole, Organization, User
from allocations.models import GpuPool, Program, Site

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DECIDE_TASK = "allocations.tasks.decide_application"
NOTIFY_TASK = "allocations.tasks.notify_application_decided"


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str = ""
) -> None:
    """Poll until the predicate holds; a TimeoutError names what was awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what or predicate}")
        time.sleep(interval)


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for the database a Django connection uses now (under pytest, the test
    database: its NAME has been replaced by then)."""
    user = quote(str(settings_dict.get("USER") or ""), safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(str(settings_dict.get("HOST") or ""), safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    name = quote(str(settings_dict["NAME"]), safe="")
    return f"postgres://{credentials}{host}{port}/{name}"


def _reset_producers(app: Celery) -> None:
    """Close and forget the broker connections, so that the next publish uses
    conf.broker_url. kombu keeps its pools in a registry by URL: closing one without
    clearing the registry would hand the closed pool back next time."""
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    kombu_pools.reset()


@contextlib.contextmanager
def publishing_to(
    app: Celery, url: str, *, transport_options: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Make this process publish (and send control commands) to `url`, then restore. The
    read and write URLs are set too: Celery prefers the CELERY_BROKER_URL of the environment
    (a benchmark's) to `broker_url`, but not to them."""
    conf = app.conf
    saved = (
        conf.broker_url,
        conf.get("broker_read_url"),
        conf.get("broker_write_url"),
        conf.broker_transport_options,
    )
    _reset_producers(app)
    conf.broker_url = conf.broker_read_url = conf.broker_write_url = url
    conf.broker_transport_options = dict(transport_options or {})
    try:
        yield
    finally:
        _reset_producers(app)
        (
            conf.broker_url,
            conf.broker_read_url,
            conf.broker_write_url,
            conf.broker_transport_options,
        ) = saved


def purge(app: Celery) -> int:
    """Drop every waiting task of the default queue, and on Redis the messages a dead worker
    of an earlier run left unacknowledged (they would be redelivered into this run)."""
    with app.connection_for_write() as connection:
        purged = app.control.purge(connection=connection) or 0
        if connection.transport.driver_type == "redis":
            channel = connection.default_channel
            purged += channel.client.hlen(channel.unacked_key)
            channel.client.delete(
                channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key
            )
    return purged


@contextlib.contextmanager
def exclusive_broker(url: str, *, timeout: float = 600) -> Iterator[None]:
    """One run at a time per broker on this machine: two runs' workers on one queue would
    take each other's tasks (for rows in the other run's database)."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"portal-real-workers-{digest}.lock"
    with path.open("w") as handle:
        wait_until(
            lambda: _try_lock(handle), timeout=timeout, interval=0.5, what=f"the lock {path}"
        )
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Workers:
    """A group of `celery -A portal worker --pool=solo` processes, one task at a time each.

    Each logs to its own file in `log_dir`. `stop()` (always call it) terminates them, then
    kills what is left after a grace period.
    """

    def __init__(
        self,
        app: Celery,
        *,
        database_url: str,
        broker_url: str,
        log_dir: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.log_dir = log_dir
        self.tag = f"{os.getpid()}-{int(time.time() * 1000) % 1_000_000}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "EMAIL_URL": "dummymail://",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.env.setdefault("DJANGO_SECRET_KEY", "real-worker-tests-not-secret")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.application_names: dict[str, str] = {}
        self._files: list[IO[bytes]] = []

    def start(
        self,
        count: int,
        *,
        extra_env: Mapping[str, str] | None = None,
        queues: Sequence[str] = (),
    ) -> list[str]:
        """Start `count` more workers, on `queues` (all by default, as `make run`; production
        runs a group per queue); returns their node names (without waiting)."""
        names = []
        for _ in range(count):
            index = len(self.processes)
            pattern = f"w{index}-{self.tag}@%h"
            name = pattern.replace("%h", socket.gethostname())
            # Its database sessions carry its name, so that pg_stat_activity shows them.
            self.application_names[name] = f"w{index}-{self.tag}"
            separator = "&" if "?" in self.env["DATABASE_URL"] else "?"
            database = (
                f"{self.env['DATABASE_URL']}{separator}"
                f"application_name={quote(self.application_names[name], safe='')}"
            )
            log = self.log_dir / f"worker-{index}.log"
            handle = log.open("wb")
            self._files.append(handle)
            self.processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--pool=solo",
                    "--concurrency=1",
                    "-n",
                    pattern,
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=WARNING",
                    *(["--queues", ",".join(queues)] if queues else []),
                ],
                cwd=PROJECT_ROOT,
                env={**self.env, "DATABASE_URL": database, **(extra_env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
            self.logs[name] = log
            names.append(name)
        return names

    def wait_ready(self, names: list[str], *, timeout: float = 90) -> None:
        """Wait until every named worker answers a ping; fail at once if one died, or if a
        worker that is not ours listens on the broker (it would take our tasks)."""
        deadline = time.monotonic() + timeout
        while True:
            for name in names:
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited at start:\n{self.log_tail(name)}")
            replies = self.app.control.ping(timeout=1.0)
            answered = {node for reply in replies for node in reply}
            strangers = answered - set(self.processes)
            if strangers:
                raise RuntimeError(
                    f"workers of another run listen on this broker: {sorted(strangers)}"
                )
            if set(names) <= answered:
                return
            if time.monotonic() > deadline:
                missing = set(names) - answered
                tails = "\n".join(self.log_tail(name) for name in missing)
                raise TimeoutError(f"workers did not answer in {timeout} s: {missing}\n{tails}")

    def alive(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is None]

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stats(self) -> dict[str, dict[str, Any]]:
        """`celery inspect stats` of our live workers: pid, and `total` tasks by name."""
        names = self.alive()
        if not names:
            return {}
        inspector = self.app.control.inspect(destination=names, timeout=2.0)
        return dict(inspector.stats() or {})

    def task_totals(self, task_name: str) -> dict[str, int]:
        """How many tasks of that name each live worker has taken since it started."""
        return {
            name: int(stats.get("total", {}).get(task_name, 0))
            for name, stats in self.stats().items()
        }

    def busy(self) -> bool:
        """Whether a live worker is running or holding a task. A solo worker answers
        control commands only between tasks, so one that does not answer is busy."""
        names = self.alive()
        if not names:
            return False
        inspector = self.app.control.inspect(destination=names, timeout=1.0)
        active = inspector.active() or {}
        reserved = inspector.reserved() or {}
        answered = set(active) & set(reserved)
        return answered != set(names) or any(active.values()) or any(reserved.values())

    def kill(self, name: str) -> None:
        """SIGKILL: the worker gets no chance to acknowledge, reject or roll back."""
        process = self.processes[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, *, grace: float = 15) -> None:
        """Warm shutdown (SIGTERM) for all, then SIGKILL for any still running after
        `grace` seconds. Only our own processes, by pid."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for handle in self._files:
            handle.close()
        self._files.clear()

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = self.logs[name].read_text(errors="replace")
        except OSError:
            return f"[{name}: no log]"
        return f"--- {name} ---\n" + "\n".join(text.splitlines()[-lines:])

    def all_logs(self) -> str:
        return "\n".join(self.log_tail(name) for name in self.processes)


# --- a small site to decide on ---------------------------------------------------------------


@dataclass
class Cluster:
    """One site with its pools, two programs with a common part left, and organizations
    each with one member."""

    site: Site
    pools: list[GpuPool]
    programs: list[Program]
    members: list[tuple[Organization, User]]


def build_cluster(
    *,
    pools: int,
    gpus_per_pool: int,
    power_mw: Decimal,
    organizations: int,
    org_cap_gpu_hours: int = 10_000_000,
    auto_approve_max_gpu_hours: int = 10_000,
) -> Cluster:
    """GB300 pools (1,900 W IT per GPU, PUE 1.10: 2,090 Wh per GPU-hour) at availability 0.95;
    `national` (nominal 0.5, lends half, borrows up to 0.2) and `eea` (0.3, half, 0.1) leave
    0.2 as the common part. The org cap is large unless said otherwise, so that only capacity
    (and, past the auto-approve size, review) decides."""
    from tests.factories import (
        CapacityEventFactory,
        MembershipFactory,
        OrganizationFactory,
        PoolFactory,
        PowerPhaseFactory,
        ProgramFactory,
        SiteFactory,
        UserFactory,
    )

    site = SiteFactory(pue=Decimal("1.10"))
    PowerPhaseFactory(site=site, power_mw=power_mw, online_from=date(2020, 1, 1))
    made_pools = []
    for _ in range(pools):
        pool = PoolFactory(site=site, availability=Decimal("0.950"))
        CapacityEventFactory(
            pool=pool, effective_from=date(2020, 1, 1), gpus_in_service=gpus_per_pool
        )
        made_pools.append(pool)
    common = {
        "eligible_countries": ["NO"],
        "min_gpu_hours": 1,
        "max_gpu_hours": 50_000,
        "max_duration_days": 90,
        "auto_approve_max_gpu_hours": auto_approve_max_gpu_hours,
        "org_cap_gpu_hours": org_cap_gpu_hours,
        "lending_limit": Decimal("0.5000"),
    }
    programs = [
        ProgramFactory(
            priority=10,
            nominal_share=Decimal("0.5000"),
            borrowing_limit=Decimal("0.2000"),
            **common,
        ),
        ProgramFactory(
            priority=20,
            nominal_share=Decimal("0.3000"),
            borrowing_limit=Decimal("0.1000"),
            **common,
        ),
    ]
    members = []
    for _ in range(organizations):
        organization = OrganizationFactory(kind="startup", country="NO")
        user = UserFactory()
        MembershipFactory(user=user, organization=organization, role=MembershipRole.MEMBER)
        members.append((organization, user))
    return Cluster(site=site, pools=made_pools, programs=programs, members=members)


def random_requests(
    cluster: Cluster, *, count: int, seed: int, horizon_days: int, max_gpu_hours: int
) -> list[tuple[User, dict[str, Any]]]:
    """`count` draft values with windows of 1 to 4 days inside the next `horizon_days`,
    spread over the organizations, programs and pools; the same for the same seed."""
    rng = random.Random(seed)
    first = timezone.localdate() + timedelta(days=1)
    requests = []
    for index in range(count):
        organization, user = cluster.members[index % len(cluster.members)]
        days = rng.randint(1, 4)
        start = first + timedelta(days=rng.randint(0, horizon_days - days))
        requests.append(
            (
                user,
                {
                    "organization": organization,
                    "program": cluster.programs[0 if rng.random() < 0.6 else 1],
                    "pool": rng.choice(cluster.pools),
                    "title": f"Request {index}",
                    "gpu_hours": rng.randint(20, max_gpu_hours),
                    "start_date": start,
                    "end_date": start + timedelta(days=days - 1),
                },
            )
        )
    return requests
