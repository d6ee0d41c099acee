"""The property-based fuzz run: schemathesis against a live portal, from its own schema.

For each role (an operator; the demo applicant, who is the admin of Fjord AI AS; and a
scheduler's service account, on the usage and allocation routes its token reaches) the run
copies a freshly migrated database with the demo data into a database of the role's own, so
that what the operator deletes or edits cannot change what the applicant run sees; starts
gunicorn and a worker on a free port against it; seeds objects through the API; signs in
over HTTP for a token; and runs schemathesis
with a fixed seed through every phase (examples, coverage, fuzzing, stateful). It fails on
any 5xx and on any answer that is not what the schema says (status code, content type,
headers, body). It prints the number of requests each role made, counted in gunicorn's access
log, and drops every database it made. Stop-gap entries in `EXPECTED_FAILURES` name known
failures with their reason; a failure not there fails the run.

Usage: `make fuzz` (PostgreSQL at 127.0.0.1:5432 unless DATABASE_URL says otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
SEED = 20261130
# Test cases per operation and phase; with the coverage phase's cases this makes well over
# 2,000 requests per role.
MAX_EXAMPLES = int(os.environ.get("PORTAL_FUZZ_MAX_EXAMPLES", "10"))
MINIMUM_REQUESTS = {"operator": 2000, "applicant": 2000, "scheduler": 200}
PHASES = "examples,coverage,fuzzing,stateful"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
ROLES = {
    "operator": ("operator@narvik.example", "narvik-operator-demo"),
    "applicant": ("founder@fjordai.example", "fjord-applicant-demo"),
}
# The scheduler's service account holds a usage:write token: it posts usage and reads
# allocations, and nothing else answers it (the other roles' runs see those refusals).
ROLE_FILTERS = {"scheduler": ["--include-path-regex", "^/api/v1/(usage|allocations)/"]}
# Known failures, until their fix lands: (operation, failure code, a text the failure's report
# contains) -> why. A failing case is expected only when every failure code it reports
# matches an entry; one that no longer occurs is reported, so that its entry is removed.
# An operation of "*" stands for any.
EXPECTED_FAILURES: dict[tuple[str, str, str], str] = {}


def _matches(key: tuple[str, str, str], operation: str, code: str, text: str) -> bool:
    known_operation, known_code, fragment = key
    return known_operation in ("*", operation) and known_code == code and fragment in text


@dataclass(frozen=True)
class Failure:
    """One failing test case: its operation, the failure codes reported (ST101: a 5xx;
    ST103-ST108: the answer is not what the schema says) and the report's text."""

    operation: str
    codes: frozenset[str]
    text: str

    def expected_because(self) -> list[str] | None:
        reasons = []
        for code in self.codes:
            reason = next(
                (
                    why
                    for key, why in EXPECTED_FAILURES.items()
                    if _matches(key, self.operation, code, self.text)
                ),
                None,
            )
            if reason is None:
                return None
            reasons.append(reason)
        return reasons


@dataclass
class RoleResult:
    role: str
    requests: int = 0
    server_errors: int = 0
    # 422 is only ever idempotency_key_reused: a generated write that never reached its view
    reused_keys: int = 0
    # 401 after sign-in: the run's own token no longer answers
    unauthorized: int = 0
    failures: list[Failure] = field(default_factory=list)
    exit_code: int = 0


def _database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_connection(base: str):  # type: ignore[no-untyped-def]
    import psycopg

    parts = urlsplit(base)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
        autocommit=True,
    )


@contextlib.contextmanager
def databases(base: str, names: list[str]) -> Iterator[None]:
    """Create nothing here; drop every named database at the end, whatever happened."""
    try:
        yield
    finally:
        with _admin_connection(base) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "fuzz-only-" + "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_FORMAT": "plain",
        "DATABASE_URL": database_url,
        # Nothing consumes the tasks: submitted applications stay submitted.
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "EMAIL_URL": "dummymail://",
        "PORTAL_VAR_DIR": str(var_dir),
        "CACHE_URL": "locmemcache://",
        # The fuzzer is one client making thousands of requests: the limits are not under test.
        "PORTAL_RATE_LIMIT": "1000000/minute",
        "PORTAL_USAGE_RATE_LIMIT": "1000000/minute",
        "PORTAL_ADDRESS_RATE_LIMIT": "1000000/minute",
        "PORTAL_LOGIN_RATE_LIMIT": "1000000/minute",
        "PORTAL_LOGIN_EMAIL_RATE_LIMIT": "1000000/minute",
    }


