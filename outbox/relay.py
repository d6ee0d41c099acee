"""The relay: a thread in every Celery worker (and `manage.py outbox_relay` alone) that
publishes pending outbox rows, re-drives overdue ones, and keeps the worker's heartbeat.

It wakes every PORTAL_OUTBOX_POLL_SECONDS (0.5 s): an effect whose broker was away at commit
leaves within a second of the broker's return. Database or broker errors are logged and the
loop goes on; the thread never stops its worker.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from outbox import services

logger = logging.getLogger("portal.outbox")


class Relay(threading.Thread):
    """Publishes the outbox until stopped; with `worker`, also beats that worker's heart."""

    def __init__(self, *, worker: str = "") -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.worker = worker
        self.started_at: datetime = timezone.now()
        self.stopping = threading.Event()
        self.woken = threading.Event()
        self.last_beat = 0.0
        # Since when the database has answered without a break: heartbeats written while it
        # was away are missing, so a worker's silence counts only once every worker has had
        # PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS to beat again.
        self.answering_since = time.monotonic()

    def beat(self) -> None:
        from outbox.services import worker_heartbeat

        if (
            self.worker
            and time.monotonic() - self.last_beat >= settings.PORTAL_OUTBOX_HEARTBEAT_SECONDS
        ):
            worker_heartbeat(name=self.worker, started_at=self.started_at)
            self.last_beat = time.monotonic()

    def once(self) -> int:
        """One pass: heartbeat, then publish until nothing is due (or the broker is away)."""
        from outbox.services import BrokerAway, effects_publish

        self.beat()
        total = 0
        waited = time.monotonic() - self.answering_since
        heartbeats = waited >= settings.PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS
        try:
            while not self.stopping.is_set():
                published = effects_publish(heartbeats=heartbeats)
                total += published
                if published < settings.PORTAL_OUTBOX_BATCH:
                    break
                self.beat()
        except BrokerAway:
            pass
        return total

    def run(self) -> None:
        failing = False
        while not self.stopping.is_set():
            try:
                close_old_connections()
                self.once()
                if failing:
                    logger.info("outbox: the relay works again")
                failing = False
            except Exception:
                if not failing:
                    logger.warning("outbox: the relay failed; trying again", exc_info=True)
                failing = True
                self.answering_since = time.monotonic()
                # a connection the database dropped is replaced on the next pass
                connection.close()
            self.woken.wait(settings.PORTAL_OUTBOX_POLL_SECONDS)
            self.woken.clear()
        connection.close()

    def wake(self) -> None:
        """Publish now: a task of this worker has just committed effects."""
        self.woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self.woken.set()


_relay: Relay | None = None


@worker_ready.connect
def _start_relay(sender: Any = None, **_: Any) -> None:
    """Each worker runs a relay and writes its heartbeat (its node name, as tasks see it in
    `request.hostname`) before it takes any task."""
    global _relay
    if not settings.PORTAL_OUTBOX_RELAY_IN_WORKER:
        return
    name = getattr(sender, "hostname", "") or ""
    _relay = Relay(worker=name)
    services.wake_relay = _relay.wake
    try:
        _relay.beat()
    except Exception:
        logger.warning("outbox: the first heartbeat failed", exc_info=True)
    finally:
        connection.close()
    _relay.start()


@worker_shutdown.connect
def _stop_relay(**_: Any) -> None:
    services.wake_relay = None
    if _relay is not None:
        _relay.stop()
        _relay.join(timeout=5)
