from __future__ import annotations

from datetime import UTC, datetime

import pytest

from allocations.backends import AccountSpec, BackendError, ReportedUsage, account_name
from allocations.backends.slurm import SlurmBackend, SlurmCommands, parse_sacct
from allocations.models import BackendCall, UsageRecord
from tests.usage.fake_slurm import FakeSlurm

SPEC = AccountSpec(
    account="pap-0123456789abcdef",
    organization="Fjord AI AS",
    gpu_minutes=60_000,
    users=("kari", "ola"),
)
QOS = "pap-0123456789abcdef-qos"


def _backend(fake: FakeSlurm, settings, *, cluster: str = "narvik") -> SlurmBackend:
    settings.PORTAL_SLURM_CLUSTER = cluster
    backend = SlurmBackend(runner=fake)
    backend.sleep = lambda seconds: None
    return backend


def test_a_new_account_is_a_nodecay_qos_limited_to_the_grant_with_its_users(settings):
    # given
    fake = FakeSlurm()

    # when
    commands = _backend(fake, settings).apply(SPEC)

    # then
    assert commands == [
        f"sacctmgr -i add qos {QOS} Flags=NoDecay GrpTRESMins=gres/gpu=60000",
        "sacctmgr -i add account pap-0123456789abcdef Cluster=narvik Description=fjord-ai-as "
        f"QOS={QOS} DefaultQOS={QOS}",
        "sacctmgr -i add user kari,ola Account=pap-0123456789abcdef Cluster=narvik",
    ]
    assert fake.qos[QOS] == {"flags": {"NoDecay"}, "mins": 60_000, "cap": None}
    assert fake.accounts["pap-0123456789abcdef"]["users"] == {"kari": {QOS}, "ola": {QOS}}


def test_applying_the_same_spec_again_sends_nothing(settings):
    # given: sacctmgr answers a second `add` with exit 1 and "Nothing new added"
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    backend.apply(SPEC)
    fake.writes.clear()

    # when
    commands = backend.apply(SPEC)

    # then
    assert commands == []
    assert fake.writes == []


def test_a_run_that_failed_half_way_is_finished_by_the_retry(settings):
    # given: the connection drops when the users are added, after the QOS and account
    fake = FakeSlurm()
    fake.fail_once = lambda command: command[2:4] == ["add", "user"]
    backend = _backend(fake, settings)
    with pytest.raises(BackendError, match="Problem talking to the database"):
        backend.apply(SPEC)
    fake.writes.clear()

    # when
    commands = backend.apply(SPEC)

    # then: only what was missing is sent
    assert commands == ["sacctmgr -i add user kari,ola Account=pap-0123456789abcdef Cluster=narvik"]
    assert set(fake.accounts["pap-0123456789abcdef"]["users"]) == {"kari", "ola"}


def test_nothing_new_added_after_a_concurrent_run_counts_as_success(settings):
    # given: another worker adds the QOS between this run's look and its write
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    real = fake.__call__

    def racing(command: list[str]) -> object:
        if command[2:4] == ["add", "qos"] and command[4] not in fake.qos:
            real(list(command))
        return real(command)

    backend.runner = racing

    # when
    backend.apply(SPEC)

    # then
    assert fake.qos[QOS]["mins"] == 60_000
    assert "pap-0123456789abcdef" in fake.accounts


def test_a_supplement_raises_the_limit_to_the_new_grant(settings):
    # given
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    backend.apply(SPEC)
    fake.writes.clear()

    # when
    commands = backend.apply(AccountSpec(**{**SPEC.__dict__, "gpu_minutes": 90_000}))

    # then
    assert commands == [f"sacctmgr -i modify qos where name={QOS} set GrpTRESMins=gres/gpu=90000"]
    assert fake.qos[QOS]["mins"] == 90_000


