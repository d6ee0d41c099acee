#!/bin/sh
# The web: gunicorn on portal.wsgi. WEB_CONCURRENCY workers (default 2 per core).
set -eu
exec gunicorn portal.wsgi \
    --bind "0.0.0.0:${PORT:-8000}" \
    --workers "${WEB_CONCURRENCY:-$(( $(nproc) * 2 ))}" \
    --timeout "${GUNICORN_TIMEOUT:-30}" \
    --access-logfile - \
    --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}"
