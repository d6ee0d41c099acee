"""A live portal and a headless Chromium for the browser tests.

The portal is the embedded default, as `make run` starts it, in a folder of its own: SQLite
and a filesystem broker under a temporary PORTAL_VAR_DIR, migrated and loaded with the demo
data, gunicorn on a free port and one Celery worker, each stopped by its process id.

The browser is Debian's Chromium (`/usr/bin/chromium`, or PORTAL_CHROMIUM), driven by
Playwright over the DevTools protocol: Playwright's own browser download is never used.
Screenshots go to PORTAL_SCREENSHOT_DIR (default `var/screenshots/`), kept as artifacts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = Path(os.environ.get("PORTAL_SCREENSHOT_DIR", PROJECT_ROOT / "var" / "screenshots"))

# Chromium as root, headless, in a container, with nothing reaching out to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
]

OPERATOR = ("operator@narvik.example", "narvik-operator-demo")
APPLICANT = ("founder@fjordai.example", "fjord-applicant-demo")


def chromium_path() -> str | None:
    configured = os.environ.get("PORTAL_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LivePortal:
    """The embedded portal (web and one worker) on a free port, in `var_dir`."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE", "CELERY", "DJANGO_", "PORTAL_TEST"))
        }
        self.env.update(
            {
                "PORTAL_VAR_DIR": str(var_dir),
                "DJANGO_DEBUG": "true",
                "DJANGO_SECRET_KEY": "browser-tests-only",
                "DJANGO_LOG_FORMAT": "plain",
                "DJANGO_LOG_LEVEL": "WARNING",
                # Generous limits: the tests sign in and poll more than a person would.
                "PORTAL_RATE_LIMIT": "100000/minute",
                "PORTAL_ADDRESS_RATE_LIMIT": "100000/minute",
            }
        )

    def _run(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _start(self, name: str, command: list[str]) -> None:
        log = (self.var_dir / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        )

    def start(self) -> None:
        self._run("migrate", "--noinput")
        self._run("load_demo")
        self._start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
        )
        self._start(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                f"--hostname=browser-{self.port}@%h",
            ],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if any(process.poll() is not None for process in self.processes):
                break
            time.sleep(0.3)
        self.stop()
        logs = "\n".join(
            (self.var_dir / f"{name}.log").read_text(errors="replace")[-2000:]
            for name in ("web", "worker")
        )
        raise RuntimeError(f"the live portal did not start:\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []

    def token(self, email: str, password: str) -> str:
        answer = httpx.post(
            f"{self.url}/api/v1/auth/token/",
            json={"email": email, "password": password, "name": "browser-tests"},
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["token"])
