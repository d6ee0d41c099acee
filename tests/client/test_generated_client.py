"""The schema is enough to build a working client: openapi-python-client generates one from
`manage.py spectacular` into a temporary folder (never committed), and that client walks the
applicant's whole journey against a live portal (gunicorn and a Celery worker on a free port,
on an SQLite database of its own with the demo data): sign in for a token, read programs,
pools and capacity, draft, submit, follow until a worker decides, see the scheduler's usage
counted, release. The scheduler's usage is posted through the same client with its service
account's token, as an operator issues it."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "narvik_portal_client"
OPERATOR = ("operator@narvik.example", "narvik-operator-demo")
APPLICANT = ("founder@fjordai.example", "fjord-applicant-demo")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "generated-client-test-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_FORMAT": "plain",
        "DATABASE_URL": f"sqlite:///{var_dir / 'portal.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "EMAIL_URL": "dummymail://",
        "CACHE_URL": "locmemcache://",
        "PORTAL_VAR_DIR": str(var_dir),
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited before it answered")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"gunicorn did not answer within {timeout:.0f} s")


@pytest.fixture
def live_portal(tmp_path: Path) -> Iterator[str]:
    """The embedded portal as `make run` runs it, served by gunicorn with one worker
    process of Celery; both stopped by their ids."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    env = _environment(var_dir)
    for command in (["migrate", "--noinput"], ["load_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=PROJECT_ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    port = _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    with (var_dir / "web.log").open("wb") as web, (var_dir / "worker.log").open("wb") as work:
        try:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2"],
                cwd=PROJECT_ROOT, env=env, stdout=web, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo",
                 "--loglevel=WARNING"],
                cwd=PROJECT_ROOT, env=env, stdout=work, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, processes[0])
            yield url
        except BaseException:
            for log in ("web.log", "worker.log"):
                print(f"--- {log}\n" + (var_dir / log).read_text(errors="replace")[-3000:])
            raise
        finally:
            for process in processes:
                _stop(process)


