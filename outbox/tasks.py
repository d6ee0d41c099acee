"""The base class of tasks that carry out outbox effects, and the outbox's periodic purge.

A message the relay published names its row and delivery (`outbox=[id, delivery]`). The
task claims the row before it runs (a late copy of an older delivery does nothing), marks
it done when it returns and failed when it gives up; a retry keeps the lease until the
retry is due. Called without `outbox` (directly, or by the beat) a task just runs.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Retry
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

logger = logging.getLogger("portal.outbox")


class EffectTask(Task):
    # The `outbox` keyword is taken here, not by `run`: Celery must not check it against
    # the task's signature when a retry sends the message again.
    typing = False

    def __call__(self, *args: Any, outbox: list[int] | None = None, **kwargs: Any) -> Any:
        from outbox import services

        if outbox is None:
            return self._body(*args, **kwargs)
        effect_id, delivery = outbox
        worker = self.request.hostname or f"local@{socket.gethostname()}"
        if not _claim(effect_id, delivery, worker):
            logger.info("outbox: effect %s delivery %s is not current; nothing to do", *outbox)
            return None
        try:
            result = self._body(*args, **kwargs)
        except Retry as retry:
            when = retry.when
            due = when if isinstance(when, datetime) else timezone.now()
            if isinstance(when, int | float):
                due = timezone.now() + timedelta(seconds=when)
            try:
                services.effect_extend(effect_id=effect_id, delivery=delivery, until=due)
            except Exception:
                # the database is away too: the retry is sent all the same, and its run
                # claims the row again
                logger.warning("outbox: could not extend the lease of effect %s", effect_id)
            raise
        except Exception as error:
            _finish(effect_id, delivery, error=f"{type(error).__name__}: {error}")
            raise
        _finish(effect_id, delivery)
        return result

    def _body(self, *args: Any, **kwargs: Any) -> Any:
        # In a worker the tracer has pushed the message's request (its id, retries, host)
        # already; Task.__call__ would push a bare one over it, and a retry would lose count.
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        return self.run(*args, **kwargs)


# How long a worker keeps trying to claim an effect, or to mark it finished, while the
# database is away: a retry that could not claim its row leaves it to its lease, and an
# effect whose mark is lost is run again once its lease is over (a mail would go twice).
FINISH_ATTEMPTS = 30
FINISH_PAUSE_SECONDS = 2.0


def _claim(effect_id: int, delivery: int, worker: str) -> bool:
    """Claim the row, waiting for the database as `_finish` does. A retry whose claim failed
    on the database used to end there: its message was gone, and the row, still leased to
    the earlier run of a live worker, waited out its whole lease (a decision claimed just as
    the database stopped stayed `submitted` for minutes). Waiting here runs it as soon as the
    database is back; a newer delivery published meanwhile makes the claim answer false."""
    from outbox import services

    for attempt in range(FINISH_ATTEMPTS):
        try:
            return services.effect_claim(effect_id=effect_id, delivery=delivery, worker=worker)
        except (OperationalError, InterfaceError):
            if attempt == FINISH_ATTEMPTS - 1:
                logger.error(
                    "outbox: effect %s could not be claimed; its lease will run out", effect_id
                )
                raise
            if attempt == 0:
                logger.warning("outbox: claiming effect %s waits for the database", effect_id)
            connection.close()  # a new one at the next attempt
            time.sleep(FINISH_PAUSE_SECONDS)
    return False  # not reached


def _finish(effect_id: int, delivery: int, *, error: str = "") -> None:
    from outbox import services

    for attempt in range(FINISH_ATTEMPTS):
        try:
            services.effect_finish(effect_id=effect_id, delivery=delivery, error=error)
            return
        except (OperationalError, InterfaceError):
            if attempt == 0:
                logger.warning(
                    "outbox: marking effect %s finished waits for the database", effect_id
                )
            connection.close()  # a new one at the next attempt
            time.sleep(FINISH_PAUSE_SECONDS)
    logger.error("outbox: effect %s could not be marked finished; it may run again", effect_id)


@shared_task
def purge_effects() -> int:
    from outbox.services import effects_purge

    return effects_purge()
