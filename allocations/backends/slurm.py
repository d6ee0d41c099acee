"""The Slurm backend: `sacctmgr` for accounts, limits and users, `sacct` for usage.

Each allocation gets an account and a QOS of its own. The QOS has `Flags=NoDecay` and
`GrpTRESMins=gres/gpu=<granted minutes>`: Slurm counts the GPU-minutes its jobs use against
the grant, never forgets them, and keeps a job that would pass the grant pending
(`QOSGrpGRESMinutes`). The organization's members with a scheduler user name are the
account's users.

Stopping new GPU jobs (suspension, exhaustion, release, expiry, and before the first day)
sets `GrpTRES=gres/gpu=0` on the QOS; letting them run again clears it (`-1`). Pending GPU
jobs then wait with reason `QOSGrpGRES`, running jobs finish and are counted, jobs of other
accounts are untouched, and the portal never holds or releases a job, so users' own holds
stay as they are.

Every change is computed from what `sacctmgr` shows first, so a command that already took
effect is not sent again: a call that failed half-way is simply run again. sacctmgr's
"Nothing new added" / "Nothing modified" answers (a concurrent run got there first) count
as success. A QOS written before slurmctld has registered the `gres/gpu` TRES with slurmdbd
is retried for PORTAL_SLURM_TRES_WAIT_SECONDS. Errors carry the command's stderr.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from allocations.backends import (
    ACCOUNT_PREFIX,
    AccountSpec,
    BackendError,
    ClusterAccount,
    ReportedUsage,
)

SACCT_FIELDS = "JobID,Account,Start,End,ElapsedRaw,AllocTRES,ConsumedEnergyRaw,State"
# Finished states: completed, failed, timed out, cancelled, out of memory, node failure,
# preempted, deadline, boot failure. A job is reported once, when it has ended.
FINISHED_STATES = "CD,F,TO,CA,OOM,NF,PR,DL,BF"
GPU = "gres/gpu"
# sacctmgr exits 1 when there was nothing to do; after our own check that means another
# run did it in between, which is what we wanted.
NOTHING_TO_DO = ("Nothing new added", "Nothing modified", "Nothing deleted")
UNKNOWN_TRES = "no TRES known"
QOS_FORMAT = "format=name,flags,grptresmins,grptres"
ACCOUNT_FORMAT = "format=account,descr,user,qos,defaultqos"

Command = list[str]
Runner = Callable[[Command], "subprocess.CompletedProcess[str]"]


def run_command(command: Command) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client tool: no shell, and time in UTC both ways (sacct reads and prints
    times in the local zone; with TZ=UTC and SLURM_TIME_FORMAT=%s they cannot be misread)."""
    env = {**os.environ, "TZ": "UTC", "SLURM_TIME_FORMAT": "%s"}
    try:
        return subprocess.run(  # noqa: S603 - argument lists built below, no shell
            command, capture_output=True, text=True, timeout=60, env=env, check=False
        )
    except (subprocess.TimeoutExpired, OSError) as error:
        raise BackendError(f"{shlex.join(command)}: {error}") from error


def _tres(value: str, name: str = GPU) -> int | None:
    """One TRES from a list such as `cpu=64,gres/gpu=8,gres/gpu:gb300=8`: the exact name
    only (a typed GPU, `gres/gpu:gb300`, is counted in `gres/gpu` already)."""
    for item in value.split(","):
        key, _, amount = item.partition("=")
        if key == name and amount.lstrip("-").isdigit():
            return int(amount)
    return None


