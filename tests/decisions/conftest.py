"""A small site for decision tests: one pool of 100 GPUs (2,280 GPU-hours a day at 0.95),
power for all of them, two programs with shares that leave a common part."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from accounts.models import MembershipRole, Organization, User
from allocations.models import (
    Allocation,
    Application,
    ApplicationStatus,
    GpuPool,
    PoolDay,
    Program,
    ProgramDay,
    QuotaUsage,
    SiteDay,
)
from allocations.services import applications as services
from tests.factories import (
    CapacityEventFactory,
    MembershipFactory,
    OrganizationFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    UserFactory,
)


@pytest.fixture
def today() -> date:
    return timezone.localdate()


@pytest.fixture
def pool(db: None) -> GpuPool:
    pool = PoolFactory(name="narvik-test", availability=Decimal("0.950"))
    CapacityEventFactory(pool=pool, effective_from=date(2020, 1, 1), gpus_in_service=100)
    PowerPhaseFactory(site=pool.site, power_mw=Decimal("1"), online_from=date(2020, 1, 1))
    return pool


@pytest.fixture
def reviewer(db: None) -> User:
    return UserFactory(email="reviewer@narvik.example")


@pytest.fixture
def fast_lane(reviewer: User) -> Program:
    program = ProgramFactory(
        name="Fast lane",
        slug="fast-lane",
        priority=20,
        eligible_countries=["NO"],
        eligible_kinds=["startup"],
        min_gpu_hours=10,
        max_gpu_hours=50_000,
        max_duration_days=90,
        auto_approve_max_gpu_hours=10_000,
        org_cap_gpu_hours=100_000,
        nominal_share=Decimal("0.5000"),
        lending_limit=Decimal("0.5000"),
        borrowing_limit=Decimal("0.2000"),
    )
    program.reviewers.add(reviewer)
    return program


@pytest.fixture
def startup(db: None) -> Organization:
    return OrganizationFactory(name="Fjord AI AS", kind="startup", country="NO")


@pytest.fixture
def founder(startup: Organization) -> User:
    user = UserFactory(email="founder@fjord.example")
    MembershipFactory(user=user, organization=startup, role=MembershipRole.ADMIN)
    return user


@pytest.fixture
def draft(founder: User, startup: Organization, fast_lane: Program, pool: GpuPool, today: date):
    def make(applicant: User | None = None, **overrides: Any) -> Application:
        values: dict[str, Any] = {
            "organization": startup,
            "program": fast_lane,
            "pool": pool,
            "title": "Norwegian LLM fine-tune",
            "gpu_hours": 1_000,
            "start_date": today + timedelta(days=1),
            "end_date": today + timedelta(days=10),
            **overrides,
        }
        return services.application_create(applicant=applicant or founder, values=values)

    return make


@pytest.fixture
def too_big(draft: Any, decide: Any, window: Any) -> Application:
    """Waitlisted for good: 100 GPUs give 2,280 GPU-hours a day, and it asks 3,000 a day."""
    application = decide(draft(title="Too big", gpu_hours=9_000, **window(2, 4)))
    assert application.status == ApplicationStatus.WAITLISTED
    return application


@pytest.fixture
def decide(founder: User):
    """Submit a draft and run its decision as the worker would, in this process."""

    def run(application: Application) -> Application:
        submitted = services.application_submit(application=application, actor=founder)
        decided = services.application_decide(
            application_id=submitted.pk, submission=submitted.submission
        )
        assert decided is not None
        return decided

    return run


# --- more people, programs and helpers for the rule, ledger, transition and API tests ------


@pytest.fixture
def researcher(startup: Organization) -> User:
    """A plain member of the startup: may apply, may not release its allocations."""
    user = UserFactory(email="researcher@fjord.example")
    MembershipFactory(user=user, organization=startup, role=MembershipRole.MEMBER)
    return user


@pytest.fixture
def rival(db: None) -> Organization:
    """Another verified Norwegian startup, with an admin of its own."""
    organization = OrganizationFactory(name="Lofoten Labs AS", kind="startup", country="NO")
    MembershipFactory(
        user=UserFactory(email="cto@lofoten.example"),
        organization=organization,
        role=MembershipRole.ADMIN,
    )
    return organization


@pytest.fixture
def make_program(db: None):
    """A program open to Norwegian organizations of any kind; shares default to none."""

    def make(**overrides: Any) -> Program:
        values: dict[str, Any] = {
            "eligible_countries": ["NO"],
            "eligible_kinds": [],
            "min_gpu_hours": 1,
            "max_gpu_hours": 50_000,
            "max_duration_days": 90,
            "auto_approve_max_gpu_hours": 10_000,
            "org_cap_gpu_hours": 100_000,
            "nominal_share": Decimal("0"),
            "lending_limit": Decimal("0"),
            "borrowing_limit": Decimal("0"),
            **overrides,
        }
        return ProgramFactory(**values)

    return make


@pytest.fixture
def window(today: date):
    """`window(1, 5)`: the start and end dates from today + 1 to today + 5, as draft values."""

    def make(first: int, last: int) -> dict[str, date]:
        return {
            "start_date": today + timedelta(days=first),
            "end_date": today + timedelta(days=last),
        }

    return make


def ledger_snapshot() -> dict[str, Any]:
    """Everything a decision may write: the ledger's rows, the quota rows and the allocations.
    Rows that only exist (all zero) do not count as a change."""
    return {
        "pool_days": sorted(
            (str(row.pool_id), row.day, row.committed_gpu_hours, row.held_gpu_hours)
            for row in PoolDay.objects.all()
            if row.committed_gpu_hours or row.held_gpu_hours
        ),
        "program_days": sorted(
            (str(row.program_id), row.day, row.committed_gpu_hours, row.held_gpu_hours)
            for row in ProgramDay.objects.all()
            if row.committed_gpu_hours or row.held_gpu_hours
        ),
        "site_days": sorted(
            (str(row.site_id), row.day, row.committed_wh, row.held_wh)
            for row in SiteDay.objects.all()
            if row.committed_wh or row.held_wh
        ),
        "quota": {
            (str(row.organization_id), str(row.program_id)): row.held_gpu_hours
            for row in QuotaUsage.objects.all()
            if row.held_gpu_hours
        },
        "allocations": sorted(
            (
                str(row.pk),
                row.status,
                row.granted_gpu_hours,
                row.start_date,
                row.end_date,
                row.released_from,
                row.at_risk,
            )
            for row in Allocation.objects.all()
        ),
    }


@pytest.fixture
def snapshot():
    return ledger_snapshot


def reserved_totals() -> dict[str, Any]:
    """Sums of the ledger: pool, program and site columns, and the quota held."""
    pool = PoolDay.objects.aggregate(c=Sum("committed_gpu_hours"), h=Sum("held_gpu_hours"))
    program = ProgramDay.objects.aggregate(c=Sum("committed_gpu_hours"), h=Sum("held_gpu_hours"))
    site = SiteDay.objects.aggregate(c=Sum("committed_wh"), h=Sum("held_wh"))
    quota = QuotaUsage.objects.aggregate(h=Sum("held_gpu_hours"))
    return {
        "pool": (pool["c"] or 0, pool["h"] or 0),
        "program": (program["c"] or 0, program["h"] or 0),
        "site_wh": (site["c"] or Decimal(0), site["h"] or Decimal(0)),
        "quota": quota["h"] or 0,
    }


@pytest.fixture
def totals():
    return reserved_totals
