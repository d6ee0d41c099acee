"""Verification, the inventory, programs and memberships: the services check who acts, so a
caller that forgot to (a view, an admin action, a script) cannot skip the rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from accounts import services
from accounts.authz import SYSTEM
from accounts.models import Membership, MembershipRole
from allocations.models import Program, Site
from allocations.services import inventory
from audit.models import AuditEvent
from portal.errors import NotAllowed
from tests.factories import (
    MembershipFactory,
    OperatorFactory,
    OrganizationFactory,
    ProgramFactory,
    SiteFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ONLY_OPERATORS = "Only operators may do this."


def test_a_member_cannot_verify_their_own_organization_through_the_service():
    # given
    organization = OrganizationFactory(verified_at=None)
    admin = MembershipFactory(organization=organization, role=MembershipRole.ADMIN).user

    # when / then
    with pytest.raises(NotAllowed) as refusal:
        services.organization_verify(organization=organization, actor=admin)
    assert refusal.value.message == ONLY_OPERATORS
    organization.refresh_from_db()
    assert organization.verified_at is None
    assert not AuditEvent.objects.filter(verb="organization.verify").exists()


def test_an_operator_verifies_through_the_service():
    # given
    organization = OrganizationFactory(verified_at=None)
    operator = OperatorFactory()

    # when
    services.organization_verify(organization=organization, actor=operator)

    # then
    organization.refresh_from_db()
    assert organization.verified_by == operator


def test_a_user_cannot_write_the_inventory_through_the_service():
    # given
    user = UserFactory()
    site = SiteFactory()

    # when / then: create, update, delete
    with pytest.raises(NotAllowed):
        inventory.inventory_create(
            model=Site, values={"name": "rogue", "country": "NO", "pue": Decimal("1.1")}, actor=user
        )
    with pytest.raises(NotAllowed):
        inventory.inventory_update(instance=site, values={"pue": Decimal("1.5")}, actor=user)
    with pytest.raises(NotAllowed):
        inventory.inventory_delete(instance=site, actor=user)
    assert list(Site.objects.values_list("name", "pue")) == [(site.name, site.pue)]
    assert not AuditEvent.objects.exists()


def test_nobody_writes_the_inventory_without_an_identity():
    # when / then
    with pytest.raises(NotAllowed):
        inventory.inventory_create(
            model=Site, values={"name": "ghost", "country": "NO", "pue": Decimal("1.1")}, actor=None
        )  # type: ignore[arg-type]
    assert not Site.objects.exists()


def test_the_system_writes_the_inventory_and_the_trail_names_no_person():
    # when
    site = inventory.inventory_create(
        model=Site, values={"name": "narvik", "country": "NO", "pue": Decimal("1.1")}, actor=SYSTEM
    )

    # then
    assert AuditEvent.objects.get(target_id=site.pk).actor is None


def test_a_user_cannot_write_programs_or_their_reviewers_through_the_service():
    # given
    user = UserFactory()
    program = ProgramFactory(min_gpu_hours=1)

    # when / then
    with pytest.raises(NotAllowed):
        inventory.program_update(program=program, values={"min_gpu_hours": 5}, actor=user)
    with pytest.raises(NotAllowed):
        inventory.program_set_reviewers(program=program, reviewers=[user], actor=user)
    with pytest.raises(NotAllowed):
        inventory.program_create(
            values={"name": "Mine", "slug": "mine", "start": date(2026, 1, 1)}, actor=user
        )
    program.refresh_from_db()
    assert program.min_gpu_hours == 1
    assert list(program.reviewers.all()) == []
    assert Program.objects.count() == 1


def test_a_member_who_is_no_admin_cannot_remove_a_member_through_the_service():
    # given
    organization = OrganizationFactory()
    admin = MembershipFactory(organization=organization, role=MembershipRole.ADMIN)
    member = MembershipFactory(organization=organization, role=MembershipRole.MEMBER)

    # when / then
    with pytest.raises(NotAllowed) as refusal:
        services.membership_remove(membership=admin, actor=member.user)
    assert refusal.value.message == "Only the organization's admins may do this."
    assert Membership.objects.filter(organization=organization).count() == 2


def test_an_outsider_cannot_remove_a_member_and_is_not_told_the_organization_exists():
    # given
    organization = OrganizationFactory()
    MembershipFactory(organization=organization, role=MembershipRole.ADMIN)
    member = MembershipFactory(organization=organization, role=MembershipRole.MEMBER)

    # when / then
    with pytest.raises(NotAllowed) as refusal:
        services.membership_remove(membership=member, actor=UserFactory())
    assert refusal.value.status_code == 404
    assert Membership.objects.filter(organization=organization).count() == 2


def test_staff_without_the_model_permission_cannot_write_the_inventory_in_the_admin():
    # given: staff who may only look at sites
    from django.contrib.auth.models import Permission
    from django.test import Client
    from django.urls import reverse

    viewer = OperatorFactory()
    viewer.user_permissions.set(Permission.objects.filter(codename="view_site"))
    client = Client()
    client.force_login(viewer)

    # when
    response = client.post(
        reverse("admin:allocations_site_add"),
        {"name": "rogue", "country": "NO", "pue": "1.10", "power_phases-TOTAL_FORMS": "0",
         "power_phases-INITIAL_FORMS": "0"},
    )  # fmt: skip

    # then
    assert response.status_code == 403
    assert not Site.objects.exists()
    assert not AuditEvent.objects.exists()
