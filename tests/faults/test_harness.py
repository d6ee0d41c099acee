"""The fault harness itself: its services stop and come back, its processes are real and are
stopped by pid, and its proxy cuts an answer after the server acted on the request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.faults.conftest import Stack
from tests.faults.harness import Dropped, cutting_proxy, http, port_answers, wait_until


def _draft(stack: Stack, member: dict[str, str], *, gpu_hours: int = 100) -> dict[str, object]:
    from django.utils import timezone

    start = timezone.localdate() + timedelta(days=3)
    return {
        "organization": member["organization"],
        "program": stack.seeded["programs"][0],
        "pool": stack.seeded["pools"][0],
        "title": "Fault harness",
        "summary": "",
        "gpu_hours": gpu_hours,
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=1)).isoformat(),
        "purpose": "Fine-tuning a Norwegian language model",
        "data_stays_in_eea": True,
    }


def test_services_stop_and_come_back_on_their_ports(fault_stack: Stack) -> None:
    # given
    postgres, redis = fault_stack.postgres, fault_stack.redis

    # when: both stop
    postgres.stop()
    redis.stop()

    # then: nothing listens
    assert not port_answers(postgres.port)
    assert not port_answers(redis.port)

    # when: both start again
    postgres.start()
    redis.start()

    # then: the same ports answer, the database kept its tables, Redis came back empty
    assert fault_stack.scalar("SELECT count(*) FROM django_migrations") > 0
    assert redis.answers()


def test_a_real_worker_decides_what_gunicorn_accepted_and_dies_by_sigkill(
    fault_stack: Stack,
) -> None:
    # given
    member = fault_stack.seed(organizations=1)["members"][0]
    portal = fault_stack.portal
    portal.start_web(workers=1)
    worker = portal.start_worker()
    created = http(
        "POST",
        f"{portal.url}/api/v1/applications/",
        token=member["token"],
        body=_draft(fault_stack, member),
    )
    assert created.status == 201, created.body

    # when
    submitted = http(
        "POST",
        f"{portal.url}/api/v1/applications/{created.body['id']}/submit/",
        token=member["token"],
    )

    # then: decided by the worker process
    assert submitted.status == 202, submitted.body
    wait_until(
        lambda: (
            fault_stack.scalar(
                "SELECT status FROM allocations_application WHERE id = %s", created.body["id"]
            )
            == "approved"
        ),
        timeout=60,
        what="the worker's decision",
    )
    assert "decide_application" in worker.log_text()

    # when: SIGKILL
    worker.kill()

    # then
    assert not worker.running()
    assert worker.popen.returncode == -9


def test_the_proxy_cuts_the_answer_after_the_server_acted(fault_stack: Stack) -> None:
    # given
    member = fault_stack.seed(organizations=1)["members"][0]
    portal = fault_stack.portal
    portal.start_web(workers=1)
    before = fault_stack.scalar("SELECT count(*) FROM allocations_application")

    # when
    with cutting_proxy(portal.web_port, cut=lambda line: line.startswith("POST ")) as proxy:
        with pytest.raises(Dropped):
            http(
                "POST",
                f"{proxy.url}/api/v1/applications/",
                token=member["token"],
                body=_draft(fault_stack, member),
            )
        read = http("GET", f"{proxy.url}/api/v1/applications/", token=member["token"])

    # then: the draft exists though the client never saw the answer; reads pass through
    assert fault_stack.scalar("SELECT count(*) FROM allocations_application") == before + 1
    assert proxy.cut_requests == ["POST /api/v1/applications/ HTTP/1.1"]
    assert read.status == 200
