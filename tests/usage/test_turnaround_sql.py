"""The turnaround report aggregated in SQL answers as the Python reading of every decision."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocations.models import Application, ApplicationStatus, Program
from allocations.selectors import reports
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PoolFactory,
    ProgramFactory,
    UserFactory,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL report is PostgreSQL's"),
]


def _decided(
    program: Program,
    hours: float,
    status: str = ApplicationStatus.APPROVED,
    *,
    days_ago: int = 0,
) -> None:
    organization = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=organization)
    now = timezone.now() - timedelta(days=days_ago)
    Application.objects.create(
        organization=organization, program=program, pool=PoolFactory(), applicant=user,
        title="Decided", gpu_hours=10, start_date=now.date(), end_date=now.date(),
        status=status, submitted_at=now - timedelta(hours=hours), decided_at=now,
    )  # fmt: skip


def _window(days: int = 1) -> dict[str, datetime]:
    now = timezone.now()
    return {"since": now - timedelta(days=days), "until": now + timedelta(minutes=1)}


def test_the_sql_report_answers_as_reading_every_decision_would():
    # given: two programs with odd and even counts of decisions, one at the target exactly
    quick, slow = ProgramFactory(turnaround_days=1), ProgramFactory(turnaround_days=3)
    ProgramFactory()  # none decided
    for hours in (1, 5.5, 24, 30, 71.25):
        _decided(quick, hours)
    for hours in (2, 80, 3.75, 100):
        _decided(slow, hours, ApplicationStatus.REJECTED)
    _decided(slow, 1, ApplicationStatus.IN_REVIEW)  # not final: not counted
    programs = list(Program.objects.all())

    # when
    in_sql = reports._turnaround_in_sql(**_window())
    in_python = reports._turnaround_in_python(programs, **_window())

    # then
    assert in_sql.keys() == in_python.keys() == {quick.pk, slow.pk}
    for program_id, (decided, median, p90, within) in in_python.items():
        assert in_sql[program_id][0] == decided
        assert in_sql[program_id][1] == pytest.approx(median)
        assert in_sql[program_id][2] == pytest.approx(p90)
        assert in_sql[program_id][3] == within


def test_the_sql_and_python_readings_count_the_same_window():
    # given: decisions today, 10 days ago and 100 days ago
    program = ProgramFactory(turnaround_days=2)
    for days_ago, hours in ((0, 1), (10, 50), (100, 70)):
        _decided(program, hours, days_ago=days_ago)

    # when: the last 30 days
    in_sql = reports._turnaround_in_sql(**_window(30))
    in_python = reports._turnaround_in_python([program], **_window(30))

    # then: the decision of 100 days ago is outside
    assert in_sql[program.pk][0] == in_python[program.pk][0] == 2
    assert in_sql[program.pk][3] == in_python[program.pk][3] == 1


def test_the_window_is_read_from_the_decided_index():
    # given
    program = ProgramFactory()
    _decided(program, 5)

    # when
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN " + reports.TURNAROUND_SQL,
            [ApplicationStatus.APPROVED, ApplicationStatus.REJECTED, *_window().values()],
        )
        plan = "\n".join(line for (line,) in cursor.fetchall())

    # then
    assert "application_decided" in plan


def test_the_report_costs_two_queries_whatever_the_history():
    # given
    program = ProgramFactory()
    for hours in range(1, 30):
        _decided(program, hours)

    # when
    with CaptureQueriesContext(connection) as queries:
        rows = reports.turnaround_report()

    # then
    assert len(queries.captured_queries) == 2
    assert [row["decided"] for row in rows if row["program"] == program.slug] == [29]