def _manage(env: dict[str, str], *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
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


def _call(url: str, method: str, path: str, token: str = "", body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{url}/api/v1/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _token(url: str, email: str, password: str, name: str = "fuzz") -> dict[str, Any]:
    return dict(_call(url, "POST", "auth/token/", body={"email": email, "password": password,
                                                         "name": name}))  # fmt: skip


def _results(url: str, path: str, token: str) -> list[dict[str, Any]]:
    separator = "&" if "?" in path else "?"
    return list(_call(url, "GET", f"{path}{separator}page_size=500", token)["results"])


def seed(url: str) -> dict[str, list[str]]:
    """Through the API, as the demo users: applications in every state a route acts on (a
    draft, one approved with its allocation, one in review, one withdrawn), a second token
    of each user, and an organization of the applicant's with a member. Returns the ids the
    fuzzer may use for each kind of object: the run would otherwise meet only random ids."""
    operator = _token(url, *ROLES["operator"], name="seed")["token"]
    applicant = _token(url, *ROLES["applicant"], name="seed")["token"]
    programs = {p["slug"]: p["id"] for p in _results(url, "programs/", operator)}
    pools = {p["name"]: p["id"] for p in _results(url, "pools/", operator)}
    organizations = {o["name"]: o["id"] for o in _results(url, "organizations/", operator)}
    start = date.today() + timedelta(days=3)

    def application(gpu_hours: int, title: str) -> str:
        created = _call(url, "POST", "applications/", applicant, {
            "organization": organizations["Fjord AI AS"],
            "program": programs["no-startups-fast-lane"], "pool": pools["narvik-gb300-a"],
            "title": title, "summary": "Seeded for the fuzz run.", "gpu_hours": gpu_hours,
            "start_date": str(start), "end_date": str(start + timedelta(days=29)),
            "purpose": "Training a Norwegian language model.", "risk_category": "minimal",
            "data_stays_in_eea": True,
        })  # fmt: skip
        return str(created["id"])

    draft = application(500, "A draft")
    approved, in_review, withdrawn = (
        application(2000, "Approved at once"),
        application(20000, "Above the auto-approval limit"),
        application(1000, "Withdrawn"),
    )
    for identifier in (approved, in_review, withdrawn):
        _call(url, "POST", f"applications/{identifier}/submit/", applicant, {})
    _call(url, "POST", f"applications/{withdrawn}/withdraw/", applicant, {})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statuses = {a["id"]: a["status"] for a in _results(url, "applications/", applicant)}
        if statuses[approved] == "approved" and statuses[in_review] == "in_review":
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"the worker did not decide the seeded applications: {statuses}")
    organization = _call(url, "POST", "organizations/", applicant, {
        "name": "Seeded Fuzz Lab", "kind": "university", "country": "FI",
    })  # fmt: skip
    invitation = _call(url, "POST", f"organizations/{organizations['Fjord AI AS']}/invitations/",
                       applicant, {"email": ROLES["operator"][0], "role": "member"})  # fmt: skip
    account = _call(url, "POST", "scheduler-accounts/", operator, {"source": "slurm-fuzz"})
    sites = [s["id"] for s in _results(url, "sites/", operator)]
    spare = _spare_inventory(url, operator)
    return {
        **spare,
        "applications": [draft, approved, in_review, withdrawn],
        "allocations": [a["id"] for a in _results(url, "allocations/", operator)],
        "organizations": [*organizations.values(), str(organization["id"])],
        "users": [u["id"] for u in (_call(url, "GET", "me/", t) for t in (operator, applicant))],
        "invitations": [invitation["id"]],
        "scheduler_accounts": [account["id"]],
        "tokens": [
            _token(url, *ROLES[role], name="spare")["id"] for role in ("operator", "applicant")
        ],
        "sites": sites,
        "power_phases": [
            p["id"]
            for site in sites
            for p in _results(url, f"sites/{site}/power-phases/", operator)
        ],
        "accelerators": [a["id"] for a in _results(url, "accelerators/", operator)],
        "pools": list(pools.values()),
        "capacity_events": [
            e["id"]
            for pool in pools.values()
            for e in _results(url, f"pools/{pool}/capacity-events/", operator)
        ],
        "programs": list(programs.values()),
    }


def _spare_inventory(url: str, operator: str) -> dict[str, list[str]]:
    """Inventory that nothing depends on, for the DELETE operations: deleting the demo pools
    and programs early would leave the rest of the run only 404s."""
    site = _call(url, "POST", "sites/", operator,
                 {"name": "Spare site", "country": "NO", "pue": "1.20"})  # fmt: skip
    phase = _call(url, "POST", f"sites/{site['id']}/power-phases/", operator,
                  {"name": "Spare", "power_mw": "1", "online_from": "2030-01-01"})  # fmt: skip
    accelerator = _call(url, "POST", "accelerators/", operator, {
        "name": "Spare accelerator", "board_power_w": 700, "it_power_w": 1300,
        "peak_bf16_flops": 989000000000000,
    })  # fmt: skip
    pool = _call(url, "POST", "pools/", operator, {
        "name": "spare-pool", "site": site["id"], "accelerator": accelerator["id"],
        "availability": "0.950", "is_open": True,
    })  # fmt: skip
    event = _call(url, "POST", f"pools/{pool['id']}/capacity-events/", operator,
                  {"effective_from": "2030-01-01", "gpus_in_service": 8})  # fmt: skip
    program = _call(url, "POST", "programs/", operator, {
        "name": "Spare program", "slug": "spare", "description": "Nothing applies here.",
        "priority": 90, "min_gpu_hours": 1, "max_gpu_hours": 10, "max_duration_days": 10,
        "auto_approve_max_gpu_hours": 0, "org_cap_gpu_hours": 10, "nominal_share": "0",
        "lending_limit": "0", "borrowing_limit": "0", "turnaround_days": 10,
    })  # fmt: skip
    return {
        "spare_sites": [site["id"]],
        "spare_power_phases": [phase["id"]],
        "spare_accelerators": [accelerator["id"]],
        "spare_pools": [pool["id"]],
        "spare_capacity_events": [event["id"]],
        "spare_programs": [program["id"]],
    }


# Which kind of object each path parameter names, by path prefix.
PATH_PARAMETERS = [
    ("/api/v1/sites/{parent_id}/power-phases/", {"parent_id": "sites", "id": "power_phases"}),
    ("/api/v1/pools/{parent_id}/capacity-events/",
     {"parent_id": "pools", "id": "capacity_events"}),
    ("/api/v1/organizations/", {"organization_id": "organizations", "user_id": "users",
                                "invitation_id": "invitations"}),
    ("/api/v1/invitations/", {"invitation_id": "invitations"}),
    ("/api/v1/scheduler-accounts/", {"account_id": "scheduler_accounts"}),
    ("/api/v1/tokens/", {"token_id": "tokens"}),
    ("/api/v1/sites/", {"id": "sites"}),
    ("/api/v1/accelerators/", {"id": "accelerators"}),
    ("/api/v1/pools/", {"id": "pools"}),
    ("/api/v1/programs/", {"id": "programs"}),
    ("/api/v1/applications/", {"id": "applications"}),
    ("/api/v1/allocations/", {"id": "allocations"}),
]  # fmt: skip
# How often a path parameter takes a seeded id rather than a generated one.
KNOWN_ID_PROBABILITY = 0.85


def _spare(kind: str, identifiers: dict[str, list[str]]) -> str:
    """The expendable objects of a kind, where the seed made some, for deleting."""
    return f"spare_{kind}" if f"spare_{kind}" in identifiers else kind


def config_file(path: Path, identifiers: dict[str, list[str]]) -> Path:
    """schemathesis.toml: the seeded ids as dictionaries, bound to each path parameter."""
    # No cache: a run replays nothing of an earlier one, and writes nothing into the project.
    lines = ["[cache]", "enabled = false", ""]
    for kind, values in identifiers.items():
        lines += [f"[dictionaries.{kind}]", f"values = {json.dumps(values)}", ""]
    claimed: list[str] = []
    for prefix, parameters in PATH_PARAMETERS:
        # the longer prefixes come first; a shorter one must not claim their paths
        exclusions = "".join(f"(?!{re.escape(other[len(prefix):])})" for other in claimed
                             if other.startswith(prefix))  # fmt: skip
        claimed.append(prefix)
        bindings = ", ".join(
            f'"path.{name}" = {{ dictionary = "{kind}", probability = {KNOWN_ID_PROBABILITY} }}'
            for name, kind in parameters.items()
        )
        pattern = "^" + re.escape(prefix) + exclusions
        deletions = ", ".join(
            f'"path.{name}" = {{ dictionary = "{_spare(kind, identifiers)}", '
            f"probability = {KNOWN_ID_PROBABILITY} }}"
            for name, kind in parameters.items()
        )
        lines += ["[[operations]]", f"include-path-regex = {json.dumps(pattern)}",
                  'exclude-method = "DELETE"', f"parameters = {{ {bindings} }}", "",
                  "[[operations]]", f"include-path-regex = {json.dumps(pattern)}",
                  'include-method = "DELETE"', f"parameters = {{ {deletions} }}", ""]  # fmt: skip
    path.write_text("\n".join(lines))
    return path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def portal(env: dict[str, str], log_dir: Path) -> Iterator[tuple[str, Path]]:
    """gunicorn on a free port and one Celery worker; yields the URL and gunicorn's access
    log. Both are stopped by their ids."""
    port = _free_port()
    access_log = log_dir / "access.log"
    processes: list[subprocess.Popen[bytes]] = []
    with (log_dir / "gunicorn.log").open("wb") as web, (log_dir / "worker.log").open("wb") as work:
        try:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2", "--access-logfile", str(access_log),
                 "--access-logformat", '%(s)s "%(r)s"'],
                cwd=PROJECT_ROOT, env=env, stdout=web, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo",
                 "--loglevel=WARNING"],
                cwd=PROJECT_ROOT, env=env, stdout=work, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, processes[0])
            yield url, access_log
        finally:
            for process in processes:
                _stop(process)


