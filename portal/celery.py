"""The Celery app: configured from Django settings (prefix CELERY_), tasks found per app."""

import os
from functools import partial
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Seconds between a worker's attempts to reach a broker that went away. kombu's default
# backoff grows by 2 s an attempt up to 30 s, so a worker came back up to half a minute after
# its broker did; the attempts are cheap (a refused connection), so they stay frequent.
RECONNECT_SECONDS = float(os.environ.get("CELERY_BROKER_RECONNECT_SECONDS", "1"))


class Consumer(CeleryConsumer):
    """The worker's consumer, reconnecting to its broker every RECONNECT_SECONDS."""

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = partial(
            type(conn).ensure_connection,
            conn,
            interval_start=RECONNECT_SECONDS,
            interval_step=0,
            interval_max=RECONNECT_SECONDS,
        )
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection


app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = "portal.celery:Consumer"
app.autodiscover_tasks()
