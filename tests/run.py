"""Run the test suite against the services this machine has (the README's `make test`).

PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379 and RabbitMQ at 127.0.0.1:5672 are used
when they answer, unless DATABASE_URL, PORTAL_TEST_BROKER_URL or PORTAL_TEST_AMQP_URL say
otherwise; without them the suite runs on SQLite and the tests that need a real service skip
with the reason. Under CI (CI=true) those tests
fail instead of skipping.
"""

from __future__ import annotations

import os
import socket
import sys

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/portal"
REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _postgres_answers(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=2
        ):
            return True
    except Exception:
        return False


def _port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    env = os.environ.copy()
    env.setdefault("DJANGO_SECRET_KEY", "test-only-not-secret")
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    if "DATABASE_URL" not in env and _postgres_answers(POSTGRES_URL):
        env["DATABASE_URL"] = POSTGRES_URL
    # A database of this run's own, so that runs side by side on one server never collide.
    if env.get("DATABASE_URL", "").startswith(("postgres", "psql")):
        env.setdefault("DATABASE_TEST_NAME", f"test_portal_{os.getpid()}")
    if "PORTAL_TEST_BROKER_URL" not in env and _port_answers(6379):
        env["PORTAL_TEST_BROKER_URL"] = REDIS_URL
    if "PORTAL_TEST_AMQP_URL" not in env and _port_answers(5672):
        env["PORTAL_TEST_AMQP_URL"] = AMQP_URL
    print(
        "tests: database",
        env.get("DATABASE_URL", "SQLite (embedded)"),
        "| broker",
        env.get("PORTAL_TEST_BROKER_URL", "none (tests that need one skip)"),
        "| RabbitMQ",
        env.get("PORTAL_TEST_AMQP_URL", "none (tests that need it skip)"),
        flush=True,
    )
    args = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    os.execve(sys.executable, args, env)


if __name__ == "__main__":
    main()
