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

# The worker's and beat's output goes to the terminal and to var/log/, where readiness is read.
# One worker takes every queue (decisions, scheduler, mail, celery) and runs the outbox relay.
logs="${PORTAL_VAR_DIR:-var}/log"
mkdir -p "$logs"
: >"$logs/worker.log"
"$PY" -m celery -A portal worker --pool=solo --loglevel=INFO --hostname="embedded@%h" \
    > >(tee "$logs/worker.log") 2>&1 &
pids+=($!)
"$PY" -m celery -A portal beat --loglevel=INFO > >(tee "$logs/beat.log") 2>&1 &
pids+=($!)
"$PY" manage.py runserver --noreload "$HOST:$PORT" &
pids+=($!)

# The box comes last, once the web server answers and the worker is ready, so that it does not
# scroll away behind their start-up banners.
probe_host="$HOST"
case "$probe_host" in 0.0.0.0 | "::" | "[::]") probe_host=127.0.0.1 ;; esac
for _ in $(seq 1 240); do
    if "$PY" - "$probe_host" "$PORT" <<'PROBE' 2>/dev/null && grep -q " ready." "$logs/worker.log"; then
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/healthz", timeout=1)
PROBE
        break
    fi
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a process of the portal stopped; see above" >&2; exit 1; }
    done
    sleep 0.5
done

# The worker's first tasks (the demo's mails on a first start) print below; wait until its log
# has been quiet for a second, at most 15 s, so that the box is not pushed up by them.
last=-1
for _ in $(seq 1 15); do
    size=$(wc -c <"$logs/worker.log")
    [ "$size" = "$last" ] && break
    last=$size
    sleep 1
done

base="http://$HOST:$PORT"
cat <<INFO

  ┌──────────────────────────────────────────────────────────────────────
  │ The portal runs at $base/
  │   Applicants  $base/   (sign in: founder@fjordai.example / fjord-applicant-demo)
  │   Operators   $base/admin/   (operator@narvik.example / narvik-operator-demo)
  │   API root    $base/api/v1/
  │   API docs    $base/api/docs/   (ReDoc: $base/api/redoc/)
  │   Health      $base/healthz  $base/readyz
  │ Listening elsewhere (HOST=0.0.0.0)? Add the host names people use to
  │ DJANGO_ALLOWED_HOSTS. Ctrl-C stops everything.
  └──────────────────────────────────────────────────────────────────────

INFO

wait