@pytest.fixture
def generated_client(tmp_path: Path) -> Iterator[Any]:
    """The client openapi-python-client makes from the schema, imported from a temporary
    folder. Its generator must not warn: a warning means part of the schema was skipped."""
    schema = tmp_path / "schema.yml"
    env = {**os.environ, "DJANGO_SECRET_KEY": "generated-client-test", "DJANGO_DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--file",
                    str(schema)], cwd=PROJECT_ROOT, env=env, check=True)  # fmt: skip
    config = tmp_path / "generator.yml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code is only imported
    generator = shutil.which("openapi-python-client") or str(
        Path(sys.executable).with_name("openapi-python-client")
    )
    generated = subprocess.run(
        [generator, "generate", "--path", str(schema), "--output-path",
         str(tmp_path / PACKAGE), "--meta", "none", "--config", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output, output
    assert "Error" not in output, output
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _call(module: Any, expected_status: int, **arguments: Any) -> Any:
    """Call an operation of the generated client; its parsed answer, of the expected
    status."""
    response = module.sync_detailed(**arguments)
    assert response.status_code == expected_status, (response.status_code, response.content)
    assert response.parsed is not None, response.content
    return response.parsed


def test_a_client_generated_from_the_schema_walks_the_applicants_journey(
    generated_client, live_portal
):
    client_package = generated_client
    api = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")

    def operation(tag: str, name: str) -> Any:
        return importlib.import_module(f"{api.__name__}.{tag}.{name}")

    anonymous = client_package.Client(base_url=live_portal, raise_on_unexpected_status=True)

    def sign_in(email: str, password: str) -> Any:
        issued = _call(
            operation("sign_in", "auth_token_create"), 201, client=anonymous,
            body=models.TokenObtainInputRequest(email=email, password=password, name="client"),
        )  # fmt: skip
        assert issued.token.startswith("pap_")
        return client_package.AuthenticatedClient(
            base_url=live_portal, token=issued.token, raise_on_unexpected_status=True
        )

    # 1. sign in: a token, and who I am
    applicant = sign_in(*APPLICANT)
    me = _call(operation("sign_in", "me_retrieve"), 200, client=applicant)
    fjord = next(m.organization for m in me.memberships if m.organization.name == "Fjord AI AS")
    assert fjord.is_verified

    # 2. programs, pools and capacity
    programs = _call(operation("programs_and_capacity", "programs_list"), 200, client=applicant)
    demo_programs = {
        "no-research",
        "no-startups-fast-lane",
        "eea-research-innovation",
        "commercial",
    }
    assert {p.slug for p in programs.results} >= demo_programs
    fast_lane = next(p for p in programs.results if p.slug == "no-startups-fast-lane")
    pools = _call(operation("programs_and_capacity", "pools_list"), 200, client=applicant)
    pool = next(p for p in pools.results if p.name == "narvik-gb300-a")
    today = datetime.now(ZoneInfo("Europe/Oslo")).date()
    end = today + timedelta(days=29)
    days = _call(operation("programs_and_capacity", "capacity_list"), 200, client=applicant,
                 pool=pool.id, start=today, end=end)  # fmt: skip
    assert len(days) == 30
    assert all(day.free_gpu_hours > 8000 for day in days)
    free_in_program = next(
        part.free_gpu_hours for part in days[0].programs if part.program_slug == fast_lane.slug
    )
    assert free_in_program > 0

    # 3. draft
    draft = _call(
        operation("applications", "applications_create"), 201, client=applicant,
        body=models.ApplicationWriteRequest(
            organization=fjord.id, program=fast_lane.slug, pool=pool.name,
            title="Norwegian instruction-tuned 8B model",
            summary="Fine-tuning for citizen services.",
            gpu_hours=3000, start_date=today, end_date=end,
            purpose="Fine-tuning a language model for Norwegian public services.",
            risk_category=models.RiskCategoryEnum.LIMITED, data_stays_in_eea=True,
            model_lineage="fjord-nb-8b",
        ),
    )  # fmt: skip
    assert draft.status == models.ApplicationStatusEnum.DRAFT

    # 4. submit
    submitted = _call(operation("applications", "applications_submit"), 202, client=applicant,
                      id=draft.id)  # fmt: skip
    assert submitted.status in (models.ApplicationStatusEnum.SUBMITTED,
                                models.ApplicationStatusEnum.APPROVED)  # fmt: skip

    # 5. follow until a worker decides
    deadline = time.monotonic() + 90
    while True:
        followed = _call(operation("applications", "applications_retrieve"), 200,
                         client=applicant, id=draft.id)  # fmt: skip
        if followed.status != models.ApplicationStatusEnum.SUBMITTED:
            break
        assert time.monotonic() < deadline, "no worker decided the application in 90 s"
        time.sleep(0.5)
    assert followed.status == models.ApplicationStatusEnum.APPROVED, followed.reasons
    assert [reason.code for reason in followed.reasons] == ["auto_approved"]
    events = _call(operation("applications", "applications_events_list"), 200,
                   client=applicant, id=draft.id)  # fmt: skip
    assert {event.verb for event in events.results} >= {"application.submit"}

    # 6. use: the cluster's scheduler reports a job through its service account's token
    operator = sign_in(*OPERATOR)
    account = _call(
        operation("operators", "scheduler_accounts_create"), 201, client=operator,
        body=models.SchedulerAccountCreateInputRequest(source="slurm-narvik"),
    )  # fmt: skip
    issued = _call(operation("operators", "scheduler_accounts_tokens_create"), 201,
                   client=operator, account_id=account.id,
                   body=models.SchedulerTokenIssueInputRequest(name="exporter"))  # fmt: skip
    scheduler = client_package.AuthenticatedClient(base_url=live_portal, token=issued.token)
    now = datetime.now(ZoneInfo("UTC")).replace(microsecond=0)
    record = models.UsageRecordInputRequest(
        source="slurm-narvik", external_id="4242", allocation=followed.allocation,
        gpu_seconds=8 * 3600, started_at=now - timedelta(hours=2),
        ended_at=now - timedelta(hours=1),
    )  # fmt: skip
    batch = models.UsageBatchInputRequest(records=[record])
    counted = _call(operation("usage", "usage_create"), 200, client=scheduler, body=batch)
    assert (counted.accepted, counted.duplicates, counted.rejected) == (1, 0, [])
    again = _call(operation("usage", "usage_create"), 200, client=scheduler, body=batch)
    assert (again.accepted, again.duplicates) == (0, 1)
    allocation = _call(operation("allocations", "allocations_retrieve"), 200,
                       client=applicant, id=followed.allocation)  # fmt: skip
    assert allocation.granted_gpu_hours == 3000
    assert Decimal(allocation.used_gpu_hours) == Decimal("8")
    assert Decimal(allocation.remaining_gpu_hours) == Decimal("2992")

    # 7. release the future days
    released = _call(operation("allocations", "allocations_release"), 200, client=applicant,
                     id=allocation.id)  # fmt: skip
    assert released.released_from == today + timedelta(days=1)
    assert released.granted_gpu_hours < 3000

    # and a refusal comes back as the schema's error model, with its stable code
    refused = operation("applications", "applications_submit").sync_detailed(
        client=applicant, id=draft.id
    )
    assert refused.status_code == 409
    assert refused.parsed.code == "invalid_transition"
