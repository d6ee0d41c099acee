from __future__ import annotations

from datetime import UTC, datetime

import pytest

from allocations.backends import AccountSpec, BackendError, ReportedUsage, account_name
from allocations.backends.slurm import SlurmBackend, SlurmCommands, parse_sacct
from allocations.models import BackendCall, UsageRecord

SPEC = AccountSpec(account="pap-0123456789abcdef", organization="Fjord AI AS", gpu_minutes=60_000)


def test_slurm_account_is_a_nodecay_qos_with_a_gpu_minute_limit(settings):
    # given
    settings.PORTAL_SLURM_CLUSTER = "narvik"

    # when
    commands = SlurmCommands().create_account(SPEC)

    # then
    assert commands == [
        "sacctmgr -i add qos pap-0123456789abcdef-qos Flags=NoDecay GrpTRESMins=gres/gpu=60000",
        "sacctmgr -i add account pap-0123456789abcdef Cluster=narvik "
        "Description='Fjord AI AS' QOS=pap-0123456789abcdef-qos "
        "DefaultQOS=pap-0123456789abcdef-qos",
    ]


def test_slurm_limit_suspend_and_resume_command_lines():
    # when
    commands = SlurmCommands(cluster="narvik")

    # then
    assert commands.set_limit(SPEC) == [
        "sacctmgr -i modify qos pap-0123456789abcdef-qos set GrpTRESMins=gres/gpu=60000"
    ]
    assert commands.suspend(SPEC) == [
        "sacctmgr -i modify qos pap-0123456789abcdef-qos set GrpTRESMins=gres/gpu=0",
        "scontrol hold $(squeue -h -A pap-0123456789abcdef -o %i)",
    ]
    assert commands.resume(SPEC)[0].endswith("GrpTRESMins=gres/gpu=60000")
    assert commands.fetch_usage(datetime(2026, 12, 1, 6, 30, tzinfo=UTC)) == [
        "sacct --allusers --allocations --parsable2 --noheader --state=CD,F,TO,CA,OOM "
        "--starttime=2026-12-01T06:30:00 "
        "--format=JobID,Account,Start,End,ElapsedRaw,AllocTRES,ConsumedEnergyRaw,State"
    ]


def test_sacct_parsable2_output_becomes_gpu_seconds_and_kwh():
    # given: a GPU job, a CPU-only job, a job without an end, a job with a typed GPU
    output = (
        "1001|pap-0123456789abcdef|2026-12-01T10:00:00|2026-12-01T12:00:00|7200|"
        "billing=8,cpu=64,gres/gpu=8,mem=512G,node=1|36000000|COMPLETED\n"
        "1002|pap-0123456789abcdef|2026-12-01T10:00:00|2026-12-01T11:00:00|3600|"
        "billing=4,cpu=4,mem=16G,node=1||COMPLETED\n"
        "1003|pap-0123456789abcdef|2026-12-01T10:00:00|Unknown|0|gres/gpu=4|0|RUNNING\n"
        "1004|pap-0123456789abcdef|2026-12-01T13:00:00|2026-12-01T13:30:00|1800|"
        "cpu=8,gres/gpu:gb300=2,node=1|0|TIMEOUT\n"
    )

    # when
    usage = parse_sacct(output, source="slurm-narvik")

    # then
    assert usage == [
        ReportedUsage(
            source="slurm-narvik",
            external_id="1001",
            account="pap-0123456789abcdef",
            gpu_seconds=8 * 7200,
            started_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
            ended_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
            energy_kwh="10.000",
        ),
        ReportedUsage(
            source="slurm-narvik",
            external_id="1004",
            account="pap-0123456789abcdef",
            gpu_seconds=2 * 1800,
            started_at=datetime(2026, 12, 1, 13, tzinfo=UTC),
            ended_at=datetime(2026, 12, 1, 13, 30, tzinfo=UTC),
            energy_kwh=None,
        ),
    ]


def test_sacct_output_of_the_wrong_shape_is_an_error():
    # when / then
    with pytest.raises(BackendError, match="Unexpected sacct line"):
        parse_sacct("1001|only|three\n", source="slurm-narvik")


def test_slurm_backend_failure_is_a_backend_error(monkeypatch):
    # given: sacctmgr is not installed here
    monkeypatch.setenv("PATH", "/nonexistent")

    # when / then
    with pytest.raises(BackendError):
        SlurmBackend().create_account(SPEC)


@pytest.mark.django_db
def test_a_failing_backend_call_is_marked_failed_and_retried(allocation, settings):
    from allocations.services.usage import backend_call_run
    from allocations.tasks import run_backend_call

    # given: the Slurm backend on a host without Slurm
    settings.PORTAL_SCHEDULER_BACKEND = "allocations.backends.slurm.SlurmBackend"
    call = BackendCall.objects.get(allocation=allocation, action="create_account")

    # when
    with pytest.raises(BackendError):
        backend_call_run(call_id=call.pk)
    retried = run_backend_call.apply(args=[str(call.pk)])

    # then: run eagerly, the task retried it with backoff up to its limit, then gave up
    call.refresh_from_db()
    assert call.outcome == "failed"
    assert call.attempts == 1 + 1 + run_backend_call.max_retries
    assert retried.state == "FAILURE"
    assert "sacctmgr" in call.detail


class FakeScheduler:
    """A backend that reports the jobs it was given."""

    name = "fake"
    jobs: list[ReportedUsage] = []

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]:
        return self.jobs


@pytest.mark.django_db
def test_the_beat_pulls_usage_through_the_same_ingest(allocation, scheduler, settings):
    from datetime import timedelta

    from django.utils import timezone

    from allocations.services.usage import usage_pull

    # given
    settings.PORTAL_SCHEDULER_BACKEND = "tests.usage.test_backends.FakeScheduler"
    start = timezone.make_aware(datetime.combine(allocation.start_date, datetime.min.time()))
    FakeScheduler.jobs = [
        ReportedUsage("slurm-narvik", "77", account_name(allocation.pk), 3600,
                      start + timedelta(hours=1), start + timedelta(hours=2)),
    ]  # fmt: skip

    # when
    first = usage_pull(since=start)
    second = usage_pull(since=start)

    # then
    assert first == {"accepted": 1, "duplicates": 0, "rejected": 0}
    assert second == {"accepted": 0, "duplicates": 1, "rejected": 0}
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 3600
    assert UsageRecord.objects.get().external_id == "77"
