#!/bin/sh
# A Celery worker; run as many as you like, on any hosts.
set -eu
exec celery -A portal worker \
    --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --concurrency "${CELERY_CONCURRENCY:-$(nproc)}" \
    --hostname "worker-%h"
