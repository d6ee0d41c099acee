"""The authorization matrix, generated from the URL configuration.

Every API route with an object id in its path (walked from `portal.urls`, so a new route
cannot escape) × every role × every method its view implements and one it does not (PUT),
with the expected answer of each cell declared once, in `MATRIX`. A route or a method that
is not in the table fails, and so does a cell that answers otherwise.

The expected answers follow the API contract: what a user may not see answers 404 (not 403,
which would tell that it exists); what they see but may not do answers 403; a request
without valid credentials, or with a revoked token, answers 401; a method the route does not
have answers 405 once the caller is authenticated. Each cell runs on the same objects, in a
savepoint rolled back after it, so no cell sees what another did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Membership, MembershipRole, TokenScope, User
from allocations.models import Allocation, Application, CapacityEvent, PowerPhase
from allocations.services import allocations as allocation_services
from tests.factories import (
    AcceleratorFactory,
    CapacityEventFactory,
    MembershipFactory,
    OperatorFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    SiteFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# The scheduler's service account exists where the accounts app can make one.
HAS_SERVICE_ACCOUNTS = hasattr(account_services, "scheduler_account_create")
ROLES = (
    "operator",  # staff, not a reviewer of the program
    "reviewer",  # of the application's program, not a member of its organization
    "org_admin",  # admin of the organization that owns the objects
    "member",  # plain member of that organization
    "other_admin",  # admin of another organization
    "service_account",  # the scheduler's, with its usage:write token
    "revoked",  # the organization admin's token, revoked
    "anonymous",  # no credentials
)
ACTIVE_ROLES = tuple(role for role in ROLES if role != "service_account" or HAS_SERVICE_ACCOUNTS)
NOT_ALLOWED_METHOD = "PUT"  # no route has it: edits are PATCH, state changes POST actions

# One row per route and method; the columns are ROLES, in order:
#  operator reviewer org_admin member other_admin service_account revoked anonymous
MATRIX: dict[tuple[str, str], str] = {
    # tokens: each user their own
    ("token-detail", "GET"): "404 404 200 404 404 403 401 401",
    ("token-detail", "DELETE"): "404 404 204 404 404 403 401 401",
    ("token-detail", "PUT"): "405 405 405 405 405 403 401 401",
    # scheduler service accounts: operators only, the whole family of routes (so 403 to
    # everyone else, as on its list); a scheduler's own token only posts usage
    ("scheduler-account-tokens", "POST"): "201 403 403 403 403 403 401 401",
    ("scheduler-account-tokens", "PUT"): "405 403 403 403 403 403 401 401",
    # organizations: members see theirs, operators all; its admins and operators manage
    # the members
    ("organization-detail", "GET"): "200 404 200 200 404 403 401 401",
    ("organization-detail", "PUT"): "405 405 405 405 405 403 401 401",
    ("organization-verify", "POST"): "200 404 403 403 404 403 401 401",
    ("organization-verify", "PUT"): "405 405 405 405 405 403 401 401",
    ("organization-members", "GET"): "200 404 200 403 404 403 401 401",
    ("organization-members", "PUT"): "405 405 405 405 405 403 401 401",
    ("organization-member", "DELETE"): "204 404 204 403 404 403 401 401",
    ("organization-member", "PUT"): "405 405 405 405 405 403 401 401",
    # invitations: the organization's admins (and operators) invite and revoke; only the
    # invitee (here the other organization's admin) sees, accepts or declines theirs
    ("organization-invitations", "GET"): "200 404 200 403 404 403 401 401",
    ("organization-invitations", "POST"): "201 404 201 403 404 403 401 401",
    ("organization-invitations", "PUT"): "405 405 405 405 405 403 401 401",
    ("organization-invitation-revoke", "POST"): "200 404 200 403 404 403 401 401",
    ("organization-invitation-revoke", "PUT"): "405 405 405 405 405 403 401 401",
    ("invitation-accept", "POST"): "404 404 404 404 200 403 401 401",
    ("invitation-accept", "PUT"): "405 405 405 405 405 403 401 401",
    ("invitation-decline", "POST"): "404 404 404 404 200 403 401 401",
    ("invitation-decline", "PUT"): "405 405 405 405 405 403 401 401",
    # inventory and programs: every user reads, operators write (any other method is a
    # write, refused to the others before the method is looked at: they see these objects)
    ("site-detail", "GET"): "200 200 200 200 200 403 401 401",
    ("site-detail", "PATCH"): "200 403 403 403 403 403 401 401",
    ("site-detail", "DELETE"): "204 403 403 403 403 403 401 401",
    ("site-detail", "PUT"): "405 403 403 403 403 403 401 401",
    ("power-phase-list", "GET"): "200 200 200 200 200 403 401 401",
    ("power-phase-list", "POST"): "201 403 403 403 403 403 401 401",
    ("power-phase-list", "PUT"): "405 403 403 403 403 403 401 401",
    ("power-phase-detail", "GET"): "200 200 200 200 200 403 401 401",
    ("power-phase-detail", "PATCH"): "200 403 403 403 403 403 401 401",
    ("power-phase-detail", "DELETE"): "204 403 403 403 403 403 401 401",
    ("power-phase-detail", "PUT"): "405 403 403 403 403 403 401 401",
    ("accelerator-detail", "GET"): "200 200 200 200 200 403 401 401",
    ("accelerator-detail", "PATCH"): "200 403 403 403 403 403 401 401",
    ("accelerator-detail", "DELETE"): "204 403 403 403 403 403 401 401",
    ("accelerator-detail", "PUT"): "405 403 403 403 403 403 401 401",
    ("pool-detail", "GET"): "200 200 200 200 200 403 401 401",
    ("pool-detail", "PATCH"): "200 403 403 403 403 403 401 401",
    ("pool-detail", "DELETE"): "204 403 403 403 403 403 401 401",
    ("pool-detail", "PUT"): "405 403 403 403 403 403 401 401",
    ("pool-availability", "GET"): "200 200 200 200 200 403 401 401",
    ("pool-availability", "PUT"): "405 405 405 405 405 403 401 401",
    ("capacity-event-list", "GET"): "200 200 200 200 200 403 401 401",
    ("capacity-event-list", "POST"): "201 403 403 403 403 403 401 401",
    ("capacity-event-list", "PUT"): "405 403 403 403 403 403 401 401",
    ("capacity-event-detail", "GET"): "200 200 200 200 200 403 401 401",
    ("capacity-event-detail", "PATCH"): "200 403 403 403 403 403 401 401",
    ("capacity-event-detail", "DELETE"): "204 403 403 403 403 403 401 401",
    ("capacity-event-detail", "PUT"): "405 403 403 403 403 403 401 401",
    ("program-detail", "GET"): "200 200 200 200 200 403 401 401",
    ("program-detail", "PATCH"): "200 403 403 403 403 403 401 401",
    ("program-detail", "DELETE"): "204 403 403 403 403 403 401 401",
    ("program-detail", "PUT"): "405 403 403 403 403 403 401 401",
    # applications: a draft is its organization's; reviewers see the program's once submitted
    ("application-detail", "GET"): "200 404 200 200 404 403 401 401",
    ("application-detail", "PATCH"): "403 404 200 200 404 403 401 401",
    ("application-detail", "PUT"): "405 405 405 405 405 403 401 401",
    ("application-submit", "POST"): "403 404 202 202 404 403 401 401",
    ("application-submit", "PUT"): "405 405 405 405 405 403 401 401",
    ("application-withdraw", "POST"): "403 403 200 200 404 403 401 401",
    ("application-withdraw", "PUT"): "405 405 405 405 405 403 401 401",
    ("application-approve", "POST"): "403 200 403 403 404 403 401 401",
    ("application-approve", "PUT"): "405 405 405 405 405 403 401 401",
    ("application-reject", "POST"): "403 200 403 403 404 403 401 401",
    ("application-reject", "PUT"): "405 405 405 405 405 403 401 401",
    ("application-events", "GET"): "200 200 200 200 404 403 401 401",
    ("application-events", "PUT"): "405 405 405 405 405 403 401 401",
    # allocations: the organization's members; admins release; operators suspend, resume and
    # revoke
    # (the scheduler reads every allocation's limits)
    ("allocation-detail", "GET"): "200 404 200 200 404 200 401 401",
    ("allocation-detail", "PUT"): "405 405 405 405 405 405 401 401",
    ("allocation-release", "POST"): "403 404 200 403 404 403 401 401",
    ("allocation-release", "PUT"): "405 405 405 405 405 403 401 401",
    ("allocation-suspend", "POST"): "200 404 403 403 404 403 401 401",
    ("allocation-suspend", "PUT"): "405 405 405 405 405 403 401 401",
    ("allocation-resume", "POST"): "200 404 403 403 404 403 401 401",
    ("allocation-resume", "PUT"): "405 405 405 405 405 403 401 401",
    ("allocation-revoke", "POST"): "200 404 403 403 404 403 401 401",
    ("allocation-revoke", "PUT"): "405 405 405 405 405 403 401 401",
}

# Cells known to answer otherwise, with the reason; each must still fail as declared, so an
# entry is removed once its cause is fixed.
EXPECTED_FAILURES: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    methods: tuple[str, ...]  # what the view implements, upper case
    parameters: tuple[str, ...]


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_routes_with_object_ids() -> list[Route]:
    """The API's routes whose path names an object, from the URL configuration."""
    routes = []
    for path, pattern in _walk(get_resolver().url_patterns):
        parameters = tuple(pattern.pattern.converters)
        if not path.startswith("api/") or not parameters:
            continue
        view = getattr(pattern.callback, "view_class", None) or pattern.callback.cls
        methods = tuple(
            method.upper()
            for method in ("get", "post", "put", "patch", "delete")
            if callable(getattr(view, method, None))
        )
        routes.append(Route(str(pattern.name), path, methods, parameters))
    return routes


