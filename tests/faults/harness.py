"""A private production stack for fault tests: PostgreSQL, Redis, gunicorn and Celery.

Everything runs as separate processes that this process starts, on free ports and in a
temporary folder, so that a test may stop the database or the broker in the middle of a run,
SIGKILL a worker, or cut a connection, without touching the machine's shared services:

- `PostgresCluster`: `initdb` and `postgres` of its own (as the `postgres` OS user when this
  process runs as root, since PostgreSQL refuses to run as root); stop and start it again on
  the same port mid-run.
- `RedisServer`: a `redis-server` with no persistence unless asked, on a free port.
- `Portal`: gunicorn, Celery workers and beat against them, as `deploy/` runs them.
- `CuttingProxy`: a TCP proxy in front of gunicorn that can forward a request and drop the
  connection before the answer reaches the client (the request took effect; the client
  cannot know).
- `http()`: a small HTTP client that reports a dropped connection as `Dropped`.

Every process is stopped by its process id (`stop()`; an `atexit` hook catches what a crashed
run left), never by name: other runs on the machine use the same programs.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import client as http_client
from pathlib import Path
from typing import IO, Any

from tests.workers.harness import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_PROGRAMS = ("initdb", "postgres")


def find_program(name: str) -> str | None:
    """A program on PATH, or PostgreSQL's in its versioned folder (Debian keeps `postgres`
    and `initdb` under /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(re.sub(r"\D", "", path.split("/")[4]) or 0),
        reverse=True,
    )
    return candidates[0] if candidates else None


