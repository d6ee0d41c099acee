"""The production processes, for real: gunicorn, two Celery workers and beat on PostgreSQL,
once with Redis and once with RabbitMQ as the broker. Over HTTP an operator verifies an
organization, an applicant applies, a worker decides, usage is posted and the allocation is
exhausted. Every process is stopped by its id at the end."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from portal.celery import app as celery_app
from portal_client.api import PortalClient
from tests.workers.harness import (
    PROJECT_ROOT,
    Workers,
    database_url,
    exclusive_broker,
    publishing_to,
    purge,
    wait_until,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """gunicorn and beat beside the workers; stopped by pid, killed after a grace period."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.log_dir / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in self.running
        )


@pytest.fixture(params=["redis", "rabbitmq"])
def production(request, postgres, transactional_db, tmp_path) -> Iterator[str]:
    """The portal as production runs it; yields its base URL."""
    broker = request.getfixturevalue("broker_url" if request.param == "redis" else "amqp_url")
    call_command("load_demo", stdout=io.StringIO())
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "smoke-test-secret-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker,
        "EMAIL_URL": "dummymail://",
        "PORTAL_VAR_DIR": str(tmp_path),
        # the test users' passwords are hashed fast (tests/conftest.py)
        "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
    }
    processes = Processes(env, tmp_path)
    with exclusive_broker(broker), publishing_to(celery_app, broker):
        purge(celery_app)
        workers = Workers(
            celery_app,
            database_url=env["DATABASE_URL"],
            broker_url=broker,
            log_dir=tmp_path,
            extra_env={"PORTAL_VAR_DIR": str(tmp_path)},
        )
        try:
            processes.start("web", [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind",
                                    f"127.0.0.1:{port}", "--workers", "2"])  # fmt: skip
            processes.start("beat", [sys.executable, "-m", "celery", "-A", "portal", "beat",
                                     "--schedule", str(tmp_path / "beat-schedule")])  # fmt: skip
            workers.wait_ready(workers.start(2))
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ready(url), timeout=60, what="gunicorn's /readyz")
            yield url
        except BaseException:
            print(processes.logs(), workers.all_logs())
            raise
        finally:
            processes.stop()
            workers.stop()
            purge(celery_app)
            assert all(p.poll() is not None for p in processes.running.values())
            assert not workers.alive()


def _ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_the_production_processes_decide_and_enforce_over_http(production):
    # given: an operator and the demo applicant, signed in over HTTP
    anonymous = PortalClient(production)

    def signed_in(email: str, password: str, scope: str = "full") -> PortalClient:
        issued = anonymous.token_obtain(email=email, password=password, name="smoke", scope=scope)
        return PortalClient(production, issued["token"])

    operator = signed_in("operator@narvik.example", "narvik-operator-demo")
    account = operator.scheduler_account_create(source="slurm-narvik")
    scheduler = PortalClient(production, operator.scheduler_token_issue(account["id"])["token"])
    applicant = signed_in("founder@fjordai.example", "fjord-applicant-demo")

    # when: the applicant founds a startup, the operator verifies it, the applicant applies
    organization = applicant.request(
        "POST", "organizations/",
        json={"name": "Polar Compute AS", "kind": "startup", "country": "NO",
              "registry_number": "990996032"},
    )  # fmt: skip
    verified = operator.request("POST", f"organizations/{organization['id']}/verify/")
    program = next(p for p in applicant.programs() if p["slug"] == "no-startups-fast-lane")
    pool = next(p for p in applicant.pools() if p["name"] == "narvik-gb300-a")
    today = timezone.localdate()
    application = applicant.application_create({
        "organization": organization["id"], "program": program["id"], "pool": pool["id"],
        "title": "Arctic weather model", "gpu_hours": 100, "start_date": str(today),
        "end_date": str(today + timedelta(days=9)),
    })  # fmt: skip
    submitted = applicant.application_submit(application["id"])
    wait_until(lambda: applicant.application(application["id"])["status"] != "submitted",
               timeout=60, what="a worker's decision")  # fmt: skip
    decided = applicant.application(application["id"])

    # and the scheduler reports more usage than was granted
    start = f"{today}T01:00:00+01:00"
    end = f"{today}T02:00:00+01:00"
    usage = scheduler.usage_post([
        {"source": "slurm-narvik", "external_id": f"smoke-{index}",
         "allocation": decided["allocation"], "gpu_seconds": 60 * 3600, "started_at": start,
         "ended_at": end}
        for index in range(2)
    ])  # fmt: skip
    again = scheduler.usage_post([
        {"source": "slurm-narvik", "external_id": "smoke-0", "allocation": decided["allocation"],
         "gpu_seconds": 60 * 3600, "started_at": start, "ended_at": end}
    ])  # fmt: skip
    allocation = applicant.allocation(decided["allocation"])

    # then
    assert verified["is_verified"] is True
    assert submitted["status"] == "submitted"
    assert decided["status"] == "approved", decided
    assert usage == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert again == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert allocation["status"] == "exhausted"
    assert allocation["used_gpu_hours"] == "120.00"