ROUTES = api_routes_with_object_ids()


def expected(route: str, method: str) -> dict[str, int]:
    row = [int(status) for status in MATRIX[(route, method)].split()]
    assert len(row) == len(ROLES), f"{route} {method}: one status per role"
    return dict(zip(ROLES, row, strict=True))


# --- the objects every cell acts on -----------------------------------------------------


@dataclass
class World:
    clients: dict[str, APIClient]
    kwargs: dict[str, dict[str, str]]  # route name -> its path parameters
    bodies: dict[tuple[str, str], dict[str, Any]]


def _client(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _token(user: User, scope: str = TokenScope.FULL) -> str:
    return account_services.token_create(user=user, name="matrix", scope=scope).secret


@pytest.fixture
def world(
    pool, fast_lane, reviewer, startup, founder, researcher, rival, draft, decide, today
) -> World:
    operator = OperatorFactory(email="operator@narvik.example")
    other_admin = Membership.objects.get(organization=rival, role=MembershipRole.ADMIN).user
    leaving = UserFactory(email="leaving@fjord.example")
    MembershipFactory(user=leaving, organization=startup, role=MembershipRole.MEMBER)
    newcomer = UserFactory(email="newcomer@elsewhere.example")

    site = pool.site
    phase = PowerPhase.objects.filter(site=site).first()
    event = CapacityEvent.objects.filter(pool=pool).first()
    spare_site = SiteFactory(name="Spare site")
    spare_accelerator = AcceleratorFactory(name="Spare accelerator")
    spare_pool = PoolFactory(name="spare-pool", site=site, accelerator=pool.accelerator)
    spare_program = ProgramFactory(slug="spare", name="Spare program", nominal_share=0)
    PowerPhaseFactory(site=spare_site)
    CapacityEventFactory(pool=spare_pool)

    in_review = decide(
        draft(gpu_hours=12_000, title="Large run", end_date=today + timedelta(days=30))
    )
    assert in_review.status == "in_review", in_review.reasons
    running = decide(draft(gpu_hours=1_000, start_date=today, end_date=today + timedelta(days=9)))
    assert running.status == "approved", running.reasons
    allocation = Allocation.objects.get(application=running)
    suspended_application = decide(draft(gpu_hours=500, start_date=today))
    suspended = allocation_services.allocation_suspend(
        allocation=Allocation.objects.get(application=suspended_application), actor=operator
    )
    a_draft: Application = draft(title="Still a draft")
    spare_token = account_services.token_create(user=founder, name="laptop").token
    invitation = account_services.invitation_create(
        organization=startup, email=other_admin.email, role=MembershipRole.MEMBER, actor=founder
    )

    revoked = account_services.token_create(user=founder, name="revoked")
    account_services.token_revoke(token=revoked.token, actor=founder)
    tokens: dict[str, str | None] = {
        "operator": _token(operator),
        "reviewer": _token(reviewer),
        "org_admin": _token(founder),
        "member": _token(researcher),
        "other_admin": _token(other_admin),
        "revoked": revoked.secret,
        "anonymous": None,
    }
    kwargs: dict[str, dict[str, str]] = {}
    if HAS_SERVICE_ACCOUNTS:
        account = account_services.scheduler_account_create(source="slurm-matrix", actor=operator)
        tokens["service_account"] = account_services.scheduler_token_issue(
            account=account, actor=operator, name="matrix"
        ).secret
        kwargs["scheduler-account-tokens"] = {"account_id": str(account.pk)}

    org = {"organization_id": str(startup.pk)}
    kwargs |= {
        "token-detail": {"token_id": str(spare_token.pk)},
        "organization-detail": org,
        "organization-verify": org,
        "organization-members": org,
        "organization-member": {**org, "user_id": str(leaving.pk)},
        "organization-invitations": org,
        "organization-invitation-revoke": {**org, "invitation_id": str(invitation.pk)},
        "invitation-accept": {"invitation_id": str(invitation.pk)},
        "invitation-decline": {"invitation_id": str(invitation.pk)},
        "site-detail": {"pk": str(spare_site.pk)},
        "power-phase-list": {"parent_id": str(site.pk)},
        "power-phase-detail": {"parent_id": str(site.pk), "pk": str(phase.pk)},
        "accelerator-detail": {"pk": str(spare_accelerator.pk)},
        "pool-detail": {"pk": str(spare_pool.pk)},
        "pool-availability": {"pk": str(pool.pk)},
        "capacity-event-list": {"parent_id": str(pool.pk)},
        "capacity-event-detail": {"parent_id": str(pool.pk), "pk": str(event.pk)},
        "program-detail": {"pk": str(spare_program.pk)},
        "application-detail": {"pk": str(a_draft.pk)},
        "application-submit": {"pk": str(a_draft.pk)},
        "application-withdraw": {"pk": str(in_review.pk)},
        "application-approve": {"pk": str(in_review.pk)},
        "application-reject": {"pk": str(in_review.pk)},
        "application-events": {"pk": str(in_review.pk)},
        "allocation-detail": {"pk": str(allocation.pk)},
        "allocation-release": {"pk": str(allocation.pk)},
        "allocation-suspend": {"pk": str(allocation.pk)},
        "allocation-resume": {"pk": str(suspended.pk)},
        "allocation-revoke": {"pk": str(allocation.pk)},
    }
    later = str(today + timedelta(days=400))
    bodies = {
        ("scheduler-account-tokens", "POST"): {"name": "another"},
        ("organization-invitations", "POST"): {"email": newcomer.email, "role": "member"},
        ("site-detail", "PATCH"): {"name": "Renamed site"},
        ("power-phase-list", "POST"): {"name": "Phase 9", "power_mw": "5", "online_from": later},
        ("power-phase-detail", "PATCH"): {"name": "Renamed phase"},
        ("accelerator-detail", "PATCH"): {"name": "Renamed accelerator"},
        ("pool-detail", "PATCH"): {"name": "renamed-pool"},
        ("capacity-event-list", "POST"): {"effective_from": later, "gpus_in_service": 90},
        ("capacity-event-detail", "PATCH"): {"note": "A rack back from repair."},
        ("program-detail", "PATCH"): {"name": "Renamed program"},
        ("application-detail", "PATCH"): {"title": "Renamed draft"},
        ("application-approve", "POST"): {"reason": "Fits the program."},
        ("application-reject", "POST"): {"reason": "Out of scope."},
    }
    return World({role: _client(token) for role, token in tokens.items()}, kwargs, bodies)


# --- the tests ------------------------------------------------------------------------------


class _RollBack(Exception):
    pass


def _answer(client: APIClient, method: str, url: str, body: dict[str, Any] | None) -> int:
    """The status one request gets, with everything it wrote rolled back."""
    status = 0
    try:
        with transaction.atomic():
            call: Callable[..., Any] = getattr(client, method.lower())
            status = call(url, body or {}, format="json").status_code
            raise _RollBack
    except _RollBack:
        pass
    return status


def test_every_api_route_with_an_object_id_is_in_the_matrix(record_property):
    # given: the routes of the URL configuration and the rows of the table
    found = {(route.name, method) for route in ROUTES for method in route.methods}
    found |= {(route.name, NOT_ALLOWED_METHOD) for route in ROUTES}
    # then: no route nor method escapes the table, and the table names no route that is gone
    assert sorted(found - set(MATRIX)) == [], "add these to MATRIX with their expected answers"
    assert sorted(set(MATRIX) - found) == [], "these rows name no route or method"
    assert all(NOT_ALLOWED_METHOD not in route.methods for route in ROUTES)


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_each_role_gets_the_declared_answer_on(route: Route, world: World, matrix_cells):
    # given: the objects, one client per role, the route's path
    url = reverse(route.name, kwargs=world.kwargs[route.name])
    mismatches, unexpected_passes = [], []
    for method in (*route.methods, NOT_ALLOWED_METHOD):
        if (route.name, method) not in MATRIX:
            pytest.fail(f"{route.name} {method} is not in MATRIX")
        for role, status in expected(route.name, method).items():
            if role not in ACTIVE_ROLES:
                continue
            # when
            answered = _answer(
                world.clients[role], method, url, world.bodies.get((route.name, method))
            )
            # then
            matrix_cells.append((route.name, method, role, answered == status))
            known = EXPECTED_FAILURES.get((route.name, method, role))
            if known and answered == status:
                unexpected_passes.append(f"{method} {url} as {role}: passes now ({known})")
            elif not known and answered != status:
                mismatches.append(f"{method} {url} as {role}: {answered}, expected {status}")
    assert mismatches == [], "\n".join(mismatches)
    assert unexpected_passes == [], "remove from EXPECTED_FAILURES:\n" + "\n".join(
        unexpected_passes
    )
