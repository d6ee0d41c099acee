"""The whole loop against a real one-node Slurm 22.05 with 8 GPUs: approvals become accounts
whose QOS limit is the grant, members' `sbatch` jobs run and come back as usage, a job that
would pass the grant waits until a supplement, suspension stops new GPU jobs and resume lets
them run, and reconcile mends a limit changed by hand. Jobs last seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from allocations.backends import account_name
from allocations.models import Allocation, BackendCall
from tests.slurm.cluster import Cluster

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("slurm_backend", "eager_tasks")]

LIST = "/api/v1/applications/"


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def approve(
    client_for, founder, startup, fast_lane, pool, today, django_capture_on_commit_callbacks
):
    """Apply and submit through the API; the decision and the scheduler calls run as the
    worker runs them. Answers the allocation."""

    def run(gpu_hours: int = 10, allocation: Allocation | None = None) -> Allocation:
        body = {
            "organization": str(startup.pk),
            "program": str(fast_lane.pk),
            "pool": str(pool.pk),
            "title": "Sámi speech model",
            "summary": "Fine-tuning on public broadcasts.",
            "gpu_hours": gpu_hours,
            "start_date": str(today),
            "end_date": str(today + timedelta(days=9)),
            "purpose": "Speech recognition for Northern Sámi.",
            "risk_category": "limited",
            "data_stays_in_eea": True,
            "model_lineage": "",
        }
        if allocation is not None:
            body.update(kind="supplement", allocation=str(allocation.pk))
        client = client_for(founder)
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post(LIST, body, format="json")
            assert created.status_code == 201, created.json()
        with django_capture_on_commit_callbacks(execute=True):
            submitted = client.post(f"{LIST}{created.json()['id']}/submit/")
            assert submitted.status_code == 202, submitted.json()
        granted = (
            Allocation.objects.get(pk=allocation.pk)
            if allocation is not None
            else Allocation.objects.get(application_id=created.json()["id"])
        )
        failed = BackendCall.objects.filter(allocation=granted).exclude(outcome="done")
        assert not failed.exists(), list(failed.values("action", "outcome", "detail"))
        return granted

    return run


@pytest.fixture
def member(founder, unix_user) -> str:
    """The founder's user name on the cluster (a Unix user made for the test)."""
    founder.scheduler_username = unix_user()
    founder.save(update_fields=["scheduler_username"])
    return founder.scheduler_username


def _sbatch(cluster: Cluster, user: str, account: str, *options: str, run: str = "sleep 2") -> str:
    done = cluster.run(
        "sbatch", "--parsable", f"--account={account}", "--chdir=/tmp", "--output=/dev/null",
        *options, f"--wrap={run}", user=user,
    )  # fmt: skip
    return done.stdout.strip().split(";")[0]


def _job(cluster: Cluster, job_id: str) -> tuple[str, str]:
    """(state, reason) of a job in the queue, or its final state from sacct."""
    line = cluster.run("squeue", "-h", "-j", job_id, "-o", "%T|%r", check=False).stdout.strip()
    if line:
        state, _, reason = line.partition("|")
        return state, reason
    done = cluster.run("sacct", "-nPX", "-j", job_id, "-o", "State", check=False).stdout.strip()
    return (done.split()[0] if done else "UNKNOWN"), ""


def _qos(cluster: Cluster, allocation: Allocation) -> str:
    return cluster.run(
        "sacctmgr", "-nP", "show", "qos", f"{account_name(allocation.pk)}-qos",
        "format=flags,grptresmins,grptres",
    ).stdout.strip()  # fmt: skip


def test_an_approval_becomes_an_account_whose_limit_is_the_grant_with_the_members_as_users(
    approve, member, slurm_cluster
):
    # when
    allocation = approve(gpu_hours=10)

    # then
    account = account_name(allocation.pk)
    assert _qos(slurm_cluster, allocation) == "NoDecay|gres/gpu=600|"
    associations = slurm_cluster.run(
        "sacctmgr", "-nP", "show", "assoc", "where", f"account={account}",
        "format=account,user,qos,defaultqos",
    ).stdout.split()  # fmt: skip
    assert sorted(associations) == sorted(
        [
            f"{account}||{account}-qos|{account}-qos",
            f"{account}|{member}|{account}-qos|{account}-qos",
        ]
    )


def test_a_members_gpu_job_runs_and_its_gpu_seconds_reach_the_allocation(
    approve, member, slurm_cluster, operator
):
    from allocations.tasks import pull_usage

    # given
    allocation = approve(gpu_hours=10)

    # when: a two-GPU job of a few seconds, then the beat's pull
    job = _sbatch(slurm_cluster, member, account_name(allocation.pk), "--gres=gpu:2", "--time=1")
    _wait_for("the job to complete", lambda: _job(slurm_cluster, job)[0] == "COMPLETED")
    elapsed = int(slurm_cluster.run("sacct", "-nPX", "-j", job, "-o", "ElapsedRaw").stdout.strip())
    pulled = pull_usage()

    # then
    assert pulled["accepted"] >= 1
    allocation.refresh_from_db()
    assert elapsed >= 2
    assert allocation.used_gpu_seconds == 2 * elapsed
    record = allocation.usage_records.get()
    assert (record.external_id, record.source) == (job, f"slurm-{slurm_cluster.name}")
    assert abs((record.ended_at - timezone.now()).total_seconds()) < 120  # read as UTC