class SlurmCommands:
    """Builds the command lines; the backend decides which to run, and runs them."""

    def __init__(self, cluster: str | None = None) -> None:
        self.cluster = cluster or settings.PORTAL_SLURM_CLUSTER

    # -- reading ---------------------------------------------------------------------------
    def show_qos(self, qos: str | None = None) -> Command:
        where = ["where", f"name={qos}"] if qos else []
        return ["sacctmgr", "-nP", "show", "qos", *where, QOS_FORMAT]

    def show_accounts(self, account: str | None = None) -> Command:
        name = [f"name={account}"] if account else []
        return [
            "sacctmgr", "-nP", "show", "account", "withassoc",
            "where", f"cluster={self.cluster}", *name, ACCOUNT_FORMAT,
        ]  # fmt: skip

    def fetch_usage(self, since: datetime) -> Command:
        # Without --endtime, sacct ends the window where it starts when --state is given
        # and prints nothing (man sacct, DEFAULT TIME WINDOW). TZ=UTC reads --starttime as UTC.
        start = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return [
            "sacct", "--allusers", "--allocations", "--parsable2", "--noheader",
            f"--state={FINISHED_STATES}", f"--starttime={start}", "--endtime=now",
            f"--format={SACCT_FIELDS}",
        ]  # fmt: skip

    # -- writing ---------------------------------------------------------------------------
    def plan(self, spec: AccountSpec, held: ClusterAccount) -> list[Command]:
        """The commands that bring what the cluster holds to the spec, and no others."""
        commands: list[Command] = []
        cap = None if spec.runnable else 0
        if not held.qos_exists:
            block = [] if spec.runnable else [f"GrpTRES={GPU}=0"]
            commands.append(
                ["sacctmgr", "-i", "add", "qos", spec.qos, "Flags=NoDecay",
                 f"GrpTRESMins={GPU}={spec.gpu_minutes}", *block]
            )  # fmt: skip
        else:
            changes = []
            if not held.no_decay:
                changes.append("Flags=NoDecay")
            if held.gpu_minutes != spec.gpu_minutes:
                changes.append(f"GrpTRESMins={GPU}={spec.gpu_minutes}")
            if held.gpu_cap != cap:
                changes.append(f"GrpTRES={GPU}={-1 if cap is None else cap}")
            if changes:
                commands.append(
                    ["sacctmgr", "-i", "modify", "qos", "where", f"name={spec.qos}", "set",
                     *changes]
                )  # fmt: skip
        if not held.exists:
            commands.append(
                ["sacctmgr", "-i", "add", "account", spec.account, f"Cluster={self.cluster}",
                 f"Description={spec.description}", f"QOS={spec.qos}",
                 f"DefaultQOS={spec.qos}"]
            )  # fmt: skip
        else:
            if held.qos != {spec.qos} or held.default_qos != spec.qos:
                commands.append(
                    ["sacctmgr", "-i", "modify", "account", "where", f"name={spec.account}",
                     f"cluster={self.cluster}", "set", f"QOS={spec.qos}",
                     f"DefaultQOS={spec.qos}"]
                )  # fmt: skip
            if held.description != spec.description:
                commands.append(
                    ["sacctmgr", "-i", "modify", "account", "where", f"name={spec.account}",
                     "set", f"Description={spec.description}"]
                )  # fmt: skip
        wanted = set(spec.users)
        missing = sorted(wanted - set(held.users))
        extra = sorted(set(held.users) - wanted)
        astray = sorted(
            user for user, qos in held.users.items() if user in wanted and qos != {spec.qos}
        )
        if missing:
            commands.append(
                ["sacctmgr", "-i", "add", "user", ",".join(missing), f"Account={spec.account}",
                 f"Cluster={self.cluster}"]
            )  # fmt: skip
        if astray:
            commands.append(
                ["sacctmgr", "-i", "modify", "user", "where", f"name={','.join(astray)}",
                 f"account={spec.account}", f"cluster={self.cluster}", "set",
                 f"QOS={spec.qos}", f"DefaultQOS={spec.qos}"]
            )  # fmt: skip
        if extra:
            commands.append(
                ["sacctmgr", "-i", "remove", "user", "where", f"name={','.join(extra)}",
                 f"account={spec.account}", f"cluster={self.cluster}"]
            )  # fmt: skip
        return commands


def parse_held(qos_output: str, account_output: str) -> dict[str, ClusterAccount]:
    """The portal's accounts (names starting `pap-`) from `show qos` and `show account
    withassoc` in the formats of SlurmCommands."""
    qos_rows: dict[str, list[str]] = {}
    for line in qos_output.splitlines():
        fields = line.split("|")
        if len(fields) >= 4 and fields[0].startswith(ACCOUNT_PREFIX):
            qos_rows[fields[0]] = fields
    accounts: dict[str, dict[str, object]] = {}
    for line in account_output.splitlines():
        fields = line.split("|")
        if len(fields) < 5 or not fields[0].startswith(ACCOUNT_PREFIX):
            continue
        account, description, user, qos, default_qos = fields[:5]
        entry = accounts.setdefault(account, {"users": {}})
        qos_set = frozenset(name for name in qos.split(",") if name)
        if user:
            entry["users"][user] = qos_set  # type: ignore[index]
        else:
            entry.update(description=description, qos=qos_set, default_qos=default_qos or None)
    names = set(accounts) | {name.removesuffix("-qos") for name in qos_rows}
    held: dict[str, ClusterAccount] = {}
    for account in sorted(names):
        entry = accounts.get(account, {"users": {}})
        qos_fields = qos_rows.get(f"{account}-qos")
        held[account] = ClusterAccount(
            account=account,
            description=entry.get("description"),  # type: ignore[arg-type]
            qos=entry.get("qos", frozenset()),  # type: ignore[arg-type]
            default_qos=entry.get("default_qos"),  # type: ignore[arg-type]
            users=entry["users"],  # type: ignore[arg-type]
            qos_exists=qos_fields is not None,
            no_decay=qos_fields is not None and "NoDecay" in qos_fields[1].split(","),
            gpu_minutes=_tres(qos_fields[2]) if qos_fields else None,
            gpu_cap=_tres(qos_fields[3]) if qos_fields else None,
        )
    return held


