"""A Slurm backend for fault tests: the real `SlurmBackend` against the fake `sacctmgr` of
tests/usage/fake_slurm.py, whose state lives in a file (PORTAL_FAULT_CLUSTER) so that every
worker process sees one cluster, and which pauses PORTAL_FAULT_COMMAND_SECONDS after each
write it applied, so that a test can SIGKILL a worker between two commands of one call.
Every write is appended to the state's `writes`: a command run twice shows there twice."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

from allocations.backends.slurm import SlurmBackend
from tests.usage.fake_slurm import FakeSlurm


def load(path: Path) -> FakeSlurm:
    cluster = FakeSlurm()
    if path.exists():
        cluster.qos, cluster.accounts, cluster.writes = pickle.loads(path.read_bytes())
    return cluster


def _save(path: Path, cluster: FakeSlurm) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(pickle.dumps((cluster.qos, cluster.accounts, cluster.writes)))
    partial.replace(path)


class SlowSlurmBackend(SlurmBackend):
    def __init__(self) -> None:
        super().__init__(runner=self._run)
        self.sleep = lambda seconds: None
        self.path = Path(os.environ["PORTAL_FAULT_CLUSTER"])
        self.pause = float(os.environ.get("PORTAL_FAULT_COMMAND_SECONDS", "0"))

    def _run(self, command: list[str]) -> Any:
        cluster = load(self.path)
        answer = cluster(command)
        if command[1] == "-i":
            _save(self.path, cluster)
            time.sleep(self.pause)
        return answer
