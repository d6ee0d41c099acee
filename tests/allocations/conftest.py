"""Fixtures of the inventory and program tests: a Narvik-like site built here, and the
state a refused request must leave as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from allocations.models import (
    AcceleratorModel,
    Application,
    CapacityEvent,
    GpuPool,
    PoolDay,
    PowerPhase,
    Program,
    ProgramDay,
    Site,
    SiteDay,
)
from audit.models import AuditEvent
from tests.factories import (
    AcceleratorFactory,
    CapacityEventFactory,
    OrganizationFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    SiteFactory,
    UserFactory,
)


@dataclass(frozen=True)
class Narvik:
    site: Site
    phase_one: PowerPhase
    phase_two: PowerPhase
    gb300: AcceleratorModel
    pool: GpuPool
    installation: CapacityEvent


@pytest.fixture
def narvik(db: None) -> Narvik:
    """The demo's shape: PUE 1.10, 230 MW from 2026 and 290 MW more from July 2027, and a
    pool of 100,000 GB300 (1,400 W board, 1,900 W IT) promised at 0.95."""
    site = SiteFactory(name="Narvik", country="NO", pue=Decimal("1.10"))
    phase_one = PowerPhaseFactory(
        site=site, name="Phase 1", power_mw=Decimal("230"), online_from=date(2026, 1, 1)
    )
    phase_two = PowerPhaseFactory(
        site=site, name="Phase 2", power_mw=Decimal("290"), online_from=date(2027, 7, 1)
    )
    gb300 = AcceleratorFactory(name="GB300", board_power_w=1400, it_power_w=1900)
    pool = PoolFactory(
        name="narvik-gb300-a", site=site, accelerator=gb300, availability=Decimal("0.950")
    )
    installation = CapacityEventFactory(
        pool=pool, effective_from=date(2026, 1, 1), gpus_in_service=100_000, note="installation"
    )
    return Narvik(site, phase_one, phase_two, gb300, pool, installation)


_TABLES: dict[str, Any] = {
    "sites": Site,
    "power_phases": PowerPhase,
    "accelerators": AcceleratorModel,
    "pools": GpuPool,
    "capacity_events": CapacityEvent,
    "programs": Program,
    "program_reviewers": Program.reviewers.through,
    "applications": Application,
    "pool_days": PoolDay,
    "program_days": ProgramDay,
    "site_days": SiteDay,
}


@pytest.fixture
def counts() -> Callable[[], dict[str, int]]:
    """The row counts a refused request must leave as they were."""

    def count() -> dict[str, int]:
        rows = {name: model.objects.count() for name, model in _TABLES.items()}
        return {**rows, "audit_events": AuditEvent.objects.count()}

    return count


@pytest.fixture
def state(counts: Callable[[], dict[str, int]]) -> Callable[[], dict[str, Any]]:
    """The counts and every value of every inventory, program and ledger row: what a refused
    request must leave exactly as it was (a refused PATCH must not change one field)."""

    def read() -> dict[str, Any]:
        values = {
            name: sorted(map(repr, model.objects.order_by().values_list()))
            for name, model in _TABLES.items()
        }
        return {"counts": counts(), "values": values}

    return read


@pytest.fixture
def application_in(db: None) -> Callable[..., Application]:
    """A draft application in a pool and program: a row that keeps both from being deleted."""

    def make(*, pool: GpuPool, program: Program | None = None) -> Application:
        return Application.objects.create(
            organization=OrganizationFactory(),
            program=program or ProgramFactory(),
            pool=pool,
            applicant=UserFactory(),
            title="Norwegian LLM pre-training",
            gpu_hours=10_000,
            start_date=date(2027, 1, 1),
            end_date=date(2027, 1, 31),
        )

    return make
