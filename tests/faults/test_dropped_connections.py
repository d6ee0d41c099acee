"""A write whose connection drops, retried with the same Idempotency-Key: one effect.

Two ways to lose an answer, for real: a proxy that lets the request through and cuts the
connection before the answer comes back (the write committed; the client cannot know), and a
gunicorn worker SIGKILLed while the request waits inside its transaction (nothing committed;
the client cannot know either). In both the client retries with the same key, and the portal
acts exactly once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal_client.api import PortalClient
from tests.faults.conftest import Stack
from tests.faults.harness import Answer, Dropped, cutting_proxy, http, wait_until
from tests.faults.test_outages import _counts, _draft


def _cut_first(path_part: str) -> Any:
    """A predicate for the proxy: cut the first POST whose path contains `path_part`."""
    cut: list[str] = []

    def decide(line: str) -> bool:
        if line.startswith("POST ") and path_part in line and not cut:
            cut.append(line)
            return True
        return False

    return decide


def _status(stack: Stack, application: str) -> str:
    return str(
        stack.scalar("SELECT status FROM allocations_application WHERE id = %s", application)
    )


def test_a_submit_and_a_usage_batch_cut_off_and_retried_with_their_keys_act_once(
    fault_stack: Stack,
) -> None:
    # given: a member with a draft, and the cluster's scheduler
    seeded = fault_stack.seed(organizations=1, scheduler_source="slurm-faults")
    member = seeded["members"][0]
    portal = fault_stack.portal
    portal.start_web(workers=2)
    portal.start_worker()
    draft = http(
        "POST",
        f"{portal.url}/api/v1/applications/",
        token=member["token"],
        body=_draft(fault_stack, member, start_in_days=0),  # active at once: usage counts
    )
    assert draft.status == 201, draft.body
    application = draft.body["id"]
    key = str(uuid.uuid4())
    submit = f"/api/v1/applications/{application}/submit/"

    # when: the submit's answer is cut off, then the client retries with the same key
    with cutting_proxy(portal.web_port, _cut_first("/submit/")) as proxy:
        with pytest.raises(Dropped):
            http(
                "POST",
                f"{proxy.url}{submit}",
                token=member["token"],
                headers={"Idempotency-Key": key},
            )
        submitted_before_retry = _status(fault_stack, application) != "draft"
        retry = http(
            "POST", f"{proxy.url}{submit}", token=member["token"], headers={"Idempotency-Key": key}
        )
        unkeyed = http("POST", f"{proxy.url}{submit}", token=member["token"])

    # then: the first try had committed; its retry gets a 202 again, replayed; one submit
    assert submitted_before_retry
    assert retry.status == 202, retry.body
    assert retry.header("Idempotent-Replayed") == "true"
    assert retry.body["id"] == application
    assert unkeyed.status == 409  # without its key, a retry cannot tell "done" from "refused"
    wait_until(
        lambda: _status(fault_stack, application) == "approved",
        timeout=60,
        what="the decision",
    )
    assert _counts(fault_stack, ["application.submit"]) == {application: 1}
    assert _counts(fault_stack, ["application.approved"]) == {application: 1}

    # given: its allocation, and a batch of usage for it
    allocation = str(
        fault_stack.scalar(
            "SELECT id FROM allocations_allocation WHERE application_id = %s", application
        )
    )
    # jobs of the past hours of today
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    records = [
        {
            "source": "slurm-faults",
            "external_id": f"job-{index}",
            "allocation": allocation,
            "gpu_seconds": 3_600 * 4,
            "started_at": (start + timedelta(hours=index)).isoformat(),
            "ended_at": (start + timedelta(hours=index + 1)).isoformat(),
        }
        for index in range(5)
    ]

    # when: the scheduler's client tool posts it and its first answer is cut off
    with cutting_proxy(portal.web_port, _cut_first("/usage/")) as proxy:
        client = PortalClient(proxy.url, seeded["scheduler_token"])
        answer = client.usage_post(records)
        cut = list(proxy.cut_requests)

    # then: the tool retried with its key and got the first answer: all five new, once
    assert cut == ["POST /api/v1/usage/ HTTP/1.1"]
    assert answer["accepted"] == 5, answer
    assert answer["duplicates"] == 0
    assert fault_stack.scalar("SELECT count(*) FROM allocations_usagerecord") == 5
    assert (
        fault_stack.scalar(
            "SELECT used_gpu_seconds FROM allocations_allocation WHERE id = %s", allocation
        )
        == 5 * 3_600 * 4
    )


def test_a_submit_whose_web_worker_is_killed_mid_request_submits_once_when_retried(
    fault_stack: Stack,
) -> None:
    # given: one web worker, and a draft whose row the test holds locked, so that a submit
    # waits inside its transaction
    member = fault_stack.seed(organizations=1)["members"][0]
    portal = fault_stack.portal
    web = portal.start_web(workers=1)
    draft = http(
        "POST",
        f"{portal.url}/api/v1/applications/",
        token=member["token"],
        body=_draft(fault_stack, member),
    )
    application = draft.body["id"]
    key = str(uuid.uuid4())
    submit = f"{portal.url}/api/v1/applications/{application}/submit/"
    outcome: list[Answer | Exception] = []

    def first_try() -> None:
        try:
            outcome.append(
                http("POST", submit, token=member["token"], headers={"Idempotency-Key": key})
            )
        except Dropped as error:
            outcome.append(error)

    with fault_stack.postgres.connect(fault_stack.database, autocommit=False) as holder:
        holder.execute(
            "SELECT id FROM allocations_application WHERE id = %s FOR UPDATE", [application]
        )
        thread = threading.Thread(target=first_try)
        thread.start()

        def waits_for_the_lock() -> bool:
            return bool(
                fault_stack.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock'",
                    fault_stack.database,
                )
            )

        wait_until(waits_for_the_lock, timeout=30, what="the submit to wait for the row")

        # when: its web worker is SIGKILLed mid-request, then the lock is let go
        (worker_pid,) = web.children()
        os.kill(worker_pid, signal.SIGKILL)
        thread.join(timeout=30)
        holder.rollback()

    # then: the client saw its connection drop, and nothing was submitted
    assert len(outcome) == 1
    assert isinstance(outcome[0], Dropped), outcome
    wait_until(lambda: len(web.children()) == 1, timeout=30, what="gunicorn's new worker")

    # when: the client retries with the same key (while the killed request's transaction may
    # still be ending: then 409 `idempotency_key_in_use`, and it waits Retry-After)
    deadline = time.monotonic() + 60
    while True:
        retry = http("POST", submit, token=member["token"], headers={"Idempotency-Key": key})
        if retry.status != 409 or retry.body["code"] != "idempotency_key_in_use":
            break
        assert time.monotonic() < deadline, "the key stayed in use"
        time.sleep(float(retry.header("Retry-After") or 1))

    # then: it acts now, once
    assert retry.status == 202, retry.body
    assert retry.header("Idempotent-Replayed") is None
    assert _status(fault_stack, application) in ("submitted", "approved")
    assert _counts(fault_stack, ["application.submit"]) == {application: 1}
