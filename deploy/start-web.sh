#!/bin/sh
# The web: gunicorn on portal.wsgi. WEB_CONCURRENCY workers (default 2 per core).
# Forwarded headers are believed only from FORWARDED_ALLOW_IPS (the proxies' addresses, by
# default this host alone), and the portal counts PORTAL_TRUSTED_PROXIES hops of
# X-Forwarded-For for the client's address (rate limits, the login lockout).
set -eu
exec gunicorn portal.wsgi \
    --bind "0.0.0.0:${PORT:-8000}" \
    --workers "${WEB_CONCURRENCY:-$(( $(nproc) * 2 ))}" \
    --timeout "${GUNICORN_TIMEOUT:-30}" \
    --access-logfile - \
    --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
