"""The default backend: it runs nothing and records the commands it would run."""

from __future__ import annotations

from datetime import datetime

from allocations.backends import AccountSpec, ReportedUsage
from allocations.backends.slurm import SlurmCommands


class RecordingBackend:
    """Answers every call with the Slurm commands it stands for, without running them, so
    operators see in the admin exactly what a real scheduler would be told."""

    name = "recording"

    def __init__(self) -> None:
        self.commands = SlurmCommands()

    def create_account(self, spec: AccountSpec) -> list[str]:
        return self.commands.create_account(spec)

    def set_limit(self, spec: AccountSpec) -> list[str]:
        return self.commands.set_limit(spec)

    def suspend(self, spec: AccountSpec) -> list[str]:
        return self.commands.suspend(spec)

    def resume(self, spec: AccountSpec) -> list[str]:
        return self.commands.resume(spec)

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]:
        return []