def missing_programs() -> list[str]:
    """The programs a fault test needs that this machine lacks."""
    names = [*POSTGRES_PROGRAMS, "redis-server"]
    return [name for name in names if find_program(name) is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- processes ----------------------------------------------------------------------------------

_STARTED: list[Process] = []


class Process:
    """A child process with its log file; stopped by its pid."""

    def __init__(
        self,
        name: str,
        arguments: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = PROJECT_ROOT,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.arguments = list(arguments)
        self.log = log
        self._handle: IO[bytes] = log.open("ab")
        preexec = _become(user) if user else None
        # A session of its own: a Ctrl-C meant for the test run does not reach it, so that
        # it is stopped in order by the run's finalizers.
        self.popen = subprocess.Popen(
            self.arguments,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec,
        )
        _STARTED.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def send(self, number: int) -> None:
        if self.running():
            os.kill(self.pid, number)

    def kill(self) -> None:
        """SIGKILL: no chance to finish, acknowledge or roll back."""
        self.send(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, *, grace: float = 15, number: int = signal.SIGTERM) -> None:
        """The signal (SIGTERM: a warm shutdown), then SIGKILL after `grace` seconds."""
        if self.running():
            self.send(number)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._handle.close()
        with contextlib.suppress(ValueError):
            _STARTED.remove(self)

    def log_text(self) -> str:
        self._handle.flush()
        return self.log.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(
            self.log_text().splitlines()[-lines:]
        )

    def children(self) -> list[int]:
        """Process ids of its direct children (gunicorn's workers, a prefork pool)."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(part) for part in text.split()]


def _stop_leftovers() -> None:
    for process in reversed(list(_STARTED)):
        with contextlib.suppress(Exception):
            process.stop(grace=5)


atexit.register(_stop_leftovers)


def _become(user: str) -> Callable[[], None]:
    entry = pwd.getpwnam(user)

    def switch() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return switch


def postgres_os_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, the `postgres` OS user runs it (None when
    this process is not root; a RuntimeError when root and no such user exists)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root, and there is no `postgres` OS user to run PostgreSQL as"
        ) from None
    return "postgres"


# --- PostgreSQL -----------------------------------------------------------------------------------


class PostgresCluster:
    """A PostgreSQL cluster of its own in `root`, on a free port (kept across restarts).

    Tuned for tests, not durability: no fsync. `stop()` is a fast shutdown (SIGINT to the
    postmaster: open sessions are cut, as when a database server goes away), `start()` brings
    it back on the same port with the same data.
    """

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = port or free_port()
        self.user = postgres_os_user()
        self.process: Process | None = None
        self.starts = 0

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        initdb = find_program("initdb")
        assert initdb, "initdb is missing"
        log = self.root / "initdb.log"
        with log.open("wb") as handle:
            result = subprocess.run(
                [
                    initdb,
                    "--pgdata",
                    str(self.data),
                    "--username",
                    "postgres",
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                preexec_fn=_become(self.user) if self.user else None,
                cwd=self.root,
            )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{log.read_text(errors='replace')}")

    def start(self, *, timeout: float = 60) -> None:
        postgres = find_program("postgres")
        assert postgres, "postgres is missing"
        self.starts += 1
        self.process = Process(
            "postgres",
            [
                postgres,
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            log=self.root / "postgres.log",
            cwd=self.root,
            user=self.user,
        )
        wait_until(self.answers, timeout=timeout, what="PostgreSQL to accept connections")

    def answers(self) -> bool:
        if self.process is None or not self.process.running():
            if self.process is not None:
                raise RuntimeError(f"postgres exited:\n{self.process.log_tail()}")
            return False
        try:
            with self.connect("postgres", connect_timeout=1):
                return True
        except Exception:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def stop(self, *, immediate: bool = False) -> None:
        """Fast shutdown (SIGINT): sessions are cut and the server exits. `immediate`
        (SIGQUIT) is a crash: no checkpoint, recovery at the next start."""
        if self.process is not None:
            self.process.stop(grace=30, number=signal.SIGQUIT if immediate else signal.SIGINT)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str, **options: Any) -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            **{"autocommit": True, **options},
        )

    def execute(self, database: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement that returns none)."""
        with self.connect(database) as connection:
            cursor = connection.execute(query, params or None)
            return list(cursor.fetchall()) if cursor.description else []


# --- Redis --------------------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` of its own on a free port (kept across restarts). Without
    `persistence` a restart comes back empty, as a Redis without a disk does."""

    def __init__(self, root: Path, *, persistence: bool = False, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.persistence = persistence
        self.process: Process | None = None
        root.mkdir(parents=True, exist_ok=True)

    def start(self, *, timeout: float = 30) -> None:
        program = find_program("redis-server")
        assert program, "redis-server is missing"
        arguments = [
            program,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistence else "no",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
        ]
        self.process = Process("redis-server", arguments, log=self.root / "redis.log")
        wait_until(self.answers, timeout=timeout, what="redis-server to answer PING")

    def answers(self) -> bool:
        if self.process is None or not self.process.running():
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"


# --- the portal's processes ---------------------------------------------------------------------


class Portal:
    """gunicorn, Celery workers and beat of the portal on one database, broker and cache.

    The environment is production's (DEBUG off, JSON logs, persistent database connections as
    `.env.example` sets them), with the rate limits raised out of the way unless a test sets
    them, and plain logs so that a failure's tail is readable.
    """

    def __init__(
        self,
        root: Path,
        *,
        database_url: str,
        broker_url: str,
        cache_url: str,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "var").mkdir(exist_ok=True)
        passed = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_", "CELERY_", "CACHE_", "PORTAL_", "DJANGO_"))
        }
        self.env: dict[str, str] = {
            **passed,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "fault-tests-only-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_FORMAT": "plain",
            "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
            "DATABASE_URL": database_url,
            "DATABASE_CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": broker_url,
            "CACHE_URL": cache_url,
            "EMAIL_URL": "dummymail://",
            "PORTAL_VAR_DIR": str(root / "var"),
            "PORTAL_METRICS_TOKEN": "fault-tests-metrics",
            "PORTAL_RATE_LIMIT": "100000/minute",
            "PORTAL_USAGE_RATE_LIMIT": "100000/minute",
            "PORTAL_ADDRESS_RATE_LIMIT": "100000/minute",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.web: Process | None = None
        self.web_port = 0
        self.workers: list[Process] = []
        self.beat: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def manage(self, *arguments: str, extra_env: Mapping[str, str] | None = None) -> str:
        """Run `manage.py` with the portal's environment; its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=PROJECT_ROOT,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(arguments)} failed:\n{result.stderr}")
        return result.stdout

    def run_python(self, module: str, *arguments: str) -> str:
        """Run `python -m module` in the portal's environment (e.g. a seeding script)."""
        result = subprocess.run(
            [sys.executable, "-m", module, *arguments],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{module} failed:\n{result.stderr}")
        return result.stdout

    def start_web(
        self, *, workers: int = 2, timeout: int = 30, extra_env: Mapping[str, str] | None = None
    ) -> Process:
        """gunicorn on a free port, as deploy/start-web.sh runs it; waits for /healthz."""
        self.web_port = free_port()
        self.web = Process(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(workers),
                "--timeout",
                str(timeout),
                "--graceful-timeout",
                "5",
                "--access-logfile",
                "-",
            ],
            log=self.root / "gunicorn.log",
            env={**self.env, **(extra_env or {})},
        )
        web = self.web

        def ready() -> bool:
            if not web.running():
                raise RuntimeError(f"gunicorn exited:\n{web.log_tail()}")
            try:
                return http("GET", f"{self.url}/healthz", timeout=2).status == 200
            except (OSError, Dropped):
                return False

        wait_until(ready, timeout=60, what="gunicorn to answer /healthz")
        wait_until(lambda: len(web.children()) >= workers, timeout=30, what="gunicorn workers")
        return web

    def start_worker(
        self,
        *,
        queues: Sequence[str] = (),
        pool: str = "solo",
        concurrency: int = 1,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> Process:
        """A `celery -A portal worker` (solo pool by default: the task runs in the process
        itself, so a SIGKILL of its pid kills the task); waits until it logs `ready`."""
        index = len(self.workers)
        arguments = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-n",
            f"fault{index}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]
        if queues:
            arguments += ["-Q", ",".join(queues)]
        worker = Process(
            f"worker-{index}",
            [*arguments, *extra_args],
            log=self.root / f"worker-{index}.log",
            env={**self.env, **(extra_env or {})},
        )
        self.workers.append(worker)
        if wait:
            self.wait_worker_ready(worker)
        return worker

    def wait_worker_ready(self, worker: Process, *, timeout: float = 90) -> None:
        def ready() -> bool:
            if not worker.running():
                raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
            return " ready." in worker.log_text()

        wait_until(ready, timeout=timeout, what=f"{worker.name} to be ready")

    def start_beat(self, *, extra_env: Mapping[str, str] | None = None) -> Process:
        self.beat = Process(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(self.root / "var" / "celerybeat-schedule"),
            ],
            log=self.root / "beat.log",
            env={**self.env, **(extra_env or {})},
        )
        return self.beat

    def processes(self) -> list[Process]:
        return [p for p in (self.web, *self.workers, self.beat) if p is not None]

    def all_running(self) -> bool:
        return all(process.running() for process in self.processes())

    def stop(self) -> None:
        for process in reversed(self.processes()):
            process.stop(grace=15)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(process.log_tail(lines) for process in self.processes())


# --- HTTP ---------------------------------------------------------------------------------------


class Dropped(Exception):
    """The connection closed (or was refused) before a whole answer arrived."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float = 0.0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def http(
    method: str,
    url: str,
    *,
    token: str = "",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    """One request on a fresh connection. JSON bodies in and out (text when the answer is
    not JSON). A refused, reset or cut connection raises `Dropped`."""
    parts = re.match(r"^http://([^/:]+):(\d+)(/.*)$", url)
    assert parts, url
    host, port, path = parts.group(1), int(parts.group(2)), parts.group(3)
    sent = {"Accept": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    connection = http_client.HTTPConnection(host, port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    except (TimeoutError, ConnectionError, http_client.HTTPException) as error:
        raise Dropped(f"{method} {path}: {type(error).__name__}: {error}") from error
    finally:
        connection.close()
    answered = {name.lower(): value for name, value in response.getheaders()}
    parsed: Any = raw.decode(errors="replace")
    if answered.get("content-type", "").startswith("application/json") and raw:
        parsed = json.loads(raw)
    return Answer(response.status, answered, parsed, time.monotonic() - started)


# --- a proxy that cuts answers ------------------------------------------------------------------


@dataclass
class CuttingProxy:
    """A TCP proxy to 127.0.0.1:`upstream` that reads one HTTP request per connection,
    forwards it, reads the whole answer, and then either passes it on or, when `cut(request
    line)` says so, closes the client's connection without a byte of it: the server did the
    work, the client saw a dropped connection. `cut_requests` lists the request lines cut."""

    upstream: int
    cut: Callable[[str], bool] = lambda line: False
    port: int = 0
    cut_requests: list[str] = field(default_factory=list)
    _server: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _open: bool = True

    def start(self) -> CuttingProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        server.settimeout(0.2)
        self._server = server
        self.port = int(server.getsockname()[1])
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._open = False
        for thread in self._threads:
            thread.join(timeout=10)
        if self._server is not None:
            self._server.close()

    def _accept(self) -> None:
        assert self._server is not None
        while self._open:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(60)
            request = _read_message(client)
            if request is None:
                return
            line = request.split(b"\r\n", 1)[0].decode(errors="replace")
            with socket.create_connection(("127.0.0.1", self.upstream), timeout=60) as server:
                server.sendall(request)
                answer = _read_message(server, until_close=True)
            if answer is None:
                return
            if self.cut(line):
                self.cut_requests.append(line)
                # A reset rather than a polite close: the client sees the connection die.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            client.sendall(answer)


def _read_message(connection: socket.socket, *, until_close: bool = False) -> bytes | None:
    """One HTTP message: the head, then Content-Length bytes (or, for an answer without it,
    everything until the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data or None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if match:
        length = int(match.group(1))
        while len(rest) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head + b"\r\n\r\n" + rest
    if until_close:
        while chunk := connection.recv(65536):
            rest += chunk
    return head + b"\r\n\r\n" + rest


@contextlib.contextmanager
def cutting_proxy(upstream: int, cut: Callable[[str], bool]) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(upstream=upstream, cut=cut).start()
    try:
        yield proxy
    finally:
        proxy.close()