def test_suspending_caps_gpus_at_zero_and_resuming_lifts_the_cap_without_touching_jobs(settings):
    # given
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    backend.apply(SPEC)
    fake.writes.clear()

    # when
    suspended = backend.apply(AccountSpec(**{**SPEC.__dict__, "runnable": False}))
    cap_while_suspended = fake.qos[QOS]["cap"]
    resumed = backend.apply(SPEC)

    # then: the limit stops new GPU jobs; no job is held or released (users' holds stay)
    assert suspended == [f"sacctmgr -i modify qos where name={QOS} set GrpTRES=gres/gpu=0"]
    assert cap_while_suspended == 0
    assert resumed == [f"sacctmgr -i modify qos where name={QOS} set GrpTRES=gres/gpu=-1"]
    assert fake.qos[QOS]["cap"] is None
    assert all(command[0] == "sacctmgr" for command in fake.writes)


def test_an_account_created_while_stopped_starts_with_its_gpus_capped(settings):
    # given
    fake = FakeSlurm()

    # when
    commands = _backend(fake, settings).apply(AccountSpec(**{**SPEC.__dict__, "runnable": False}))

    # then
    assert commands[0].endswith("GrpTRESMins=gres/gpu=60000 GrpTRES=gres/gpu=0")
    assert fake.qos[QOS]["cap"] == 0


def test_members_who_left_are_removed_and_new_ones_added(settings):
    # given
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    backend.apply(SPEC)
    fake.writes.clear()

    # when
    commands = backend.apply(AccountSpec(**{**SPEC.__dict__, "users": ("kari", "per")}))

    # then
    assert commands == [
        "sacctmgr -i add user per Account=pap-0123456789abcdef Cluster=narvik",
        "sacctmgr -i remove user where name=ola account=pap-0123456789abcdef cluster=narvik",
    ]
    assert set(fake.accounts["pap-0123456789abcdef"]["users"]) == {"kari", "per"}


def test_a_description_with_quotes_and_capitals_survives_sacctmgr(settings):
    # given: sacctmgr lowercases descriptions and turns quotes into backticks
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    spec = AccountSpec(**{**SPEC.__dict__, "organization": 'Fjord AI\'s "Lab" AS – Tromsø'})

    # when
    backend.apply(spec)
    again = backend.apply(spec)

    # then: what was sent is what is kept, so the next run finds nothing to change
    assert fake.accounts["pap-0123456789abcdef"]["descr"] == "fjord-ai-s-lab-as-tromso"
    assert again == []


def test_a_qos_written_before_the_controller_knows_gres_gpu_is_retried(settings):
    # given: slurmdbd does not know gres/gpu for the first two attempts
    fake = FakeSlurm()
    fake.unknown_gpu_tres = 2
    backend = _backend(fake, settings)

    # when
    backend.apply(SPEC)

    # then
    assert fake.qos[QOS]["mins"] == 60_000
    assert [command[2:4] for command in fake.writes].count(["add", "qos"]) == 3


def test_a_qos_write_gives_up_after_the_wait_with_the_reason(settings):
    # given
    settings.PORTAL_SLURM_TRES_WAIT_SECONDS = 0
    fake = FakeSlurm()
    fake.unknown_gpu_tres = 1
    backend = _backend(fake, settings)

    # when / then: the error carries sacctmgr's stderr
    with pytest.raises(BackendError, match=r"exited 1: .*no TRES known by type gres/gpu"):
        backend.apply(SPEC)
    assert "pap-0123456789abcdef" not in fake.accounts


def test_a_user_moved_to_another_qos_by_hand_is_put_back(settings):
    # given
    fake = FakeSlurm()
    backend = _backend(fake, settings)
    backend.apply(SPEC)
    fake.accounts["pap-0123456789abcdef"]["users"]["ola"] = {"normal"}

    # when
    commands = backend.apply(SPEC)

    # then
    assert commands == [
        "sacctmgr -i modify user where name=ola account=pap-0123456789abcdef cluster=narvik "
        f"set QOS={QOS} DefaultQOS={QOS}"
    ]


def test_the_recording_backend_lists_the_commands_of_a_new_account():
    from allocations.backends.recording import RecordingBackend

    # when
    commands = RecordingBackend().apply(SPEC)

    # then
    assert commands[0] == f"sacctmgr -i add qos {QOS} Flags=NoDecay GrpTRESMins=gres/gpu=60000"
    assert len(commands) == 3


