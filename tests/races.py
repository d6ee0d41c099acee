"""Races between real processes on one database: each callable in a process of its own,
all released at the same moment by a barrier."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

from django.db import connections


def _in_a_process(barrier: Any, results: Any, key: str, run: Callable[[], object]) -> None:
    connections.close_all()  # a connection of its own, not the parent's
    barrier.wait(30)
    try:
        run()
        results.put((key, "ok"))
    except Exception as error:  # the outcome is the test's to judge
        results.put((key, type(error).__name__))
    finally:
        connections.close_all()


def race(runs: dict[str, Callable[[], object]]) -> dict[str, str]:
    """Run each callable in a process of its own; answer each key's outcome: `ok` or the
    name of the exception it raised."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(runs))
    results = context.Queue()
    connections.close_all()
    workers = [
        context.Process(target=_in_a_process, args=(barrier, results, key, run))
        for key, run in runs.items()
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(worker.exitcode == 0 for worker in workers)
    return dict(results.get(timeout=5) for _ in workers)
