#!/bin/sh
# A Celery worker for the queues in CELERY_QUEUES (all of them by default): production runs
# a group of workers per queue, `decisions`, `scheduler`, `mail` and `celery` (the beat's
# periodic tasks), so that a slow scheduler or mail server never delays a decision. Every
# worker also runs the outbox relay and writes its heartbeat (outbox/relay.py).
set -eu
queues="${CELERY_QUEUES:-celery,decisions,scheduler,mail}"
exec celery -A portal worker \
    --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --queues "$queues" \
    --concurrency "${CELERY_CONCURRENCY:-$(nproc)}" \
    --hostname "worker-%h"
