"""The turnaround report aggregated in SQL answers as the Python reading of every decision."""

from __future__ import annotations

from datetime import timedelta

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


def _decided(program: Program, hours: float, status: str = ApplicationStatus.APPROVED) -> None:
    organization = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=organization)
    now = timezone.now()
    Application.objects.create(
        organization=organization, program=program, pool=PoolFactory(), applicant=user,
        title="Decided", gpu_hours=10, start_date=now.date(), end_date=now.date(),
        status=status, submitted_at=now - timedelta(hours=hours), decided_at=now,
    )  # fmt: skip


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
    in_sql = reports._turnaround_in_sql()
    in_python = reports._turnaround_in_python(programs)

    # then
    assert in_sql.keys() == in_python.keys() == {quick.pk, slow.pk}
    for program_id, (decided, median, p90, within) in in_python.items():
        assert in_sql[program_id][0] == decided
        assert in_sql[program_id][1] == pytest.approx(median)
        assert in_sql[program_id][2] == pytest.approx(p90)
        assert in_sql[program_id][3] == within


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