def test_sacct_command_reads_finished_jobs_until_now():
    # when
    command = SlurmCommands(cluster="narvik").fetch_usage(datetime(2026, 12, 1, 6, 30, tzinfo=UTC))

    # then
    assert command == [
        "sacct", "--allusers", "--allocations", "--parsable2", "--noheader",
        "--state=CD,F,TO,CA,OOM,NF,PR,DL,BF", "--starttime=2026-12-01T06:30:00",
        "--endtime=now",
        "--format=JobID,Account,Start,End,ElapsedRaw,AllocTRES,ConsumedEnergyRaw,State",
    ]  # fmt: skip


def test_sacct_runs_in_utc_with_epoch_times(monkeypatch, settings):
    from allocations.backends import slurm

    # given
    seen: dict[str, str] = {}

    def fake_run(command, **options):
        seen.update(options["env"])
        import subprocess

        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(slurm.subprocess, "run", fake_run)
    monkeypatch.setenv("TZ", "Europe/Oslo")

    # when
    SlurmBackend().fetch_usage(datetime(2026, 12, 1, tzinfo=UTC))

    # then
    assert (seen["TZ"], seen["SLURM_TIME_FORMAT"]) == ("UTC", "%s")


def test_sacct_parsable2_output_becomes_gpu_seconds_and_kwh():
    # given: a GPU job, a CPU-only job, a running job, a typed GPU, a job that never started
    output = (
        "1001|pap-0123456789abcdef|1796119200|1796126400|7200|"
        "billing=8,cpu=64,gres/gpu=8,mem=512G,node=1|36000000|COMPLETED\n"
        "1002|pap-0123456789abcdef|1796119200|1796122800|3600|"
        "billing=4,cpu=4,mem=16G,node=1||COMPLETED\n"
        "1003|pap-0123456789abcdef|1796119200|Unknown|0|gres/gpu=4|0|RUNNING\n"
        "1004_7|pap-0123456789abcdef|1796130000|1796131800|1800|"
        "cpu=8,gres/gpu:gb300=2,gres/gpu=2,node=1|0|TIMEOUT\n"
        "1005|pap-0123456789abcdef|None|1796131800|0|gres/gpu=2|0|CANCELLED by 1000\n"
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
            external_id="1004_7",
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


def test_a_missing_tool_is_a_backend_error(monkeypatch, settings):
    # given: no Slurm tools on the PATH, whatever this host has installed
    monkeypatch.setenv("PATH", "/nonexistent")

    # when / then
    with pytest.raises(BackendError, match="sacctmgr"):
        SlurmBackend().apply(SPEC)


@pytest.mark.django_db
def test_a_failing_backend_call_is_marked_failed_and_retried(allocation, fake_slurm):
    from allocations.services.scheduler import backend_call_run
    from allocations.tasks import run_backend_call

    # given: a scheduler that refuses every write, whatever this host has installed
    fake_slurm.broken = True
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
    assert "sacctmgr -i add qos" in call.detail
    assert "Problem talking to the database" in call.detail


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


@pytest.mark.django_db
def test_the_beat_ingests_under_its_configured_source_only(allocation, settings):
    from datetime import timedelta

    from django.utils import timezone

    from allocations.services.usage import usage_pull

    # given: no scheduler account is needed; the pull reports one job of another source
    settings.PORTAL_SCHEDULER_BACKEND = "tests.usage.test_backends.FakeScheduler"
    settings.PORTAL_SLURM_SOURCE = "slurm-narvik"
    start = timezone.make_aware(datetime.combine(allocation.start_date, datetime.min.time()))
    FakeScheduler.jobs = [
        ReportedUsage("slurm-narvik", "77", account_name(allocation.pk), 3600,
                      start + timedelta(hours=1), start + timedelta(hours=2)),
        ReportedUsage("slurm-bergen", "78", account_name(allocation.pk), 3600,
                      start + timedelta(hours=1), start + timedelta(hours=2)),
    ]  # fmt: skip

    # when
    pulled = usage_pull(since=start)

    # then
    assert pulled == {"accepted": 1, "duplicates": 0, "rejected": 1}
    assert list(UsageRecord.objects.values_list("source", "external_id")) == [
        ("slurm-narvik", "77")
    ]
