"""The accounts services lock the rows they change, `FOR UPDATE`, before they write them, and
several real processes racing on PostgreSQL leave the invariants standing. PostgreSQL only:
SQLite has no row locks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import (
    Invitation,
    Membership,
    MembershipRole,
    Organization,
    User,
)
from audit.models import AuditEvent
from tests.factories import MembershipFactory, OperatorFactory, OrganizationFactory, UserFactory
from tests.races import race

pytestmark = pytest.mark.usefixtures("postgres")

ORGANIZATION = '"accounts_organization"'
MEMBERSHIP = '"accounts_membership"'
TOKEN = '"accounts_accesstoken"'
ROUNDS = 5


def _statements(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [query["sql"] for query in queries.captured_queries]


def _first_lock(statements: list[str], table: str) -> int:
    return next(
        index
        for index, sql in enumerate(statements)
        if sql.startswith("SELECT") and f"FROM {table}" in sql and sql.endswith("FOR UPDATE")
    )


def _writes(statements: list[str], prefix: str) -> list[int]:
    return [index for index, sql in enumerate(statements) if sql.startswith(prefix)]


# --- FOR UPDATE before the write ---------------------------------------------------------------


@pytest.mark.django_db
def test_verifying_locks_the_organization_before_it_writes_it(operator, unverified):
    # when
    statements = _statements(
        lambda: services.organization_verify(organization=unverified, actor=operator)
    )

    # then
    writes = _writes(statements, f"UPDATE {ORGANIZATION}")
    assert len(writes) == 1
    assert _first_lock(statements, ORGANIZATION) < writes[0]


@pytest.mark.django_db
def test_removing_a_member_locks_the_admins_before_it_deletes(org_admin, member):
    # given
    membership = Membership.objects.get(user=member)

    # when
    statements = _statements(
        lambda: services.membership_remove(membership=membership, actor=org_admin)
    )

    # then
    lock = _first_lock(statements, MEMBERSHIP)
    assert f"{MEMBERSHIP}.\"role\" = 'admin'" in statements[lock]
    deletes = _writes(statements, f"DELETE FROM {MEMBERSHIP}")
    assert len(deletes) == 1
    assert lock < deletes[0]


@pytest.mark.django_db
def test_revoking_locks_the_token_before_it_writes_it(member):
    # given
    token = services.token_create(user=member, name="laptop").token

    # when
    statements = _statements(lambda: services.token_revoke(token=token, actor=member))

    # then
    writes = _writes(statements, f"UPDATE {TOKEN}")
    assert len(writes) == 1
    assert _first_lock(statements, TOKEN) < writes[0]


# --- races between real processes --------------------------------------------------------------


def _remove(membership_id: Any, actor_id: Any) -> Callable[[], object]:
    def run() -> object:
        membership = Membership.objects.select_related("user").get(pk=membership_id)
        return services.membership_remove(
            membership=membership, actor=User.objects.get(pk=actor_id)
        )

    return run


@pytest.mark.django_db(transaction=True)
def test_two_admins_removing_each_other_at_once_leave_one_admin():
    # given: organizations of two admins each
    pairs = []
    for round_number in range(ROUNDS):
        organization = OrganizationFactory(name=f"Race {round_number}")
        first, second = (
            MembershipFactory(organization=organization, role=MembershipRole.ADMIN)
            for _ in range(2)
        )
        pairs.append((organization, first, second))

    # when: in each, both admins remove the other at the same moment
    runs = {}
    for organization, first, second in pairs:
        runs[f"{organization.pk}:first"] = _remove(first.pk, second.user_id)
        runs[f"{organization.pk}:second"] = _remove(second.pk, first.user_id)
    outcomes = race(runs)

    # then
    for organization, _, _ in pairs:
        mine = sorted(v for k, v in outcomes.items() if k.startswith(str(organization.pk)))
        # the second, once the first committed, is no admin any more: it removes no one
        assert mine == ["NotVisible", "ok"]
        assert organization.memberships.filter(role=MembershipRole.ADMIN).count() == 1
    assert AuditEvent.objects.filter(verb="membership.remove").count() == ROUNDS


def _verify(organization_id: Any, actor_id: Any) -> Callable[[], object]:
    def run() -> object:
        return services.organization_verify(
            organization=Organization.objects.get(pk=organization_id),
            actor=User.objects.get(pk=actor_id),
        )

    return run


@pytest.mark.django_db(transaction=True)
def test_operators_verifying_at_once_record_one_verification():
    # given
    organization = OrganizationFactory(name="Contested AS", verified_at=None)
    operators = [OperatorFactory() for _ in range(4)]

    # when
    outcomes = race(
        {str(operator.pk): _verify(organization.pk, operator.pk) for operator in operators}
    )

    # then
    assert sorted(outcomes.values()) == ["ok"] * 4
    organization.refresh_from_db()
    assert organization.verified_by in operators
    events = AuditEvent.objects.filter(verb="organization.verify")
    assert list(events.values_list("actor", flat=True)) == [organization.verified_by_id]


def _invite(organization_id: Any, email: str, actor_id: Any) -> Callable[[], object]:
    def run() -> object:
        return services.invitation_create(
            organization=Organization.objects.get(pk=organization_id),
            email=email,
            role="member",
            actor=User.objects.get(pk=actor_id),
        )

    return run


@pytest.mark.django_db(transaction=True)
def test_admins_inviting_the_same_email_at_once_make_one_invitation():
    # given
    organization = OrganizationFactory(name="Contested AS")
    admins = [
        MembershipFactory(organization=organization, role=MembershipRole.ADMIN).user
        for _ in range(4)
    ]

    # when
    outcomes = race(
        {
            str(admin.pk): _invite(organization.pk, "newcomer@example.org", admin.pk)
            for admin in admins
        }
    )

    # then
    assert sorted(outcomes.values()) == ["AlreadyInvited"] * 3 + ["ok"]
    assert Invitation.objects.filter(email="newcomer@example.org").count() == 1


def _accept(invitation_id: Any, user_id: Any) -> Callable[[], object]:
    def run() -> object:
        return services.invitation_accept(
            invitation=Invitation.objects.get(pk=invitation_id),
            actor=User.objects.get(pk=user_id),
        )

    return run


@pytest.mark.django_db(transaction=True)
def test_an_invitation_accepted_several_times_at_once_makes_one_membership():
    # given
    organization = OrganizationFactory(name="Contested AS")
    admin = MembershipFactory(organization=organization, role=MembershipRole.ADMIN).user
    newcomer = UserFactory(email="newcomer@example.org")
    invitation = services.invitation_create(
        organization=organization, email=newcomer.email, role="member", actor=admin
    )

    # when: the invitee's four tabs accept at the same moment
    outcomes = race({str(n): _accept(invitation.pk, newcomer.pk) for n in range(4)})

    # then
    assert sorted(outcomes.values()) == ["InvalidTransition"] * 3 + ["ok"]
    assert Membership.objects.filter(user=newcomer).count() == 1
    assert AuditEvent.objects.filter(verb="membership.add").count() == 1