def test_a_job_that_would_pass_the_grant_waits_until_a_supplement(approve, member, slurm_cluster):
    # given: 600 GPU-minutes granted; 2 GPUs for 400 minutes would take 800
    allocation = approve(gpu_hours=10)
    job = _sbatch(
        slurm_cluster, member, account_name(allocation.pk), "--gres=gpu:2", "--time=400",
        run="sleep 300",
    )  # fmt: skip
    waiting = _wait_for(
        "the job to wait for the grant",
        lambda: _job(slurm_cluster, job)[1] == "QOSGrpGRESMinutes" and _job(slurm_cluster, job),
    )

    # when: a supplement of 10 GPU-hours, approved
    approve(gpu_hours=10, allocation=allocation)

    # then
    assert waiting == ("PENDING", "QOSGrpGRESMinutes")
    assert _qos(slurm_cluster, allocation) == "NoDecay|gres/gpu=1200|"
    _wait_for("the job to start", lambda: _job(slurm_cluster, job)[0] == "RUNNING")
    slurm_cluster.run("scancel", job)


def test_suspension_stops_new_gpu_jobs_and_resume_lets_them_run_without_touching_others(
    approve,
    member,
    slurm_cluster,
    client_for,
    operator,
    unix_user,
    django_capture_on_commit_callbacks,
):
    # given: the account's member holds a job of their own; another account runs beside it
    allocation = approve(gpu_hours=10)
    account = account_name(allocation.pk)
    own_hold = _sbatch(slurm_cluster, member, account, "--gres=gpu:1", "--time=1", "--hold")
    other = approve(gpu_hours=10)
    operator_client = client_for(operator)

    # when: suspended, a new GPU job waits and the other account's job runs
    with django_capture_on_commit_callbacks(execute=True):
        suspended = operator_client.post(f"/api/v1/allocations/{allocation.pk}/suspend/")
    blocked = _sbatch(slurm_cluster, member, account, "--gres=gpu:2", "--time=1")
    beside = _sbatch(slurm_cluster, member, account_name(other.pk), "--gres=gpu:2", "--time=1")
    blocked_state = _wait_for(
        "the job to wait", lambda: _job(slurm_cluster, blocked)[1] == "QOSGrpGRES" and True
    )
    _wait_for("the other account's job", lambda: _job(slurm_cluster, beside)[0] == "COMPLETED")
    with django_capture_on_commit_callbacks(execute=True):
        resumed = operator_client.post(f"/api/v1/allocations/{allocation.pk}/resume/")

    # then: the waiting job runs; the member's own hold is still theirs
    assert (suspended.status_code, resumed.status_code) == (200, 200)
    assert blocked_state
    assert _qos(slurm_cluster, allocation) == "NoDecay|gres/gpu=600|"
    _wait_for("the job to run", lambda: _job(slurm_cluster, blocked)[0] in ("RUNNING", "COMPLETED"))
    assert _job(slurm_cluster, own_hold) == ("PENDING", "JobHeldUser")
    slurm_cluster.run("scancel", own_hold)


def test_reconcile_finds_a_limit_changed_by_hand_and_mends_it(approve, member, slurm_cluster):
    # given: an operator changed the limit on the cluster by hand
    allocation = approve(gpu_hours=10)
    qos = f"{account_name(allocation.pk)}-qos"
    slurm_cluster.run(
        "sacctmgr", "-i", "modify", "qos", "where", f"name={qos}", "set", "GrpTRESMins=gres/gpu=1"
    )
    found, mended = StringIO(), StringIO()

    # when
    with pytest.raises(SystemExit):
        call_command("scheduler_reconcile", stdout=found)
    held_after_dry_run = _qos(slurm_cluster, allocation)
    with pytest.raises(SystemExit):  # accounts of earlier tests are unknown to this database
        call_command("scheduler_reconcile", "--apply", stdout=mended)

    # then
    account = account_name(allocation.pk)
    assert f"{account} gpu_minutes: intended 600, held 1" in found.getvalue()
    assert held_after_dry_run == "NoDecay|gres/gpu=1|"
    assert f"{account}: mended" in mended.getvalue()
    assert _qos(slurm_cluster, allocation) == "NoDecay|gres/gpu=600|"


def test_the_backend_runs_as_a_plain_unix_user_with_slurm_admin_level(
    member, slurm_cluster, unix_user, settings, startup
):
    from allocations.backends import AccountSpec
    from allocations.backends.slurm import SlurmBackend, run_command

    # given: the portal's tools run as a Unix user of their own with Slurm's Admin level
    # (Operator level may not add a QOS: "Access/permission denied")
    portal = unix_user()
    slurm_cluster.run(
        "sacctmgr", "-i", "add", "user", portal, "Account=root", "AdminLevel=Admin"
    )  # fmt: skip
    backend = SlurmBackend(
        runner=lambda command: run_command(["runuser", "-u", portal, "--", *command])
    )
    spec = AccountSpec(
        account="pap-00000000operator",
        organization=startup.name,
        gpu_minutes=600,
        users=(member,),
    )

    # when: it creates, stops and reads
    created = backend.apply(spec)
    stopped = backend.apply(AccountSpec(**{**spec.__dict__, "runnable": False}))
    held = backend.accounts()["pap-00000000operator"]
    backend.fetch_usage(timezone.now() - timedelta(hours=1))

    # then
    assert (len(created), len(stopped)) == (3, 1)
    assert (held.gpu_minutes, held.gpu_cap, set(held.users)) == (600, 0, {member})
