"""The default backend: it runs nothing and records the commands it would run."""

from __future__ import annotations

import shlex
from datetime import datetime

from allocations.backends import AccountSpec, ClusterAccount, ReportedUsage
from allocations.backends.slurm import SlurmCommands


class RecordingBackend:
    """Answers every call with the Slurm commands that would set the account up from
    nothing, without running them, so operators see in the admin exactly what a real
    scheduler would be told. It holds no cluster, so there is nothing to reconcile."""

    name = "recording"

    def __init__(self) -> None:
        self.commands = SlurmCommands()

    def apply(self, spec: AccountSpec) -> list[str]:
        plan = self.commands.plan(spec, ClusterAccount(spec.account))
        return [shlex.join(command) for command in plan]

    def accounts(self) -> None:
        return None

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]:
        return []
