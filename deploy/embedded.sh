#!/usr/bin/env bash
# The embedded default in one process group: SQLite and a filesystem Celery broker under
# var/, one Celery worker, beat and the web server. Stops them all on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
PY="${PY:-.venv/bin/python}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

"$PY" manage.py migrate --noinput
"$PY" manage.py load_demo

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$PY" -m celery -A portal worker --pool=solo --loglevel=INFO --hostname="embedded@%h" &
pids+=($!)
"$PY" -m celery -A portal beat --loglevel=INFO &
pids+=($!)

base="http://$HOST:$PORT"
cat <<INFO

  The portal runs at $base
    API root   $base/api/v1/
    API docs   $base/api/docs/   (ReDoc: $base/api/redoc/)
    Admin      $base/admin/
    Health     $base/healthz  $base/readyz
  Demo logins are printed above (operator and applicant). Ctrl-C stops everything.

INFO

"$PY" manage.py runserver --noreload "$HOST:$PORT"
