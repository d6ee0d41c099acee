"""Load the demo site, programs, organizations and logins. Idempotent: rows that exist stay.

Everything is created through the services, so the demo has its audit trail like real data.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services as account_services
from accounts.models import Organization, OrganizationKind, User
from allocations import services
from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Program, Site

OPERATOR = ("operator@narvik.example", "narvik-operator-demo")
APPLICANT = ("founder@fjordai.example", "fjord-applicant-demo")

EEA = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
]  # fmt: skip

TODAY_PHASE = date(2026, 1, 1)
EXPANSION = date(2027, 7, 1)

PROGRAMS: list[dict[str, Any]] = [
    {
        "slug": "no-research",
        "name": "Norwegian research",
        "description": "Universities, research institutes and public bodies in Norway.",
        "priority": 10,
        "eligible_countries": ["NO"],
        "eligible_kinds": ["university", "research_institute", "public_sector"],
        "min_gpu_hours": 100,
        "max_gpu_hours": 500_000,
        "max_duration_days": 365,
        "auto_approve_max_gpu_hours": 5_000,
        "org_cap_gpu_hours": 1_000_000,
        "nominal_share": Decimal("0.30"),
        "lending_limit": Decimal("0.50"),
        "borrowing_limit": Decimal("0.20"),
        "turnaround_days": 30,
    },
    {
        "slug": "no-startups-fast-lane",
        "name": "Norwegian startups fast lane",
        "description": "Norwegian startups: auto-approved up to 10,000 GPU-hours, in days.",
        "priority": 20,
        "eligible_countries": ["NO"],
        "eligible_kinds": ["startup"],
        "min_gpu_hours": 100,
        "max_gpu_hours": 50_000,
        "max_duration_days": 90,
        "auto_approve_max_gpu_hours": 10_000,
        "org_cap_gpu_hours": 100_000,
        "nominal_share": Decimal("0.15"),
        "lending_limit": Decimal("0.50"),
        "borrowing_limit": Decimal("0.10"),
        "turnaround_days": 2,
    },
    {
        "slug": "eea-research-innovation",
        "name": "EEA research and innovation",
        "description": "Research and innovation across the EEA, after peer review.",
        "priority": 30,
        "eligible_countries": EEA,
        "eligible_kinds": [],
        "min_gpu_hours": 1_000,
        "max_gpu_hours": 250_000,
        "max_duration_days": 180,
        "auto_approve_max_gpu_hours": 0,
        "org_cap_gpu_hours": 500_000,
        "nominal_share": Decimal("0.25"),
        "lending_limit": Decimal("0.50"),
        "borrowing_limit": Decimal("0.10"),
        "turnaround_days": 45,
    },
    {
        "slug": "commercial",
        "name": "Commercial",
        "description": "Companies anywhere, on what the priority tracks leave free.",
        "priority": 40,
        "eligible_countries": [],
        "eligible_kinds": ["company", "startup"],
        "min_gpu_hours": 1_000,
        "max_gpu_hours": 1_000_000,
        "max_duration_days": 365,
        "auto_approve_max_gpu_hours": 0,
        "org_cap_gpu_hours": 2_000_000,
        "nominal_share": Decimal("0.10"),
        "lending_limit": Decimal("1.00"),
        "borrowing_limit": Decimal("0.20"),
        "turnaround_days": 10,
    },
]

ORGANIZATIONS: list[dict[str, Any]] = [
    {"name": "Fjord AI AS", "kind": OrganizationKind.STARTUP, "country": "NO",
     "registry_number": "926018159", "verified": True},
    {"name": "Arctic University Computing Lab", "kind": OrganizationKind.UNIVERSITY,
     "country": "NO", "registry_number": "908301668", "verified": True},
    {"name": "Nordlys Robotics AS", "kind": OrganizationKind.STARTUP, "country": "NO",
     "registry_number": "931860917", "verified": False},
    {"name": "Helsinki Language Technology Lab", "kind": OrganizationKind.UNIVERSITY,
     "country": "FI", "registry_number": "", "verified": True},
    {"name": "Rheinland Cloud GmbH", "kind": OrganizationKind.COMPANY, "country": "DE",
     "registry_number": "", "verified": True},
]  # fmt: skip


class Command(BaseCommand):
    help = "Load the Narvik demo site, programs, organizations and demo logins (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        created: list[str] = []
        with transaction.atomic():
            operator = self._user(*OPERATOR, staff=True, name="Site Operator", created=created)
            applicant = self._user(*APPLICANT, staff=False, name="Fjord Founder", created=created)
            self._inventory(operator, created)
            self._programs(operator, created)
            self._organizations(operator, applicant, created)
        summary = ", ".join(created) if created else "nothing new (already loaded)"
        self.stdout.write(f"Demo data: {summary}.")
        self.stdout.write(f"  operator  {OPERATOR[0]} / {OPERATOR[1]}")
        self.stdout.write(f"  applicant {APPLICANT[0]} / {APPLICANT[1]} (Fjord AI AS, admin)")

    def _user(
        self, email: str, password: str, *, staff: bool, name: str, created: list[str]
    ) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email, password, full_name=name, is_staff=staff, is_superuser=staff
            )
            created.append(f"user {email}")
        return user

    def _contact(self, organization_name: str) -> User:
        """The admin of a demo organization other than the applicant's: cannot sign in."""
        slug = "".join(c for c in organization_name.lower() if c.isalnum())[:30]
        email = f"admin@{slug}.example"
        existing = User.objects.filter(email=email).first()
        # No password: create_user makes it unusable.
        return existing or User.objects.create_user(
            email, None, full_name=f"{organization_name} admin"
        )

    def _inventory(self, operator: User, created: list[str]) -> None:
        site = Site.objects.filter(name="Narvik").first()
        if site is None:
            site = services.inventory_create(
                model=Site,
                values={"name": "Narvik", "country": "NO", "pue": Decimal("1.10")},
                actor=operator,
            )
            created.append("site Narvik")
        for name, power, online_from in (
            ("Phase 1", Decimal("230"), TODAY_PHASE),
            ("Phase 2", Decimal("290"), EXPANSION),
        ):
            if not PowerPhase.objects.filter(site=site, name=name).exists():
                services.inventory_create(
                    model=PowerPhase,
                    values={
                        "site": site,
                        "name": name,
                        "power_mw": power,
                        "online_from": online_from,
                    },
                    actor=operator,
                )
                created.append(f"power phase {name}")
        accelerators = {}
        for name, board, it_power, flops in (
            ("GB300", 1400, 1900, 2_500_000_000_000_000),
            ("H200", 700, 1300, 989_000_000_000_000),
        ):
            accelerator = AcceleratorModel.objects.filter(name=name).first()
            if accelerator is None:
                accelerator = services.inventory_create(
                    model=AcceleratorModel,
                    values={
                        "name": name,
                        "board_power_w": board,
                        "it_power_w": it_power,
                        "peak_bf16_flops": flops,
                    },
                    actor=operator,
                )
                created.append(f"accelerator {name}")
            accelerators[name] = accelerator
        for name, model, gpus, start in (
            ("narvik-gb300-a", "GB300", 100_000, TODAY_PHASE),
            ("narvik-gb300-b", "GB300", 130_000, EXPANSION),
            ("narvik-h200", "H200", 2_048, TODAY_PHASE),
        ):
            pool = GpuPool.objects.filter(name=name).first()
            if pool is None:
                pool = services.inventory_create(
                    model=GpuPool,
                    values={"name": name, "site": site, "accelerator": accelerators[model]},
                    actor=operator,
                )
                created.append(f"pool {name}")
            if not CapacityEvent.objects.filter(pool=pool).exists():
                services.inventory_create(
                    model=CapacityEvent,
                    values={
                        "pool": pool,
                        "effective_from": start,
                        "gpus_in_service": gpus,
                        "note": "installation",
                    },
                    actor=operator,
                )

    def _programs(self, operator: User, created: list[str]) -> None:
        for values in PROGRAMS:
            if not Program.objects.filter(slug=values["slug"]).exists():
                services.program_create(values=values, reviewers=[operator], actor=operator)
                created.append(f"program {values['slug']}")

    def _organizations(self, operator: User, applicant: User, created: list[str]) -> None:
        for spec in ORGANIZATIONS:
            if Organization.objects.filter(name=spec["name"]).exists():
                continue
            creator = applicant if spec["name"] == "Fjord AI AS" else self._contact(spec["name"])
            organization = account_services.organization_create(
                creator=creator,
                name=spec["name"],
                kind=spec["kind"],
                country=spec["country"],
                registry_number=spec["registry_number"],
            )
            if spec["verified"]:
                account_services.organization_verify(organization=organization, actor=operator)
            created.append(f"organization {spec['name']}")
