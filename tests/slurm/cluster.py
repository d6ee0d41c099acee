"""A one-node Slurm 22.05 cluster for the integration tests, run from a temporary directory.

Debian's packages (slurm-wlm, slurmdbd, munge, slurm-client) are installed with apt-get when
they are missing. The node has 8 fake GPUs (device files made with mknod); accounting goes
to slurmdbd on the machine's MariaDB, in a database of this cluster's own that is dropped at
the end. munged, slurmdbd, slurmctld and slurmd run in the foreground as children of this
process, without systemd, and are stopped by their pid.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "slurm-client")
DAEMONS = ("munged", "slurmdbd", "slurmctld", "slurmd", "sacctmgr", "sbatch", "mknod")
GPUS = 8
PREFIX = "portal-slurm-"


class ClusterUnavailable(Exception):
    """Slurm cannot be installed or started here; the message says why."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _missing_tools() -> list[str]:
    return [tool for tool in DAEMONS if shutil.which(tool) is None]


def ensure_installed() -> None:
    """Install Debian's Slurm packages if a tool is missing (needs root and apt-get)."""
    if not _missing_tools():
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(
            f"Slurm is not installed ({', '.join(_missing_tools())} missing) and installing "
            "it needs root"
        )
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("Slurm is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    if _missing_tools():
        raise ClusterUnavailable(f"still missing after apt-get: {', '.join(_missing_tools())}")


def _wait(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ClusterUnavailable(f"{what} did not come up within {timeout:.0f} s\n{tail}")


def _alive(pid: int) -> bool:
    return pid > 0 and Path(f"/proc/{pid}").exists()


def _drop_database(name: str) -> None:
    subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS `{name}`"],
        capture_output=True,
        timeout=60,
    )


def reap_stale(parent: Path) -> None:
    """Clear what killed runs left behind: the daemons of clusters whose test process is gone
    (stopped by the pids they recorded), their folders, and accounting databases named
    after a test process that is gone."""
    for root in parent.glob(f"{PREFIX}*"):
        try:
            owner = int((root / "owner").read_text())
        except (OSError, ValueError):
            continue  # being set up, or not ours
        if _alive(owner):
            continue
        for line in (
            (root / "daemons").read_text().splitlines() if (root / "daemons").exists() else []
        ):
            name, _, pid = line.partition(" ")
            comm = Path(f"/proc/{pid}/comm")
            if pid.isdigit() and comm.exists() and comm.read_text().strip() == name[:15]:
                os.kill(int(pid), signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    listed = subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-u", "root", "-N", "-e",
         "SHOW DATABASES LIKE 'slurm\\_portal\\_test\\_%'"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    for name in listed.stdout.split():
        pid = name.split("_")[3] if name.count("_") >= 4 else ""
        if pid.isdigit() and not _alive(int(pid)):
            _drop_database(name)


def _wait_quietly(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.3)


class Cluster:
    """One node with 8 GPUs; `env` is what the Slurm client tools need to reach it."""

    def __init__(self, root: Path, *, name: str = "portaltest") -> None:
        self.root = root
        self.name = name
        self.database = f"slurm_portal_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.node = socket.gethostname().split(".")[0]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.conf = root / "etc" / "slurm.conf"
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "TZ": os.environ.get("TZ", "UTC"),
        }

    # -- set up ---------------------------------------------------------------------------
    def _write_config(self) -> None:
        for folder in ("etc", "munge", "state", "spool", "log", "dev", "jobs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o755)
        os.chmod(self.root / "jobs", 0o1777)
        for index in range(GPUS):
            device = self.root / "dev" / f"nvidia{index}"
            if not device.exists():
                subprocess.run(["mknod", str(device), "c", "195", str(index)], check=True)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.dbd_port = _free_port()
        self.ctld_port = _free_port()
        self.slurmd_port = _free_port()
        cpus = os.cpu_count() or 1
        log = self.root / "log"
        auth = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
        self.conf.write_text(
            f"ClusterName={self.name}\n"
            f"SlurmctldHost={self.node}(127.0.0.1)\n"
            f"SlurmctldPort={self.ctld_port}\nSlurmdPort={self.slurmd_port}\n"
            f"{auth}CredType=cred/munge\n"
            "SlurmUser=root\nSlurmdUser=root\n"
            f"StateSaveLocation={self.root / 'state'}\nSlurmdSpoolDir={self.root / 'spool'}\n"
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}\n"
            f"SlurmdPidFile={self.root / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={log / 'slurmctld.log'}\nSlurmdLogFile={log / 'slurmd.log'}\n"
            "SlurmctldDebug=info\nSlurmdDebug=info\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherType=jobacct_gather/none\nMpiDefault=none\n"
            "SchedulerType=sched/backfill\n"
            "SchedulerParameters=sched_interval=1,bf_interval=1\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
            "GresTypes=gpu\n"
            "PriorityType=priority/multifactor\nPriorityCalcPeriod=1\n"
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=127.0.0.1\nAccountingStoragePort={self.dbd_port}\n"
            f"AccountingStoragePass={self.munge_socket}\n"
            "AccountingStorageTRES=gres/gpu\n"
            "AccountingStorageEnforce=associations,limits,qos,safe\n"
            "JobCompType=jobcomp/none\nReturnToService=2\n"
            "MinJobAge=5\nKillWait=2\nInactiveLimit=0\n"
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 "
            f"Gres=gpu:{GPUS} State=UNKNOWN\n"
            "PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        )
        (self.root / "etc" / "gres.conf").write_text(
            f"AutoDetect=off\nName=gpu File={self.root / 'dev'}/nvidia[0-{GPUS - 1}]\n"
        )
        dbd = self.root / "etc" / "slurmdbd.conf"
        dbd.write_text(
            f"{auth}DbdHost=localhost\nDbdPort={self.dbd_port}\nSlurmUser=root\n"
            f"LogFile={log / 'slurmdbd.log'}\nPidFile={self.root / 'slurmdbd.pid'}\n"
            "DebugLevel=info\n"
            "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\nStoragePort=3306\n"
            f"StorageUser=root\nStorageLoc={self.database}\n"
        )
        os.chmod(dbd, 0o600)

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.root / "log" / f"{name}.out").open("ab")
        self.processes[name] = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        # Recorded so that a later run can stop them if this one is killed (reap_stale).
        with (self.root / "daemons").open("a") as daemons:
            daemons.write(f"{name} {self.processes[name].pid}\n")

    def run(
        self, *command: str, check: bool = True, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client tool against this cluster (as `user`, with runuser, if given)."""
        if user is not None:
            command = ("runuser", "-u", user, "--", *command)
        done = subprocess.run(
            list(command), env=self.env, capture_output=True, text=True, timeout=60
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout}")
        return done

    def _answers(self, *command: str) -> bool:
        return self.run(*command, check=False).returncode == 0

    def start(self) -> None:
        """Configure and start the daemons; answers once the node takes GPU jobs."""
        self._write_config()
        (self.root / "owner").write_text(str(os.getpid()))
        log = self.root / "log"
        self._spawn(
            "munged",
            [
                "munged", "--foreground", "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={self.root / 'munge' / 'munge.key'}",
                f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                f"--log-file={log / 'munged.log'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
            ],
        )  # fmt: skip
        _wait("munged", lambda: self.munge_socket.exists(), 20, log / "munged.out")
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        _wait(
            "slurmdbd",
            lambda: self._answers("sacctmgr", "-nP", "show", "cluster"),
            60,
            log / "slurmdbd.log",
        )
        self.run("sacctmgr", "-i", "add", "cluster", self.name)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        _wait("slurmctld", lambda: self._answers("scontrol", "ping"), 30, log / "slurmctld.log")
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node])
        _wait("the node", self._node_idle, 60, log / "slurmd.log")

    def _node_idle(self) -> bool:
        state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
        return state in ("idle", "mixed", "allocated")

    # -- tear down ------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel the jobs left, stop the daemons by pid (the last started first) and drop
        the database."""
        controller = self.processes.get("slurmctld")
        if controller is not None and controller.poll() is None:
            self.run("scancel", "--partition=gpu", check=False)
            _wait_quietly(lambda: not self.run("squeue", "-h", check=False).stdout.strip(), 20)
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(5)
        self.processes.clear()
        _drop_database(self.database)
        shutil.rmtree(self.root, ignore_errors=True)
