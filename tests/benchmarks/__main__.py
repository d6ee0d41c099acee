"""Every benchmark in one go, one table at the end.

    make bench                       # all of them
    make bench ONLY=usage,lists      # some (names as registered)
    .venv/bin/python -m tests.benchmarks --list

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/portal) and, for the
decisions, a broker (PORTAL_TEST_BROKER_URL or CELERY_BROKER_URL, default
redis://127.0.0.1:6379/15). It makes a database of its own (portal_bench_<pid>), empties it
between benchmarks and drops it at the end; it prints the table and writes it to var/bench.md.
Each figure comes with its floor measured in the same run and their ratio. Benchmarks print:
nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import os
import platform
import pstats
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from tests.benchmarks.framework import MODULES, REGISTRY, Bench, Row, table

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"


def configure() -> None:
    """Environment for the portal's settings, read once at Django's setup."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["DATABASE_TEST_NAME"] = f"portal_bench_{os.getpid()}"
    os.environ["CELERY_BROKER_URL"] = (
        os.environ.get("PORTAL_TEST_BROKER_URL")
        or os.environ.get("CELERY_BROKER_URL")
        or DEFAULT_BROKER_URL
    )
    # The rate limits stay in the request path (their cost is part of every request), at
    # rates a benchmark does not reach.
    for name in ("PORTAL_RATE_LIMIT", "PORTAL_ADDRESS_RATE_LIMIT", "PORTAL_USAGE_RATE_LIMIT"):
        os.environ[name] = "100000000/minute"


def empty_database() -> None:
    """Every table emptied (the schema and the migrations' rows of django_migrations stay)."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=os.environ.get("ONLY", ""), help="names, by commas")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "0") or 0))
    parser.add_argument("--quick", action="store_true", help="smaller data sets, to try it out")
    parser.add_argument("--list", action="store_true", help="the benchmarks' names, then exit")
    parser.add_argument("--output", default="var/bench.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print where each benchmark spent its time (and keep var/bench-NAME.prof)",
    )
    options = parser.parse_args()
    configure()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from portal.celery import app as celery_app
    from tests.workers.harness import publishing_to

    for module in MODULES:
        importlib.import_module(module)
    chosen = sorted(REGISTRY.values(), key=lambda registered: registered.order)
    if options.list:
        for registered in chosen:
            print(registered.name)
        return
    if options.only:
        names = {name.strip() for name in options.only.split(",") if name.strip()}
        unknown = names - REGISTRY.keys()
        if unknown:
            sys.exit(f"No benchmark named {', '.join(sorted(unknown))}; see --list.")
        chosen = [registered for registered in chosen if registered.name in names]
    if connection.vendor != "postgresql":
        sys.exit("The benchmarks need PostgreSQL: set DATABASE_URL=postgres://…")

    setup_test_environment(debug=False)
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
    bench = Bench(quick=options.quick)
    if options.runs:
        bench.runs = options.runs
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    rows: list[tuple[str, Row]] = []
    failures: list[str] = []
    began = time.perf_counter()
    try:
        for registered in chosen:
            print(f"-- {registered.name}", flush=True)
            started = time.perf_counter()
            # Tasks queued by a benchmark that needs no broker go nowhere.
            quiet = (
                contextlib.nullcontext()
                if "broker" in registered.needs
                else publishing_to(celery_app, "memory://")
            )
            profile = cProfile.Profile() if options.profile else None
            try:
                with quiet:
                    results = iter(registered.function(bench))
                    while True:
                        if profile:
                            profile.enable()
                        try:
                            row = next(results)
                        except StopIteration:
                            break
                        finally:
                            if profile:
                                profile.disable()
                        rows.append((registered.name, row))
                        print(f"   {row.what}: {row.figure:,.4g} {row.unit}", flush=True)
            except Exception:
                failures.append(registered.name)
                traceback.print_exc()
            finally:
                connection.close()
                empty_database()
            print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
            if profile:
                profile.dump_stats(f"var/bench-{registered.name}.prof")
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"`make bench`, {stamp}, {platform.node()} ({os.cpu_count()} cores), "
        f"{time.perf_counter() - began:.0f} s in all"
    )
    text = f"{header}\n\n{table(rows)}\n"
    print()
    print(text)
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    if failures:
        sys.exit(f"benchmarks that did not finish: {', '.join(failures)}")


if __name__ == "__main__":
    main()
