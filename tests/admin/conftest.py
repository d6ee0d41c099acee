"""Fixtures of the admin tests: a superuser operator's browser and a small inventory.

The static-files storage needs no override here: tests/conftest.py already swaps the
manifest storage for the plain one in every test, so admin pages render without collectstatic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db.models import Model
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccessToken, Membership, Organization, User
from accounts.services import token_create
from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Program, Site
from allocations.services import inventory_create
from audit.models import AuditEvent
from tests.factories import (
    AcceleratorFactory,
    MembershipFactory,
    OperatorFactory,
    OrganizationFactory,
    ProgramFactory,
)


@pytest.fixture
def superuser(db: None) -> User:
    return OperatorFactory(email="root@narvik.example", is_superuser=True)


@pytest.fixture
def browser(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def admin_url() -> Callable[..., str]:
    """The admin URL of a model's view: `admin_url(Site, "change", site.pk)`."""

    def url(model: type[Model], view: str, *args: object) -> str:
        meta = model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)

    return url


@pytest.fixture
def messages_of() -> Callable[[HttpResponse], list[str]]:
    """The messages the admin queued for the user with a response."""

    def read(response: HttpResponse) -> list[str]:
        return [str(message) for message in get_messages(response.wsgi_request)]

    return read


@dataclass(frozen=True)
class Inventory:
    site: Site
    phase: PowerPhase
    accelerator: AcceleratorModel
    pool: GpuPool
    program: Program
    organization: Organization
    membership: Membership
    token: AccessToken

    def row_of(self, model: type[Model]) -> Model:
        rows: dict[type[Model], Model] = {
            Site: self.site,
            AcceleratorModel: self.accelerator,
            GpuPool: self.pool,
            Program: self.program,
            Organization: self.organization,
            Membership: self.membership,
            AccessToken: self.token,
            User: self.membership.user,
            AuditEvent: AuditEvent.objects.filter(verb="site.create").get(),
        }
        return rows[model]


@pytest.fixture
def inventory(superuser: User) -> Inventory:
    """A site with a phase online, a pool with GPUs in service, a program, an organization
    with a member and a token; made through the services, so the audit trail has rows."""
    today = timezone.localdate()
    site = inventory_create(
        model=Site,
        values={"name": "narvik", "country": "NO", "pue": Decimal("1.10")},
        actor=superuser,
    )
    phase = inventory_create(
        model=PowerPhase,
        values={
            "site": site,
            "name": "Phase 1",
            "power_mw": Decimal(230),
            "online_from": date(2025, 1, 1),
        },
        actor=superuser,
    )
    accelerator = AcceleratorFactory()
    pool = inventory_create(
        model=GpuPool,
        values={"name": "narvik-gb300-a", "site": site, "accelerator": accelerator},
        actor=superuser,
    )
    inventory_create(
        model=CapacityEvent,
        values={
            "pool": pool,
            "effective_from": today - timedelta(days=30),
            "gpus_in_service": 1000,
        },
        actor=superuser,
    )
    organization = OrganizationFactory(name="Fjord AI AS", registry_number="923609016")
    membership = MembershipFactory(organization=organization, user__email="cto@fjord.example")
    token = token_create(user=membership.user, name="laptop").token
    program = ProgramFactory(name="Sigma2 national", slug="sigma2", nominal_share=Decimal("0.3"))
    return Inventory(
        site=site,
        phase=phase,
        accelerator=accelerator,
        pool=pool,
        program=program,
        organization=organization,
        membership=membership,
        token=token,
    )


@pytest.fixture
def program_form() -> Callable[..., dict[str, Any]]:
    """The POST body of the program form, with any field overridden."""

    def form(**overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "AI Factory Fast Lane",
            "slug": "fast-lane",
            "description": "",
            "priority": "5",
            "is_open": "on",
            "eligible_countries": ["NO", "SE"],
            "eligible_kinds": ["startup", "university"],
            "verification_required": "on",
            "min_gpu_hours": "1",
            "max_gpu_hours": "5000",
            "max_duration_days": "30",
            "auto_approve_max_gpu_hours": "1000",
            "org_cap_gpu_hours": "10000",
            "nominal_share": "0.2",
            "lending_limit": "0.5",
            "borrowing_limit": "0.1",
            "turnaround_days": "2",
            "reviewers": [],
        }
        body.update(overrides)
        return body

    return form
