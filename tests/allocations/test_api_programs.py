"""The programs API: users read the open programs and their rules, operators read all and
write them; the nominal shares of all programs never sum past 1."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from allocations.models import Program
from tests.allocations.bodies import program_body
from tests.bodies import (
    INVALID_PAGE,
    NOT_AN_OPERATOR,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    REQUIRED,
    audit_rows,
    audit_when,
    invalid,
    page,
)
from tests.factories import PoolFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

PROGRAMS = "/api/v1/programs/"


def _url(program: Program) -> str:
    return f"{PROGRAMS}{program.pk}/"


def _new_program(**overrides: Any) -> dict[str, Any]:
    """What an operator posts for a Sigma2-like track."""
    return {
        "name": "Sigma2 AI",
        "slug": "sigma2-ai",
        "description": "Norwegian academic research.",
        "priority": 10,
        "eligible_countries": ["NO"],
        "eligible_kinds": ["university", "research_institute"],
        "min_gpu_hours": 100,
        "max_gpu_hours": 50_000,
        "max_duration_days": 180,
        "auto_approve_max_gpu_hours": 5_000,
        "org_cap_gpu_hours": 200_000,
        "nominal_share": "0.3",
        "lending_limit": "0.5",
        "borrowing_limit": "0.1",
        "turnaround_days": 10,
        **overrides,
    }


def _shares_exceeded(taken: str, asked: str) -> dict[str, str]:
    return {
        "code": "shares_exceeded",
        "message": f"Other programs hold {taken} of the pools; {asked} more would pass 1.",
    }


@pytest.fixture
def open_and_closed(db: None) -> tuple[Program, Program]:
    """An open program and a closed one, holding 0.5 of the pools between them."""
    open_program = ProgramFactory(
        name="AI Factory", slug="ai-factory", priority=10, nominal_share=Decimal("0.3000")
    )
    closed = ProgramFactory(
        name="Pilot", slug="pilot", priority=5, is_open=False, nominal_share=Decimal("0.2000")
    )
    return open_program, closed


# --- who may do what -----------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any] | None]

# Built from the open and the closed program.
READS: dict[str, Callable[[Program, Program], Request]] = {
    "list": lambda open_program, closed: ("get", PROGRAMS, None),
    "read": lambda open_program, closed: ("get", _url(open_program), None),
}
WRITES: dict[str, Callable[[Program, Program], Request]] = {
    "create": lambda open_program, closed: ("post", PROGRAMS, _new_program()),
    "change an open one": lambda open_program, closed: (
        "patch",
        _url(open_program),
        {"priority": 1},
    ),
    "change a closed one": lambda open_program, closed: ("patch", _url(closed), {"is_open": True}),
    "delete": lambda open_program, closed: ("delete", _url(open_program), None),
}


def _send(client: Any, request: Request) -> Any:
    method, url, data = request
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, data, format="json")


@pytest.mark.parametrize("who", ["member", "outsider"])
@pytest.mark.parametrize("name", WRITES)
def test_a_user_who_is_not_an_operator_may_not_write_programs(
    name, who, open_and_closed, client_for, request, state
):
    # given
    user = request.getfixturevalue(who)
    before = state()

    # when
    response = _send(client_for(user), WRITES[name](*open_and_closed))

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_OPERATOR
    assert state() == before


@pytest.mark.parametrize("name", [*READS, *WRITES])
def test_nobody_signed_out_reads_or_writes_programs(name, open_and_closed, api, state):
    # given
    before = state()

    # when
    response = _send(api, {**READS, **WRITES}[name](*open_and_closed))

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert state() == before


# --- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["member", "outsider"])
def test_a_user_lists_only_the_open_programs_by_priority_then_name(
    who, open_and_closed, client_for, request
):
    # given
    user = request.getfixturevalue(who)
    open_program, _ = open_and_closed
    commercial = ProgramFactory(name="Commercial", priority=30, nominal_share=Decimal("0.1"))
    airr = ProgramFactory(name="AIRR", priority=10, nominal_share=Decimal("0.1"))
    airr.reviewers.set([UserFactory()])

    # when
    response = client_for(user).get(PROGRAMS)

    # then
    assert response.status_code == 200
    assert response.json() == page(
        [program_body(open_program), program_body(airr), program_body(commercial)]
    )


def test_an_operator_lists_every_program_closed_ones_included(
    open_and_closed, client_for, operator
):
    # given
    open_program, closed = open_and_closed

    # when
    response = client_for(operator).get(PROGRAMS)

    # then
    assert response.status_code == 200
    assert response.json() == page([program_body(closed), program_body(open_program)])


def test_a_page_of_programs_past_the_last_is_not_found(open_and_closed, client_for, member):
    # when
    response = client_for(member).get(PROGRAMS, {"page": 2})

    # then
    assert response.status_code == 404
    assert response.json() == INVALID_PAGE


@pytest.mark.parametrize("who", ["member", "operator"])
@pytest.mark.parametrize("rows", [1, 5])
def test_the_program_list_costs_the_same_queries_for_one_program_and_for_five(
    who, rows, client_for, request, django_assert_num_queries
):
    # given: every program has reviewers, read with one query for the whole page
    user = request.getfixturevalue(who)
    for _ in range(rows):
        program = ProgramFactory(nominal_share=Decimal("0.1"))
        program.reviewers.set([UserFactory(), UserFactory()])
    client = client_for(user)

    # when: the count, the page, the page's reviewers
    with django_assert_num_queries(3):
        response = client.get(PROGRAMS)

    # then
    assert response.json()["count"] == rows
    assert all(len(row["reviewers"]) == 2 for row in response.json()["results"])


def test_a_member_reads_an_open_program(open_and_closed, client_for, member):
    # given
    open_program, _ = open_and_closed

    # when
    response = client_for(member).get(_url(open_program))

    # then
    assert response.status_code == 200
    assert response.json() == program_body(open_program)


def test_a_closed_program_is_not_found_for_a_member(open_and_closed, client_for, member):
    # given
    _, closed = open_and_closed

    # when
    response = client_for(member).get(_url(closed))

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_reads_a_closed_program(open_and_closed, client_for, operator):
    # given
    _, closed = open_and_closed

    # when
    response = client_for(operator).get(_url(closed))

    # then
    assert response.status_code == 200
    assert response.json() == program_body(closed)


# --- creating -----------------------------------------------------------------------------


def test_an_operator_creates_a_program_with_reviewers_and_both_are_audited(
    open_and_closed, client_for, operator
):
    # given: 0.5 taken, 0.3 asked
    reviewer = UserFactory(email="reviewer@sigma2.example")

    # when
    response = client_for(operator).post(
        PROGRAMS, _new_program(reviewers=[str(reviewer.pk)]), format="json"
    )

    # then
    program = Program.objects.get(slug="sigma2-ai")
    assert response.status_code == 201
    assert response.json() == program_body(program)
    assert list(program.reviewers.all()) == [reviewer]
    assert audit_rows(target_id=program.pk) == [
        {
            "verb": "program.create",
            "actor": operator.pk,
            "target": ("program", program.pk),
            "before": {},
            "after": {
                "name": "Sigma2 AI",
                "slug": "sigma2-ai",
                "description": "Norwegian academic research.",
                "priority": 10,
                "is_open": True,
                "eligible_countries": ["NO"],
                "eligible_kinds": ["university", "research_institute"],
                "verification_required": True,
                "min_gpu_hours": 100,
                "max_gpu_hours": 50_000,
                "max_duration_days": 180,
                "auto_approve_max_gpu_hours": 5_000,
                "org_cap_gpu_hours": 200_000,
                "nominal_share": "0.3000",
                "lending_limit": "0.5000",
                "borrowing_limit": "0.1000",
                "turnaround_days": 10,
                "created_at": audit_when(program.created_at),
            },
        },
        {
            "verb": "program.reviewers",
            "actor": operator.pk,
            "target": ("program", program.pk),
            "before": {"reviewers": []},
            "after": {"reviewers": [str(reviewer.pk)]},
        },
    ]


def test_a_program_taking_the_last_of_the_shares_exactly_is_created(
    open_and_closed, client_for, operator
):
    # when: 0.5 taken, 0.5 asked
    response = client_for(operator).post(PROGRAMS, _new_program(nominal_share="0.5"), format="json")

    # then
    assert response.status_code == 201
    assert response.json()["nominal_share"] == "0.5000"
    assert sum(Program.objects.values_list("nominal_share", flat=True)) == Decimal(1)


def test_a_program_created_without_a_minimum_takes_the_default_one(client_for, operator):
    # given: a request that leaves the minimum out
    sent = _new_program()
    del sent["min_gpu_hours"]

    # when
    response = client_for(operator).post(PROGRAMS, sent, format="json")

    # then
    assert response.status_code == 201
    created = Program.objects.get(pk=response.json()["id"])
    assert response.json()["min_gpu_hours"] == created.min_gpu_hours
    assert created.min_gpu_hours <= created.max_gpu_hours


def test_a_program_whose_share_would_pass_one_is_refused_and_nothing_is_written(
    open_and_closed, client_for, operator, state
):
    # given: 0.5 taken, closed programs included
    before = state()

    # when
    response = client_for(operator).post(
        PROGRAMS, _new_program(nominal_share="0.5001", reviewers=[str(operator.pk)]), format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == _shares_exceeded("0.5000", "0.5001")
    assert state() == before


@pytest.mark.parametrize(
    ("sent", "fields"),
    [
        (
            {"min_gpu_hours": 60_000, "auto_approve_max_gpu_hours": 70_000},
            {
                "min_gpu_hours": [("out_of_bounds", "The minimum is at most the maximum.")],
                "auto_approve_max_gpu_hours": [
                    ("out_of_bounds", "Auto-approval stays within the maximum.")
                ],
            },
        ),
        (
            {"nominal_share": "1.5", "lending_limit": "-0.1", "slug": "Sigma 2"},
            {
                "slug": [
                    (
                        "invalid",
                        'Enter a valid "slug" consisting of letters, numbers, '
                        "underscores or hyphens.",
                    )
                ],
                "nominal_share": [("max_value", "Ensure this value is less than or equal to 1.")],
                "lending_limit": [
                    ("min_value", "Ensure this value is greater than or equal to 0.")
                ],
            },
        ),
        (
            {"eligible_countries": ["NO", "XX"], "eligible_kinds": ["guild"]},
            {
                "eligible_countries.1": [("invalid_choice", '"XX" is not a valid choice.')],
                "eligible_kinds.0": [("invalid_choice", '"guild" is not a valid choice.')],
            },
        ),
    ],
    ids=["bounds", "shares and slug", "eligibility"],
)
def test_an_invalid_program_is_refused(sent, fields, client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).post(PROGRAMS, _new_program(**sent), format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert state() == before


def test_a_program_without_its_fields_is_refused(client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).post(PROGRAMS, {}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            name: [REQUIRED]
            for name in (
                "name",
                "slug",
                "priority",
                "max_gpu_hours",
                "max_duration_days",
                "org_cap_gpu_hours",
                "nominal_share",
                "lending_limit",
                "borrowing_limit",
                "turnaround_days",
            )
        }
    )
    assert state() == before


def test_a_program_with_an_unknown_reviewer_is_refused(client_for, operator, state):
    # given
    inactive = UserFactory(is_active=False)
    before = state()

    # when
    response = client_for(operator).post(
        PROGRAMS, _new_program(reviewers=[str(inactive.pk)]), format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"reviewers": [("does_not_exist", f'Invalid pk "{inactive.pk}" - object does not exist.')]}
    )
    assert state() == before


# --- changing -----------------------------------------------------------------------------


def test_an_operator_changes_a_programs_rules_and_reviewers_and_both_are_audited(
    open_and_closed, client_for, operator
):
    # given
    open_program, _ = open_and_closed
    reviewer = UserFactory(email="reviewer@aifactory.example")

    # when
    response = client_for(operator).patch(
        _url(open_program),
        {"max_gpu_hours": 60_000, "nominal_share": "0.8", "reviewers": [str(reviewer.pk)]},
        format="json",
    )

    # then: 0.8 beside the closed program's 0.2 is exactly 1
    assert response.status_code == 200
    assert response.json() == program_body(open_program)
    assert audit_rows() == [
        {
            "verb": "program.update",
            "actor": operator.pk,
            "target": ("program", open_program.pk),
            "before": {"max_gpu_hours": 50_000, "nominal_share": "0.3000"},
            "after": {"max_gpu_hours": 60_000, "nominal_share": "0.8000"},
        },
        {
            "verb": "program.reviewers",
            "actor": operator.pk,
            "target": ("program", open_program.pk),
            "before": {"reviewers": []},
            "after": {"reviewers": [str(reviewer.pk)]},
        },
    ]


def test_an_operator_reopens_a_closed_program(open_and_closed, client_for, operator):
    # given
    _, closed = open_and_closed

    # when
    response = client_for(operator).patch(_url(closed), {"is_open": True}, format="json")

    # then
    assert response.status_code == 200
    assert response.json() == program_body(closed)
    assert [row["verb"] for row in audit_rows()] == ["program.update"]


def test_a_share_raised_past_one_is_refused_and_changes_nothing(
    open_and_closed, client_for, operator, state
):
    # given: the closed program holds 0.2, so the open one may grow to 0.8 at most
    open_program, _ = open_and_closed
    before = state()

    # when
    response = client_for(operator).patch(
        _url(open_program),
        {"nominal_share": "0.8001", "priority": 1, "reviewers": [str(operator.pk)]},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == _shares_exceeded("0.2000", "0.8001")
    assert state() == before


def test_a_minimum_raised_past_the_stored_maximum_is_refused(
    open_and_closed, client_for, operator, state
):
    # given: the maximum is 50,000
    open_program, _ = open_and_closed
    before = state()

    # when
    response = client_for(operator).patch(
        _url(open_program), {"min_gpu_hours": 50_001}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"min_gpu_hours": [("out_of_bounds", "The minimum is at most the maximum.")]}
    )
    assert state() == before


def test_a_maximum_lowered_below_the_auto_approval_limit_is_refused(
    open_and_closed, client_for, operator, state
):
    # given: auto-approval up to 10,000
    open_program, _ = open_and_closed
    before = state()

    # when
    response = client_for(operator).patch(
        _url(open_program), {"max_gpu_hours": 9_999}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "auto_approve_max_gpu_hours": [
                ("out_of_bounds", "Auto-approval stays within the maximum.")
            ]
        }
    )
    assert state() == before


def test_an_unknown_program_is_not_found_for_an_operator(client_for, operator, outsider):
    # when
    response = client_for(operator).patch(
        f"{PROGRAMS}{outsider.pk}/", {"priority": 1}, format="json"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- deleting -----------------------------------------------------------------------------


def test_an_operator_deletes_a_closed_program_and_the_deletion_is_audited(
    open_and_closed, client_for, operator
):
    # given
    open_program, closed = open_and_closed

    # when
    response = client_for(operator).delete(_url(closed))

    # then
    assert response.status_code == 204
    assert response.content == b""
    assert list(Program.objects.all()) == [open_program]
    assert [(row["verb"], row["target"]) for row in audit_rows()] == [
        ("program.delete", ("program", closed.pk))
    ]


def test_deleting_a_program_with_an_application_is_in_use_and_deletes_nothing(
    open_and_closed, client_for, operator, state, application_in
):
    # given
    open_program, _ = open_and_closed
    application_in(pool=PoolFactory(), program=open_program)
    before = state()

    # when
    response = client_for(operator).delete(_url(open_program))

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "in_use",
        "message": "This program is still referenced and cannot be deleted.",
    }
    assert state() == before