def _when(value: str) -> datetime | None:
    """A sacct time: seconds since the epoch (SLURM_TIME_FORMAT=%s), or ISO in UTC (TZ=UTC);
    None for `Unknown`, `None` and the like."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_sacct(output: str, *, source: str) -> list[ReportedUsage]:
    """Parse `sacct --parsable2 --noheader --format=<SACCT_FIELDS>` lines into usage.

    GPU-seconds are the `gres/gpu` count of AllocTRES × ElapsedRaw. Jobs without GPUs, that
    never started or have no end are left out. ConsumedEnergyRaw (joules) becomes kWh.
    """
    usage: list[ReportedUsage] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != len(SACCT_FIELDS.split(",")):
            raise BackendError(f"Unexpected sacct line: {line!r}")
        job_id, account, start, end, elapsed, tres, energy, _state = fields
        gpus = _tres(tres) or 0
        started, ended = _when(start), _when(end)
        if gpus <= 0 or started is None or ended is None or not elapsed.isdigit():
            continue
        if int(elapsed) == 0:
            continue
        joules = Decimal(energy) if energy.isdigit() else None
        usage.append(
            ReportedUsage(
                source=source,
                external_id=job_id,
                account=account,
                gpu_seconds=gpus * int(elapsed),
                started_at=started,
                ended_at=ended,
                energy_kwh=str((joules / 3_600_000).quantize(Decimal("0.001"))) if joules else None,
            )
        )
    return usage


class SlurmBackend:
    """Runs `sacctmgr` and `sacct` on this host, as a Slurm operator (see the README)."""

    name = "slurm"

    def __init__(self, runner: Runner | None = None) -> None:
        self.commands = SlurmCommands()
        self.source = settings.PORTAL_SLURM_SOURCE
        self.runner = runner or run_command
        self.tres_wait = float(settings.PORTAL_SLURM_TRES_WAIT_SECONDS)
        self.sleep: Callable[[float], None] = time.sleep

    def _read(self, command: Command) -> str:
        done = self.runner(command)
        if done.returncode != 0:
            raise BackendError(_failure(command, done))
        return done.stdout

    def _write(self, command: Command) -> None:
        deadline = time.monotonic() + self.tres_wait
        while True:
            done = self.runner(command)
            said = f"{done.stdout}\n{done.stderr}"
            if done.returncode == 0 or any(phrase in said for phrase in NOTHING_TO_DO):
                return
            if UNKNOWN_TRES in said and time.monotonic() < deadline:
                # slurmctld registers gres/gpu with slurmdbd when it starts; wait for it.
                self.sleep(1)
                continue
            raise BackendError(_failure(command, done))

    def held(self, account: str | None = None) -> dict[str, ClusterAccount]:
        qos = self._read(self.commands.show_qos(f"{account}-qos" if account else None))
        accounts = self._read(self.commands.show_accounts(account))
        return parse_held(qos, accounts)

    def apply(self, spec: AccountSpec) -> list[str]:
        held = self.held(spec.account).get(spec.account, ClusterAccount(spec.account))
        plan = self.commands.plan(spec, held)
        for command in plan:
            self._write(command)
        return [shlex.join(command) for command in plan]

    def accounts(self) -> dict[str, ClusterAccount]:
        return self.held()

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]:
        return parse_sacct(self._read(self.commands.fetch_usage(since)), source=self.source)


def _failure(command: Command, done: subprocess.CompletedProcess[str]) -> str:
    said = (done.stderr or "").strip() or (done.stdout or "").strip() or "no output"
    return f"{shlex.join(command)} exited {done.returncode}: {said}"
