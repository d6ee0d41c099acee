"""The Slurm backend: `sacctmgr` for accounts and limits, `sacct` for usage.

Each allocation gets an account and a QOS of its own with `Flags=NoDecay` and
`GrpTRESMins=gres/gpu=<minutes>`: Slurm then stops new jobs once the allocation's
GPU-minutes are spent, and the limit never decays with time.
"""

from __future__ import annotations

import shlex
import subprocess
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from allocations.backends import AccountSpec, BackendError, ReportedUsage

SACCT_FIELDS = "JobID,Account,Start,End,ElapsedRaw,AllocTRES,ConsumedEnergyRaw,State"


class SlurmCommands:
    """Builds the command lines; running them is the backend's business."""

    def __init__(self, cluster: str | None = None) -> None:
        self.cluster = cluster or settings.PORTAL_SLURM_CLUSTER

    def _qos(self, spec: AccountSpec) -> str:
        return f"{spec.account}-qos"

    def create_account(self, spec: AccountSpec) -> list[str]:
        qos = self._qos(spec)
        return [
            f"sacctmgr -i add qos {qos} Flags=NoDecay GrpTRESMins=gres/gpu={spec.gpu_minutes}",
            "sacctmgr -i add account "
            f"{spec.account} Cluster={self.cluster} "
            f"Description={shlex.quote(spec.organization)} QOS={qos} DefaultQOS={qos}",
        ]

    def set_limit(self, spec: AccountSpec) -> list[str]:
        return [
            f"sacctmgr -i modify qos {self._qos(spec)} set GrpTRESMins=gres/gpu={spec.gpu_minutes}"
        ]

    def suspend(self, spec: AccountSpec) -> list[str]:
        # GrpTRESMins of 0 stops new jobs; running jobs of the account are held too.
        return [
            f"sacctmgr -i modify qos {self._qos(spec)} set GrpTRESMins=gres/gpu=0",
            f"scontrol hold $(squeue -h -A {spec.account} -o %i)",
        ]

    def resume(self, spec: AccountSpec) -> list[str]:
        return [
            f"sacctmgr -i modify qos {self._qos(spec)} set GrpTRESMins=gres/gpu={spec.gpu_minutes}",
            f"scontrol release $(squeue -h -A {spec.account} -o %i)",
        ]

    def fetch_usage(self, since: datetime) -> list[str]:
        start = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return [
            f"sacct --allusers --allocations --parsable2 --noheader --state=CD,F,TO,CA,OOM "
            f"--starttime={start} --format={SACCT_FIELDS}"
        ]


def _gpus(alloc_tres: str) -> int:
    """GPUs from AllocTRES, e.g. `billing=8,cpu=64,gres/gpu=8,mem=512G,node=1` → 8."""
    for item in alloc_tres.split(","):
        name, _, value = item.partition("=")
        if name in ("gres/gpu", "gpu") or name.startswith("gres/gpu:"):
            return int(value)
    return 0


def parse_sacct(output: str, *, source: str) -> list[ReportedUsage]:
    """Parse `sacct --parsable2 --noheader --format=<SACCT_FIELDS>` lines into usage.

    GPU-seconds are GPUs × ElapsedRaw. Jobs without GPUs, without an end, or whose times
    Slurm gives as `Unknown` are left out. ConsumedEnergyRaw (joules) becomes kWh.
    """
    usage: list[ReportedUsage] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != len(SACCT_FIELDS.split(",")):
            raise BackendError(f"Unexpected sacct line: {line!r}")
        job_id, account, start, end, elapsed, tres, energy, _state = fields
        gpus = _gpus(tres)
        if gpus == 0 or "Unknown" in (start, end) or not elapsed.isdigit():
            continue
        joules = Decimal(energy) if energy.isdigit() else None
        usage.append(
            ReportedUsage(
                source=source,
                external_id=job_id,
                account=account,
                gpu_seconds=gpus * int(elapsed),
                started_at=datetime.fromisoformat(start).replace(tzinfo=UTC),
                ended_at=datetime.fromisoformat(end).replace(tzinfo=UTC),
                energy_kwh=str((joules / 3_600_000).quantize(Decimal("0.001"))) if joules else None,
            )
        )
    return usage


class SlurmBackend:
    """Runs the commands on this host (where `sacctmgr` and `sacct` are installed)."""

    name = "slurm"

    def __init__(self) -> None:
        self.commands = SlurmCommands()
        self.source = settings.PORTAL_SLURM_SOURCE

    def _run(self, command: str) -> str:
        try:
            completed = subprocess.run(  # noqa: S602 - the command lines are built above
                command, shell=True, check=True, capture_output=True, text=True, timeout=60
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            raise BackendError(f"{command}: {error}") from error
        return completed.stdout

    def _run_all(self, commands: list[str]) -> list[str]:
        for command in commands:
            self._run(command)
        return commands

    def create_account(self, spec: AccountSpec) -> list[str]:
        return self._run_all(self.commands.create_account(spec))

    def set_limit(self, spec: AccountSpec) -> list[str]:
        return self._run_all(self.commands.set_limit(spec))

    def suspend(self, spec: AccountSpec) -> list[str]:
        return self._run_all(self.commands.suspend(spec))

    def resume(self, spec: AccountSpec) -> list[str]:
        return self._run_all(self.commands.resume(spec))

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]:
        (command,) = self.commands.fetch_usage(since)
        return parse_sacct(self._run(command), source=self.source)