def _failures_from_junit(path: Path) -> list[Failure]:
    """The failing test cases schemathesis recorded, one per case."""
    failures: list[Failure] = []
    if not path.exists():
        return failures
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        for outcome in [*case.findall("failure"), *case.findall("error")]:
            text = (outcome.get("message") or "") + "\n" + (outcome.text or "")
            for block in re.split(r"\n\s*\d+\. Test Case ID", "\n" + text):
                codes = frozenset(re.findall(r"^\s*- (ST\d+) ", block, flags=re.MULTILINE))
                if codes:
                    failures.append(Failure(case.get("name", "?"), codes, block.strip()))
                elif outcome.tag == "error" and block.strip():
                    failures.append(Failure(case.get("name", "?"), frozenset({"error"}), block))
    return failures


def _role_token(url: str, role: str, identifiers: dict[str, list[str]]) -> tuple[str, str]:
    """The role's token, and its id (which the run must not revoke)."""
    if role in ROLES:
        issued = _token(url, *ROLES[role])
        return str(issued["token"]), str(issued["id"])
    # the scheduler's service account: an operator issues its usage:write token
    operator = _token(url, *ROLES["operator"], name="issuer")["token"]
    account = identifiers["scheduler_accounts"][0]
    issued = _call(url, "POST", f"scheduler-accounts/{account}/tokens/", operator,
                   {"name": "fuzz"})  # fmt: skip
    return str(issued["token"]), str(issued["id"])


