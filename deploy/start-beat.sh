#!/bin/sh
# Celery beat: exactly one per site. Its schedule lives in portal/settings.py.
set -eu
exec celery -A portal beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --schedule "${PORTAL_VAR_DIR:-/app/var}/celerybeat-schedule"
