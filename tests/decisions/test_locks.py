"""The services lock the ledger rows they change, `FOR UPDATE` and in the documented order
(quota, pool-days in day order, site-days in day order, the application), before they
write them. PostgreSQL only: SQLite has no row locks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations.models import Allocation
from allocations.services import allocations as allocation_services
from allocations.services import applications as services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres")]

POOL_DAY = '"allocations_poolday"'
SITE_DAY = '"allocations_siteday"'
PROGRAM_DAY = '"allocations_programday"'
QUOTA = '"allocations_quotausage"'
APPLICATION = '"allocations_application"'


def _statements(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [query["sql"] for query in queries.captured_queries]


def _locks(statements: list[str], table: str) -> list[int]:
    return [
        index
        for index, sql in enumerate(statements)
        if sql.startswith("SELECT") and f"FROM {table}" in sql and sql.endswith("FOR UPDATE")
    ]


def _updates(statements: list[str], table: str) -> list[int]:
    return [index for index, sql in enumerate(statements) if sql.startswith(f"UPDATE {table}")]


def _assert_locked_in_order_before_written(statements: list[str]) -> None:
    quota, pool_days, site_days, application = (
        _locks(statements, table) for table in (QUOTA, POOL_DAY, SITE_DAY, APPLICATION)
    )
    # each lock is taken once, in the documented order
    assert [len(quota), len(pool_days), len(site_days), len(application)] == [1, 1, 1, 1]
    assert quota[0] < pool_days[0] < site_days[0] < application[0]
    # in day order, so that two workers on overlapping windows cannot deadlock
    assert statements[pool_days[0]].endswith('ORDER BY "allocations_poolday"."day" ASC FOR UPDATE')
    assert statements[site_days[0]].endswith('ORDER BY "allocations_siteday"."day" ASC FOR UPDATE')
    # every write of a ledger row comes after the locks of the window
    writes = [*_updates(statements, POOL_DAY), *_updates(statements, SITE_DAY)]
    writes += _updates(statements, PROGRAM_DAY)
    assert writes
    assert min(writes) > application[0]


def test_a_decision_locks_the_pool_days_before_it_writes_them(draft, founder):
    # given
    submitted = services.application_submit(application=draft(), actor=founder)

    # when
    statements = _statements(
        lambda: services.application_decide(application_id=submitted.pk, submission=1)
    )

    # then
    _assert_locked_in_order_before_written(statements)
    pool_day_lock = _locks(statements, POOL_DAY)[0]
    assert _updates(statements, POOL_DAY)
    assert all(index > pool_day_lock for index in _updates(statements, POOL_DAY))
    # the quota is written under its own lock too
    assert min(_updates(statements, QUOTA)) > _locks(statements, QUOTA)[0]


def test_a_hold_is_locked_before_it_is_taken(draft, founder):
    # given
    submitted = services.application_submit(application=draft(gpu_hours=12_000), actor=founder)

    # when
    statements = _statements(
        lambda: services.application_decide(application_id=submitted.pk, submission=1)
    )

    # then
    _assert_locked_in_order_before_written(statements)


def test_an_approval_locks_the_held_days_before_it_commits_them(draft, decide, reviewer):
    # given
    held = decide(draft(gpu_hours=12_000))

    # when
    statements = _statements(
        lambda: services.application_approve(application=held, actor=reviewer, note="ok")
    )

    # then
    _assert_locked_in_order_before_written(statements)


def test_a_withdrawal_locks_the_held_days_before_it_releases_them(draft, decide, founder):
    # given
    held = decide(draft(gpu_hours=12_000))

    # when
    statements = _statements(lambda: services.application_withdraw(application=held, actor=founder))

    # then
    _assert_locked_in_order_before_written(statements)


def test_a_release_locks_the_days_before_it_gives_them_back(draft, decide, founder):
    # given
    allocation = Allocation.objects.get(application=decide(draft()))

    # when
    statements = _statements(
        lambda: allocation_services.allocation_release(allocation=allocation, actor=founder)
    )

    # then
    quota, pool_days, site_days = (
        _locks(statements, table) for table in (QUOTA, POOL_DAY, SITE_DAY)
    )
    allocation_lock = [
        index
        for index, sql in enumerate(statements)
        if 'FROM "allocations_allocation"' in sql and sql.endswith("FOR UPDATE")
    ]
    assert quota[0] < pool_days[0] < site_days[0] < allocation_lock[0]
    writes = [*_updates(statements, POOL_DAY), *_updates(statements, SITE_DAY)]
    assert writes
    assert min(writes) > site_days[0]