def fuzz_role(role: str, base_url: str, template: str, work: Path) -> RoleResult:
    name = f"{template}_{role}"
    with _admin_connection(base_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    role_dir = work / role
    role_dir.mkdir()
    env = _environment(_database_url(base_url, name), role_dir)
    result = RoleResult(role)
    with portal(env, role_dir) as (url, access_log):
        identifiers = seed(url)
        token, token_id = _role_token(url, role, identifiers)
        config = config_file(role_dir / "schemathesis.toml", identifiers)
        before = len(access_log.read_text().splitlines()) if access_log.exists() else 0
        junit = role_dir / "junit.xml"
        command = [
            str(Path(sys.executable).with_name("st")), "--config-file", str(config),
            "run", f"{url}/api/schema/",
            "--url", url, "--header", f"Authorization: Bearer {token}",
            "--seed", str(SEED), "--phases", PHASES, "--checks", CHECKS,
            "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
            "--continue-on-failure", "--suppress-health-check", "all",
            "--report", "junit", "--report-junit-path", str(junit),
            "--output-truncate", "true", "--request-timeout", "30",
            *ROLE_FILTERS.get(role, []),
        ]  # fmt: skip
        print(f"== fuzz as {role} against {url}", flush=True)
        hooks = {
            "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PORTAL_FUZZ_TOKEN_ID": token_id,
        }
        completed = subprocess.run(
            command,
            cwd=role_dir,
            env={**env, **hooks},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        (role_dir / "schemathesis.log").write_bytes(completed.stdout)
        sys.stdout.write(completed.stdout.decode(errors="replace")[-6000:])
        result.exit_code = completed.returncode
        lines = access_log.read_text().splitlines()[before:]
        result.requests = sum(1 for line in lines if " /api/schema/" not in line)
        result.server_errors = sum(1 for line in lines if line.startswith("5"))
        result.reused_keys = sum(1 for line in lines if line.startswith("422 "))
        result.unauthorized = sum(
            1 for line in lines if line.startswith("401 ") and "/auth/token/" not in line
        )
        result.failures = _failures_from_junit(junit)
    return result


def main() -> int:
    base_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not base_url.startswith(("postgres", "psql")):
        print("The fuzz run needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    template = f"portal_fuzz_{os.getpid()}"
    names = [template, *(f"{template}_{role}" for role in MINIMUM_REQUESTS)]
    work = Path(tempfile.mkdtemp(prefix="portal-fuzz-"))
    results: list[RoleResult] = []
    with databases(base_url, names):
        with _admin_connection(base_url) as connection:
            connection.execute(f'CREATE DATABASE "{template}"')
        env = _environment(_database_url(base_url, template), work)
        _manage(env, "migrate", "--noinput")
        _manage(env, "load_demo")
        for role in MINIMUM_REQUESTS:
            results.append(fuzz_role(role, base_url, template, work))
    return report(results, work)


def report(results: list[RoleResult], work: Path) -> int:
    failed = False
    seen: set[tuple[str, str, str]] = set()
    print("\n== fuzz figures")
    for result in results:
        unexpected = [failure for failure in result.failures if failure.expected_because() is None]
        expected = [failure for failure in result.failures if failure not in unexpected]
        violations = sum(
            1 for failure in result.failures if failure.codes & {f"ST10{n}" for n in range(3, 9)}
        )
        print(
            f"{result.role}: {result.requests} requests; {result.server_errors} answered 5xx; "
            f"{result.reused_keys} refused as an Idempotency-Key reused; "
            f"{result.unauthorized} answered 401 outside sign-in; "
            f"{len(result.failures)} failing cases ({violations} with schema violations), "
            f"{len(expected)} of them expected"
        )
        for failure in expected:
            seen.update(
                key
                for key in EXPECTED_FAILURES
                for code in failure.codes
                if _matches(key, failure.operation, code, failure.text)
            )
            print(
                f"  expected: {failure.operation} {sorted(failure.codes)}: "
                + "; ".join(sorted(set(failure.expected_because() or [])))
            )
        for failure in unexpected:
            print(f"  FAILED {failure.operation} {sorted(failure.codes)}")
            print("    " + failure.text.replace("\n", "\n    ")[:3000])
        if result.requests < MINIMUM_REQUESTS[result.role]:
            print(f"  FAILED: fewer than {MINIMUM_REQUESTS[result.role]} requests")
            failed = True
        if unexpected or (result.exit_code and not result.failures):
            failed = True
    for key in sorted(set(EXPECTED_FAILURES) - seen):
        print(f"  no longer fails, remove from EXPECTED_FAILURES: {key}")
    if failed:
        print(f"fuzz: FAILED (logs in {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    total = sum(result.requests for result in results)
    print(f"fuzz: passed, {total} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
