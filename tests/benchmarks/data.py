"""Data sets for the benchmarks, made in SQL (generate_series), never through the API: a
million allocations take seconds, not hours.

Rows are cloned from a template row made through the models, so that every column the models
add later is filled the way the model fills it; only the ids, titles and times vary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection, models


def _columns(model: type[models.Model]) -> list[str]:
    return [field.column for field in model._meta.concrete_fields]


def clone_rows(
    model: type[models.Model],
    *,
    template_id: Any,
    start: int,
    count: int,
    overrides: dict[str, str],
) -> None:
    """Insert `count` copies of the template row, numbered g = start + 1 … start + count;
    `overrides` maps a column to an SQL expression of `g` and of the template `t`."""
    table = model._meta.db_table
    columns = _columns(model)
    expressions = [overrides.get(column, f't."{column}"') for column in columns]
    quoted = ", ".join(f'"{column}"' for column in columns)
    with connection.cursor() as cursor, _without_triggers(cursor):
        cursor.execute(
            f'INSERT INTO "{table}" ({quoted}) SELECT {", ".join(expressions)} '
            f'FROM "{table}" t, generate_series(%s::integer, %s::integer) g WHERE t."id" = %s',
            [start + 1, start + count, template_id],
        )


@contextlib.contextmanager
def _without_triggers(cursor: Any) -> Iterator[None]:
    """The foreign keys' triggers off while clones of valid rows are inserted, where the
    role may (a superuser's, as the benchmarks' usually is): checking a million rows' four
    foreign keys one by one at commit is most of a million allocations' load time."""
    cursor.execute("SELECT current_setting('is_superuser') = 'on'")
    (superuser,) = cursor.fetchone()
    if not superuser:
        yield
        return
    cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        cursor.execute("RESET session_replication_role")


def uuid_of(kind: str) -> str:
    """A deterministic UUID of the row number g, per kind of row."""
    return f"md5('{kind}-' || g::text)::uuid"


def grow_allocations(*, application: Any, allocation: Any, start: int, count: int) -> None:
    """`count` more decided applications, each with its allocation, cloned from a template
    pair; the n-th is created n seconds before the template, so lists ordered by creation
    find the newest first, and decided 2n hours before it, so that the turnaround report's
    window of days holds as many decisions at any size of the history."""
    from allocations.models import Allocation, Application

    clone_rows(
        Application,
        template_id=application.pk,
        start=start,
        count=count,
        overrides={
            "id": uuid_of("application"),
            "title": "'Benchmark application ' || g::text",
            "created_at": "t.created_at - g * interval '1 second'",
            "updated_at": "t.updated_at - g * interval '1 second'",
            # One decision every two hours (about 4,400 a year), each taking 30 to 126 hours:
            # a million is a long history, and a window of days holds as many at any size.
            "submitted_at": (
                "t.submitted_at - g * interval '2 hours' - mod(g, 97) * interval '1 hour'"
            ),
            "decided_at": "t.decided_at - g * interval '2 hours'",
        },
    )
    clone_rows(
        Allocation,
        template_id=allocation.pk,
        start=start,
        count=count,
        overrides={
            "id": uuid_of("allocation"),
            "application_id": uuid_of("application"),
            "created_at": "t.created_at - g * interval '1 second'",
            "used_gpu_seconds": "mod(g, 1000) * 3600",
        },
    )
    analyze(Application, Allocation)


def analyze(*models_: type[models.Model]) -> None:
    """VACUUM ANALYZE, as autovacuum would after a bulk load, and a checkpoint; done now, so
    that neither runs (and takes a core) in the middle of a measurement."""
    with connection.cursor() as cursor:
        for model in models_:
            cursor.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')
        # And the load's dirty pages written out now, where the role may, rather than by a
        # checkpoint in the middle of the measurements that follow.
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
        (superuser,) = cursor.fetchone()
        if superuser:
            cursor.execute("CHECKPOINT")
