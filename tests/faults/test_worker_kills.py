"""Workers SIGKILLed in the middle of a decision, a scheduler call and a mail: each effect
completes within 30 s of the kill, without the beat, and exactly once in effect (one
decision and one allocation, each scheduler command run once, one mail accepted)."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.faults.conftest import Stack
from tests.faults.harness import Process, http, wait_until
from tests.faults.slow_cluster import load
from tests.faults.smtp import SmtpServer

RECOVERY_SECONDS = 30


def _effect(stack: Stack, task: str) -> tuple[Any, ...] | None:
    rows = stack.sql(
        "SELECT id, state, delivery, claimed_by FROM outbox_effect WHERE task = %s ORDER BY id",
        task,
    )
    return rows[-1] if rows else None


def _claimer(stack: Stack, task: str) -> Process | None:
    """The worker process that claimed the newest effect of `task` and is still on it."""
    effect = _effect(stack, task)
    if effect is None or effect[1] != "published" or not effect[3]:
        return None
    for worker in stack.portal.workers:
        index = worker.name.removeprefix("worker-")
        if effect[3].startswith(f"fault{index}-{os.getpid()}@") and worker.running():
            return worker
    return None


def test_workers_killed_mid_decision_scheduler_call_and_mail_recover_within_30_s_once(
    fault_stack: Stack, tmp_path: Path
) -> None:
    # given: two workers per queue, a scheduler whose commands take 3 s each, and a mail
    # server that holds the first message; no beat (recovery must not wait for it)
    seeded = fault_stack.seed(organizations=1, gpus_per_pool=5000)
    member = seeded["members"][0]
    cluster = tmp_path / "cluster.pickle"
    smtp = SmtpServer()
    portal = fault_stack.portal
    portal.env.update(
        PORTAL_SCHEDULER_BACKEND="tests.faults.slow_cluster.SlowSlurmBackend",
        PORTAL_FAULT_CLUSTER=str(cluster),
        PORTAL_FAULT_COMMAND_SECONDS="3",
        EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
    )
    portal.start_web(workers=1)
    for queue in ("decisions", "decisions", "scheduler", "scheduler", "mail", "mail"):
        portal.start_worker(queues=[queue])
    from django.utils import timezone

    start = timezone.localdate() + timedelta(days=3)
    draft = http(
        "POST",
        f"{portal.url}/api/v1/applications/",
        token=member["token"],
        body={
            "organization": member["organization"],
            "program": seeded["programs"][0],
            "pool": seeded["pools"][0],
            "title": "Killed workers",
            "summary": "",
            "gpu_hours": 100,
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=1)).isoformat(),
            "purpose": "Fine-tuning a Norwegian language model",
            "data_stays_in_eea": True,
        },
    )
    assert draft.status == 201, draft.body
    application = draft.body["id"]
    kills: dict[str, float] = {}
    done: dict[str, float] = {}

    # when: the decision's worker is caught inside the decision's transaction (a lock of this
    # test keeps it waiting there) and SIGKILLed
    blocker = fault_stack.postgres.connect(fault_stack.database, autocommit=False)
    try:
        blocker.execute(
            "SELECT id FROM allocations_gpupool WHERE id = %s FOR UPDATE", (seeded["pools"][0],)
        )
        submitted = http(
            "POST", f"{portal.url}/api/v1/applications/{application}/submit/", token=member["token"]
        )
        assert submitted.status == 202, submitted.body
        wait_until(
            lambda: _claimer(fault_stack, "allocations.tasks.decide_application") is not None,
            timeout=30,
            what="a worker to take the decision",
        )
        victim = _claimer(fault_stack, "allocations.tasks.decide_application")
        assert victim is not None
        time.sleep(1)  # inside the transaction, waiting for the pool's lock
        victim.kill()
        kills["decision"] = time.monotonic()
    finally:
        blocker.rollback()
        blocker.close()

    def decided() -> bool:
        status = fault_stack.scalar(
            "SELECT status FROM allocations_application WHERE id = %s", application
        )
        return status != "submitted"

    wait_until(decided, timeout=60, interval=0.2, what="the decision")
    done["decision"] = time.monotonic()

    # when: the scheduler call's worker is SIGKILLed between its first and second command
    wait_until(
        lambda: cluster.exists() and bool(load(cluster).writes),
        timeout=60,
        interval=0.1,
        what="the scheduler's first command",
    )
    victim = _claimer(fault_stack, "allocations.tasks.run_backend_call")
    assert victim is not None, "no worker holds the scheduler call"
    victim.kill()
    kills["scheduler call"] = time.monotonic()

    # when: the mail's worker is SIGKILLed while the mail server has its message
    assert smtp.holding.wait(60), "the mail never reached the server"
    victim = _claimer(fault_stack, "allocations.tasks.notify_application_decided")
    assert victim is not None, "no worker holds the mail"
    victim.kill()
    kills["mail"] = time.monotonic()

    def call_done() -> bool:
        outcome = fault_stack.scalar("SELECT outcome FROM allocations_backendcall LIMIT 1")
        return outcome == "done"

    wait_until(call_done, timeout=60, interval=0.2, what="the scheduler call")
    done["scheduler call"] = time.monotonic()
    wait_until(lambda: smtp.accepted, timeout=60, interval=0.2, what="the mail")
    done["mail"] = time.monotonic()
    time.sleep(3)  # anything run twice would show by now

    # then: each finished within 30 s of its kill
    recovery = {what: done[what] - kills[what] for what in kills}
    assert all(seconds <= RECOVERY_SECONDS for seconds in recovery.values()), recovery

    # then: exactly once in effect
    assert (
        fault_stack.scalar(
            "SELECT count(*) FROM allocations_allocation WHERE application_id = %s", application
        )
        == 1
    )
    verbs = Counter(
        verb
        for (verb,) in fault_stack.sql(
            "SELECT verb FROM accounts_auditevent WHERE target_id = %s OR target_id IN "
            "(SELECT id FROM allocations_allocation WHERE application_id = %s)",
            application,
            application,
        )
    )
    assert verbs["application.approved"] == 1, verbs
    assert sum(count for verb, count in verbs.items() if verb.startswith("backend.")) == 1
    writes = [tuple(command) for command in load(cluster).writes]
    assert len(writes) == len(set(writes)), writes
    state = load(cluster)
    assert len(state.accounts) == 1
    assert len(state.qos) == 1
    assert len(smtp.accepted) == 1, [mail.recipients for mail in smtp.accepted]
    assert smtp.dropped >= 1
    effects = fault_stack.sql("SELECT task, state, delivery FROM outbox_effect ORDER BY id")
    assert {(task, state) for task, state, _ in effects} == {
        ("allocations.tasks.decide_application", "done"),
        ("allocations.tasks.run_backend_call", "done"),
        ("allocations.tasks.notify_application_decided", "done"),
    }
    smtp.stop()
    print(
        "\nworkers SIGKILLed: "
        + ", ".join(
            f"{what} done {seconds:.1f} s after the kill" for what, seconds in recovery.items()
        )
        + f"; deliveries {[delivery for _, _, delivery in effects]}; {len(writes)} scheduler "
        f"commands, each once; {len(smtp.accepted)} mail accepted, {smtp.dropped} dropped"
    )
