"""A small site for decision tests: one pool of 100 GPUs (2,280 GPU-hours a day at 0.95),
power for all of them, two programs with shares that leave a common part."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MembershipRole, Organization, User
from allocations.models import Application, GpuPool, Program
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
    def make(**overrides: Any) -> Application:
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
        return services.application_create(applicant=founder, values=values)

    return make


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
