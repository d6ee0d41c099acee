"""The outbox's writes: adding an effect in its cause's transaction, publishing and
re-driving rows (the relay), and the worker's claim, completion and heartbeat.

Publishing happens twice over, on purpose: right after the cause commits (so an effect
normally leaves within milliseconds) and from the relay loop that every worker runs (so an
effect whose broker was away at commit leaves as soon as the broker is back). Both publish a
row only while holding its lock (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), so two
relays never publish the same row twice; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.utils.imports import symbol_by_name

from outbox.models import Effect, Worker

logger = logging.getLogger("portal.outbox")

LIVE = (Effect.State.PENDING, Effect.State.PUBLISHED)
_PUBLISHED_FIELDS = ["state", "delivery", "published_at", "claimed_by", "claimed_at", "lease_until"]

# After a failed publication at commit, this process leaves publishing to the relay for a
# few seconds, so that a broker that hangs costs one request its connection timeout, not all.
_broker_quiet_until = 0.0
BROKER_QUIET_SECONDS = 5.0


# In a worker, effects written by its tasks are handed to its relay thread (woken at once),
# which publishes them in batches: a task does not pay a broker round trip per effect.
wake_relay: Callable[[], None] | None = None


class BrokerAway(Exception):
    """No row could be published: the broker did not take the message."""


# --- writing an effect -------------------------------------------------------------------------


def effect_add(*, task: str, args: Sequence[Any], queue: str, key: str = "") -> Effect:
    """Write a side effect to run `task(*args)` on `queue`. Call it inside the transaction of
    the change that causes it: the row commits or rolls back with the change. After commit
    it is published at once if the broker answers; otherwise the relay publishes it later.
    Never raises for the broker."""
    effect = Effect.objects.create(task=task, args=list(args), queue=queue, key=key)
    _after_commit([effect.pk])
    return effect


def effects_add(effects: Sequence[Effect]) -> list[Effect]:
    """`effect_add` for many effects (unsaved `Effect(task=…, args=…, queue=…, key=…)`
    rows) in one INSERT: a service that records many changes in one transaction (an
    admission cycle) writes their effects together. Each row is published after commit as
    `effect_add` publishes one."""
    if not effects:
        return []
    rows = Effect.objects.bulk_create(effects)
    _after_commit([row.pk for row in rows])
    return rows


# The effects this thread wrote whose publication at commit has not run yet. Every effect
# has its own on-commit callback, but the first to run publishes all of them, in one
# transaction and one UPDATE: a transaction that writes many effects (a cycle's mails and
# scheduler calls, a burst of submissions) publishes them together. An id whose
# transaction rolled back stays here until then and is not found: harmless.
_waiting = threading.local()


def _after_commit(effect_ids: list[int]) -> None:
    waiting: set[int] = getattr(_waiting, "ids", None) or set()
    waiting.update(effect_ids)
    _waiting.ids = waiting
    for effect_id in effect_ids:
        transaction.on_commit(partial(publish_after_commit, effect_id), robust=True)


def _take_waiting(effect_id: int) -> list[int]:
    """The ids to publish now: every waiting one, if `effect_id` is still among them (else
    an earlier callback of its transaction published it already)."""
    waiting: set[int] = getattr(_waiting, "ids", None) or set()
    if effect_id not in waiting:
        return []
    _waiting.ids = set()
    return sorted(waiting)


def effect_on_its_way(*, key: str) -> bool:
    """Whether an effect with this key is pending or published (queued or running)."""
    return Effect.objects.filter(key=key, state__in=LIVE).exists()


def effect_waiting(*, key: str) -> bool:
    """Whether an effect with this key is waiting to start (pending, or published and not
    yet taken by a worker): one more would find nothing new to do."""
    return Effect.objects.filter(
        Q(state=Effect.State.PENDING) | Q(state=Effect.State.PUBLISHED, claimed_by=""), key=key
    ).exists()


# --- publishing --------------------------------------------------------------------------------


def _send(effect: Effect, producer: Any) -> None:
    """One Celery message for one delivery of the row; the delivery number travels with it."""
    from portal.celery import app

    app.send_task(
        effect.task,
        args=effect.args,
        kwargs={"outbox": [effect.pk, effect.delivery]},
        queue=effect.queue,
        task_id=f"outbox-{effect.pk}-{effect.delivery}",
        retry=False,
        producer=producer,
    )


def _publish_locked(rows: Sequence[Effect], now: datetime) -> list[Effect]:
    """Publish locked rows one by one, through one producer, under a new delivery number
    each; stops at the first the broker refuses. Saves the rows published in one UPDATE
    (each row's delivery goes up by one, as in memory: the rows are locked) and answers
    them."""
    from portal.celery import app

    published: list[Effect] = []
    if not rows:
        return published
    try:
        with app.producer_or_acquire() as producer:
            for row in rows:
                row.delivery += 1
                row.state = Effect.State.PUBLISHED
                row.published_at = now
                row.claimed_by = ""
                row.claimed_at = None
                row.lease_until = None
                _send(row, producer)
                published.append(row)
    except Exception as error:  # kombu, redis-py and socket errors alike
        refused = rows[len(published)]
        logger.warning("outbox: the broker did not take %s: %s", refused, error)
    if published:
        Effect.objects.filter(pk__in=[row.pk for row in published]).update(
            state=Effect.State.PUBLISHED,
            delivery=F("delivery") + 1,
            published_at=now,
            claimed_by="",
            claimed_at=None,
            lease_until=None,
        )
    return published


def _eager() -> bool:
    from portal.celery import app

    return bool(app.conf.task_always_eager)


def run_eagerly(effect_id: int) -> None:
    """Under `task_always_eager` (a test's live server, a script), there is no broker to
    publish to: the row is published under a new delivery and its task runs at once in this
    thread, through the same claim and finish as in a worker, as `delay` would run it."""
    from portal.celery import app

    with transaction.atomic():
        rows = list(
            Effect.objects.select_for_update().filter(pk=effect_id, state=Effect.State.PENDING)
        )
        if not rows:
            return
        row = rows[0]
        row.delivery += 1
        row.state = Effect.State.PUBLISHED
        row.published_at = timezone.now()
        row.save(update_fields=_PUBLISHED_FIELDS)
    # Outside a worker the task's module may not be imported yet; a task is named after its
    # module (Celery's default). The loader's import_default_modules would set Django up
    # again and, with it, the logging handlers on whatever stream is current.
    task = app.tasks[row.task] if row.task in app.tasks else symbol_by_name(row.task)
    task.apply(
        args=row.args,
        kwargs={"outbox": [row.pk, row.delivery]},
        task_id=f"outbox-{row.pk}-{row.delivery}",
    )


def publish_after_commit(effect_id: int) -> None:
    """Publish a row right after its cause committed, with every other row this thread
    wrote and has not published yet; on any failure leave them pending for the relay.
    Never raises: the request that caused it has already succeeded."""
    global _broker_quiet_until
    effect_ids = _take_waiting(effect_id)
    if not effect_ids:
        return
    if _eager():
        for one in effect_ids:
            try:
                run_eagerly(one)
            except Exception:
                logger.warning("outbox: running effect %s eagerly failed", one, exc_info=True)
        return
    if wake_relay is not None:
        wake_relay()
        return
    if time.monotonic() < _broker_quiet_until:
        return
    try:
        with transaction.atomic():
            rows = list(
                Effect.objects.select_for_update(skip_locked=True)
                .filter(pk__in=effect_ids, state=Effect.State.PENDING)
                .order_by("pk")
            )
            published = _publish_locked(rows, timezone.now())
            if len(published) < len(rows):
                _broker_quiet_until = time.monotonic() + BROKER_QUIET_SECONDS
    except Exception:
        logger.warning(
            "outbox: publishing effects %s after commit failed", effect_ids, exc_info=True
        )


def _due(now: datetime, *, heartbeats: bool = True) -> Q:
    """Rows the relay publishes: pending ones, and published ones whose task will not
    finish by itself: claimed by a worker not seen for a while (when `heartbeats` can be
    trusted), or past their lease."""
    due = Q(state=Effect.State.PENDING) | Q(state=Effect.State.PUBLISHED, lease_until__lt=now)
    if heartbeats:
        quiet = now - timedelta(seconds=settings.PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS)
        alive = Worker.objects.filter(seen_at__gte=quiet).values("name")
        due |= Q(state=Effect.State.PUBLISHED, claimed_at__lt=quiet) & ~Q(claimed_by__in=alive)
    return due


def _lost(now: datetime, queues_empty: set[str]) -> Q:
    """Published rows never taken by a worker although their queue holds no message any more
    (a broker that restarted without its data lost them), or not taken for so long that
    they must have been lost."""
    unclaimed = Q(state=Effect.State.PUBLISHED, claimed_by="")
    waited = now - timedelta(seconds=settings.PORTAL_OUTBOX_UNCLAIMED_SECONDS)
    seen_empty = now - timedelta(seconds=settings.PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS)
    return unclaimed & (
        Q(published_at__lt=waited) | Q(queue__in=queues_empty, published_at__lt=seen_empty)
    )


def queue_sizes(names: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each named queue, as the broker tells; a queue it did not tell
    about (the broker away, an unknown queue on AMQP) is left out."""
    from portal.celery import app

    sizes: dict[str, int] = {}
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            # kombu's virtual transports (Redis, the filesystem) count a queue's messages
            # without declaring it (Redis drops an empty list, which a passive declare would
            # take for an unknown queue); AMQP answers a passive declare with the count.
            size = getattr(channel, "_size", None)
            for name in sorted(names):
                if size is not None:
                    sizes[name] = int(size(name))
                else:
                    sizes[name] = int(channel.queue_declare(queue=name, passive=True)[1])
    except Exception:
        logger.info("outbox: the broker did not say how full its queues are", exc_info=True)
    return sizes


def _empty_queues(names: set[str]) -> set[str]:
    """The queues among `names` that hold no ready message; a queue whose size the broker
    did not tell is left out (its rows wait for PORTAL_OUTBOX_UNCLAIMED_SECONDS)."""
    return {name for name, size in queue_sizes(names).items() if size == 0}


def effects_publish(
    *, limit: int | None = None, now: datetime | None = None, heartbeats: bool = True
) -> int:
    """The relay's one pass: publish due rows (oldest first, at most `limit`), each under a
    new delivery number, and mark them published. Rows another relay holds are skipped.
    Without `heartbeats` (the relay has just reached the database again, and workers have
    not had the time to write theirs), no row is taken for its worker's silence.
    Raises BrokerAway when rows were due and the broker took none. Answers how many."""
    now = now or timezone.now()
    limit = limit or settings.PORTAL_OUTBOX_BATCH
    condition = _due(now, heartbeats=heartbeats)
    waiting = now - timedelta(seconds=settings.PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS)
    unclaimed = set(
        Effect.objects.filter(
            state=Effect.State.PUBLISHED, claimed_by="", published_at__lt=waiting
        ).values_list("queue", flat=True)
    )
    if unclaimed:
        # Only then is the broker asked how full the queues are.
        condition |= _lost(now, _empty_queues(unclaimed))
    if not Effect.objects.filter(condition).exists():
        return 0
    with transaction.atomic():
        # Rows another relay holds are skipped, and the next ones taken instead.
        rows = list(
            Effect.objects.select_for_update(skip_locked=True)
            .filter(condition)
            .order_by("id")[:limit]
        )
        published = _publish_locked(rows, now)
    again = [row for row in published if row.delivery > 1]
    if again:
        logger.info("outbox: published %s effects again, e.g. %s", len(again), again[0])
    if rows and not published:
        raise BrokerAway
    return len(published)


# --- the worker's side --------------------------------------------------------------------------


def effect_claim(*, effect_id: int, delivery: int, worker: str) -> bool:
    """A worker takes the row of the message it received: false if the message is an older
    delivery (the row was published again since) or the row is finished, and then the task
    must do nothing.

    The row is locked first: a relay publishes inside its transaction, so the message may
    arrive before the relay has committed its delivery number; the lock waits for that
    commit (an UPDATE filtered on the new number would not match the old row and not wait).
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.PORTAL_OUTBOX_LEASE_SECONDS)
    with transaction.atomic():
        current = (
            Effect.objects.select_for_update()
            .filter(pk=effect_id)
            .values_list("delivery", "state")
            .first()
        )
        if current != (delivery, Effect.State.PUBLISHED):
            return False
        Effect.objects.filter(pk=effect_id).update(
            claimed_by=worker, claimed_at=now, lease_until=now + lease
        )
    return True


def effect_finish(*, effect_id: int, delivery: int, error: str = "") -> bool:
    """Mark the row done (or failed, with the error) if this delivery still owns it."""
    state = Effect.State.FAILED if error else Effect.State.DONE
    finished = Effect.objects.filter(
        pk=effect_id, delivery=delivery, state=Effect.State.PUBLISHED
    ).update(state=state, finished_at=timezone.now(), error=error[:2000])
    return finished == 1


def effect_extend(*, effect_id: int, delivery: int, until: datetime) -> None:
    """The task retries later: keep the lease until then, so the row is not re-driven
    before its own retry is due."""
    lease = timedelta(seconds=settings.PORTAL_OUTBOX_LEASE_SECONDS)
    Effect.objects.filter(pk=effect_id, delivery=delivery, state=Effect.State.PUBLISHED).update(
        lease_until=until + lease
    )


def worker_heartbeat(*, name: str, started_at: datetime) -> None:
    """The worker is alive: rows it claimed are left to it."""
    now = timezone.now()
    if not Worker.objects.filter(name=name).update(seen_at=now):
        Worker.objects.update_or_create(
            name=name, defaults={"seen_at": now, "started_at": started_at}
        )


def effects_purge(*, now: datetime | None = None) -> int:
    """Delete finished rows older than PORTAL_OUTBOX_KEEP_DAYS and workers gone for a day."""
    now = now or timezone.now()
    kept = now - timedelta(days=settings.PORTAL_OUTBOX_KEEP_DAYS)
    deleted, _ = Effect.objects.filter(
        state__in=(Effect.State.DONE, Effect.State.FAILED), finished_at__lt=kept
    ).delete()
    Worker.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
    return deleted
