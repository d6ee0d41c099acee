"""Where the Slurm backend met a real Slurm 22.05 and disagreed with it: each test pins the
behaviour the real tools showed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from allocations.backends.slurm import SlurmCommands, parse_sacct
from allocations.models import BackendCall


def test_sacct_is_asked_for_a_window_that_ends_now():
    # given: sacct 22.05 ends the window at its start when --state is given without --endtime

    # when
    (command,) = [SlurmCommands(cluster="narvik").fetch_usage(datetime(2026, 12, 1, tzinfo=UTC))]
    words = command.split() if isinstance(command, str) else command

    # then
    assert "--endtime=now" in words


def test_sacct_times_in_epoch_seconds_are_read_as_utc():
    # given: SLURM_TIME_FORMAT=%s, as the backend runs sacct
    output = (
        "1001|pap-0123456789abcdef|1796064178|1796064180|2|"
        "billing=1,cpu=1,gres/gpu=2,node=1||COMPLETED\n"
    )

    # when
    (usage,) = parse_sacct(output, source="slurm-narvik")

    # then
    assert usage.started_at == datetime(2026, 11, 30, 18, 42, 58, tzinfo=UTC)
    assert usage.ended_at == datetime(2026, 11, 30, 18, 43, tzinfo=UTC)
    assert usage.gpu_seconds == 4


def test_a_job_with_two_gpu_types_counts_all_its_gpus():
    # given: real AllocTRES lists the typed GPUs and then their total under gres/gpu
    output = (
        "1002|pap-0123456789abcdef|2026-12-01T10:00:00|2026-12-01T11:00:00|3600|"
        "billing=4,cpu=4,gres/gpu:a100=1,gres/gpu:h100=2,gres/gpu=3,node=1||COMPLETED\n"
    )

    # when
    (usage,) = parse_sacct(output, source="slurm-narvik")

    # then
    assert usage.gpu_seconds == 3 * 3600


@pytest.mark.django_db
def test_the_limit_sent_to_the_scheduler_is_the_grant_not_what_remains(allocation):
    from allocations.services.scheduler import backend_call_run, backend_request

    # given: 1,000 GPU-hours granted, 100 used (the scheduler's NoDecay QOS counts them too)
    allocation.used_gpu_seconds = 100 * 3600
    allocation.save(update_fields=["used_gpu_seconds"])
    call = backend_request(allocation=allocation, action=BackendCall.Action.SET_LIMIT)

    # when
    done = backend_call_run(call_id=call.pk)

    # then
    assert any("GrpTRESMins=gres/gpu=60000" in command for command in done.commands)
    assert not any("GrpTRESMins=gres/gpu=54000" in command for command in done.commands)
