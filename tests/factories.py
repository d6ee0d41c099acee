from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import Membership, MembershipRole, Organization, OrganizationKind, User
from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Program, Site

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class OperatorFactory(UserFactory):
    email = factory.Sequence(lambda n: f"operator{n}@example.org")
    is_staff = True


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Fjord AI {n} AS")
    kind = OrganizationKind.STARTUP
    country = "NO"
    registry_number = ""
    verified_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = MembershipRole.MEMBER


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"site-{n}")
    country = "NO"
    pue = Decimal("1.10")


class PowerPhaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PowerPhase

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"phase {n}")
    power_mw = Decimal("230")
    online_from = date(2026, 1, 1)
    online_until = None


class AcceleratorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AcceleratorModel
        django_get_or_create = ("name",)

    name = "GB300"
    board_power_w = 1400
    it_power_w = 1900
    peak_bf16_flops = 2_500_000_000_000_000


class PoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GpuPool

    name = factory.Sequence(lambda n: f"pool-{n}")
    site = factory.SubFactory(SiteFactory)
    accelerator = factory.SubFactory(AcceleratorFactory)
    availability = Decimal("0.950")


class CapacityEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CapacityEvent

    pool = factory.SubFactory(PoolFactory)
    effective_from = date(2026, 1, 1)
    gpus_in_service = 1000


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    name = factory.Sequence(lambda n: f"Program {n}")
    slug = factory.Sequence(lambda n: f"program-{n}")
    priority = 10
    eligible_countries = factory.LazyFunction(lambda: ["NO"])
    eligible_kinds = factory.LazyFunction(list)
    min_gpu_hours = 1
    max_gpu_hours = 50_000
    max_duration_days = 90
    auto_approve_max_gpu_hours = 10_000
    org_cap_gpu_hours = 100_000
    nominal_share = Decimal("0.2000")
    lending_limit = Decimal("0.5000")
    borrowing_limit = Decimal("0.1000")
    turnaround_days = 2


def AllocationLineage(
    *, pool: GpuPool, organization: Organization, lineage: str, gpu_hours: int
) -> object:
    """An approved allocation of a model lineage, written directly: for the AI-Act sum only."""
    from allocations.models import Allocation, Application
    from allocations.models.demand import lineage_key

    program = ProgramFactory(nominal_share=Decimal("0"))
    applicant = UserFactory()
    application = Application.objects.create(
        organization=organization,
        program=program,
        pool=pool,
        applicant=applicant,
        title=f"{lineage} pre-training",
        gpu_hours=gpu_hours,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 3, 1),
        model_lineage=lineage,
        status="approved",
    )
    return Allocation.objects.create(
        application=application,
        organization=organization,
        program=program,
        pool=pool,
        start_date=application.start_date,
        end_date=application.end_date,
        granted_gpu_hours=gpu_hours,
        model_lineage=lineage,
        lineage_key=lineage_key(lineage),
        status="expired",
    )
