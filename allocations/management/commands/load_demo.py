"""Load the demo site, programs, organizations and logins, and a story told in dates
relative to the day it is loaded: allocations that started weeks ago with their usage, an
application auto-approved, two in review (one past its program's target), a waitlist, a
rejection, and a maintenance window that overcommits a few days and puts two allocations at
risk. Idempotent: rows that exist stay, and the story is told once.

Everything is created through the services, so the demo has its audit trail like real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Organization, OrganizationKind, User
from allocations import services
from allocations.models import (
    AcceleratorModel,
    Application,
    ApplicationStatus,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
)
from allocations.services import applications as application_services
from allocations.services.usage import usage_ingest

OPERATOR = ("operator@narvik.example", "narvik-operator-demo")
APPLICANT = ("founder@fjordai.example", "fjord-applicant-demo")

EEA = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
]  # fmt: skip

# The site's story in days from the day the demo is loaded: phase 1 has run for a year, the
# expansion comes in seven months.
PHASE_ONE_DAYS_AGO = 365
EXPANSION_IN_DAYS = 213
USAGE_SOURCE = "slurm-narvik"


@dataclass(frozen=True)
class Story:
    """One demo application: who asks for what, when (in days from today), and its fate."""

    organization: str
    program: str
    pool: str
    title: str
    gpu_hours: int
    start: int
    days: int
    submitted_days_ago: float = 0
    approve: str = ""  # a reviewer's note: approved by the operator
    used_fraction: float = 0.0  # of the share of its days so far, as usage records
    risk_category: str = "minimal"
    purpose: str = "Training and evaluating language models for Norwegian public services."


STORIES = [
    # Those that started in the past were decided as they were submitted: the turnaround
    # report measures from submission to decision.
    Story("Arctic University Computing Lab", "no-research", "narvik-gb300-a",
          "Sámi and Norwegian speech corpus models", 120_000, -30, 60, submitted_days_ago=4,
          approve="Peer review passed; fits the share.", used_fraction=0.7),
    Story("Fjord AI AS", "no-startups-fast-lane", "narvik-gb300-a", "Norwegian LLM fine-tuning",
          8_000, -20, 30, submitted_days_ago=0.01, used_fraction=0.85),
    Story("Rheinland Cloud GmbH", "commercial", "narvik-h200", "Retrieval models for German "
          "manufacturing", 200_000, -10, 45, submitted_days_ago=6,
          approve="Commercial terms signed.", used_fraction=0.5,
          purpose="Embedding and retrieval models for industrial documentation."),
    Story("Arctic University Computing Lab", "no-research", "narvik-h200",
          "Arctic climate downscaling", 450_000, -5, 30, submitted_days_ago=1.5,
          approve="Urgent: the climate assessment is due.", used_fraction=0.9,
          purpose="Neural downscaling of climate projections for northern Norway."),
    Story("Helsinki Language Technology Lab", "eea-research-innovation", "narvik-gb300-a",
          "Finno-Ugric multilingual pretraining", 40_000, 5, 30, submitted_days_ago=3,
          purpose="Pretraining a multilingual model for Finnic and Sámi languages."),
    Story("Arctic University Computing Lab", "no-research", "narvik-gb300-a",
          "Clinical notes triage model", 60_000, 14, 40, submitted_days_ago=33,
          risk_category="high",
          purpose="A model that triages clinical notes for hospital staff (high risk)."),
    Story("Fjord AI AS", "no-startups-fast-lane", "narvik-h200", "Speech model sprint", 50_000,
          30, 4, submitted_days_ago=2),
    Story("Helsinki Language Technology Lab", "eea-research-innovation", "narvik-h200",
          "Machine translation burst", 250_000, 40, 10, submitted_days_ago=1),
    Story("Nordlys Robotics AS", "no-startups-fast-lane", "narvik-gb300-a",
          "Robot grasping policies", 2_000, 7, 7, submitted_days_ago=1,
          purpose="Reinforcement learning for warehouse robots."),
]  # fmt: skip

# Half a day's maintenance of the H200 pool's cooling loop, three days long, after the
# allocations were granted: capacity shrinks under them, nothing is cancelled, operators see
# the overcommitted days and the allocations at risk.
MAINTENANCE = (20, 3, 512)  # starts in days, lasts days, GPUs left in service

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
            self._story(operator, created)
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
        today = timezone.localdate()
        phase_one = today - timedelta(days=PHASE_ONE_DAYS_AGO)
        expansion = today + timedelta(days=EXPANSION_IN_DAYS)
        for name, power, online_from in (
            ("Phase 1", Decimal("230"), phase_one),
            ("Phase 2", Decimal("290"), expansion),
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
            ("narvik-gb300-a", "GB300", 100_000, phase_one),
            ("narvik-gb300-b", "GB300", 130_000, expansion),
            ("narvik-h200", "H200", 2_048, phase_one),
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

    def _story(self, operator: User, created: list[str]) -> None:
        """The applications of the story, decided as the worker and the reviewer would, the
        usage of the allocations so far, then the maintenance window. Told once."""
        if Application.objects.exists():
            return
        today = timezone.localdate()
        now = timezone.now()
        organizations = {
            organization.name: organization for organization in Organization.objects.all()
        }
        programs = {program.slug: program for program in Program.objects.all()}
        pools = {pool.name: pool for pool in GpuPool.objects.all()}
        records: list[dict[str, Any]] = []
        for story in STORIES:
            organization = organizations[story.organization]
            applicant = organization.memberships.order_by("created_at").first()
            assert applicant is not None
            start = today + timedelta(days=story.start)
            end = start + timedelta(days=story.days - 1)
            application = application_services.application_create(
                applicant=applicant.user,
                values={
                    "organization": organization,
                    "program": programs[story.program],
                    "pool": pools[story.pool],
                    "title": story.title,
                    "summary": story.purpose,
                    "gpu_hours": story.gpu_hours,
                    "start_date": start,
                    "end_date": end,
                    "purpose": story.purpose,
                    "risk_category": story.risk_category,
                },
                as_of=min(start, today),
            )
            submitted_at = now - timedelta(days=story.submitted_days_ago)
            application = application_services.application_submit(
                application=application, actor=applicant.user, submitted_at=submitted_at
            )
            decided = application_services.application_decide(
                application_id=application.pk,
                submission=application.submission,
                as_of=min(start, today),
            )
            assert decided is not None
            if story.approve and decided.status == ApplicationStatus.IN_REVIEW:
                decided = application_services.application_approve(
                    application=decided, actor=operator, note=story.approve
                )
            created.append(f"application “{story.title}” ({decided.status})")
            if story.used_fraction and decided.status == ApplicationStatus.APPROVED:
                records += self._usage(decided, story, today)
        if records:
            result = usage_ingest(records=records, source=USAGE_SOURCE)
            created.append(f"{result.accepted} usage records")
        starts, length, gpus = MAINTENANCE
        pool = pools["narvik-h200"]
        for offset, in_service, note in (
            (starts, gpus, "cooling loop maintenance"),
            (starts + length, 2_048, "back from maintenance"),
        ):
            services.inventory_create(
                model=CapacityEvent,
                values={
                    "pool": pool,
                    "effective_from": today + timedelta(days=offset),
                    "gpus_in_service": in_service,
                    "note": note,
                },
                actor=operator,
            )
        created.append("a maintenance window on narvik-h200")

    def _usage(self, application: Application, story: Story, today: date) -> list[dict[str, Any]]:
        """Two jobs a day from the window's start to yesterday, using `used_fraction` of
        each day's share."""
        allocation = application.granted_allocation
        daily = story.gpu_hours / story.days
        records = []
        day = allocation.start_date
        while day < today:
            for job in range(2):
                started = timezone.make_aware(datetime.combine(day, time(2 + 10 * job)))
                records.append(
                    {
                        "source": USAGE_SOURCE,
                        "external_id": f"{allocation.pk.hex[:8]}-{day:%Y%m%d}-{job}",
                        "allocation": allocation.pk,
                        "gpu_seconds": int(daily * story.used_fraction / 2 * 3600),
                        "started_at": started,
                        "ended_at": started + timedelta(hours=8),
                        "energy_kwh": None,
                    }
                )
            day += timedelta(days=1)
        return records
