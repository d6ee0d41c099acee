"""Operators' actions on objects: a user who may not see the object is told it does not
exist (404), as everywhere else in the API; one who sees it is told they may not (403)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import Organization
from allocations.models import Allocation
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

NOT_FOUND = {"code": "not_found", "message": "Not found."}
ONLY_OPERATORS = {"code": "permission_denied", "message": "Only operators may do this."}


@pytest.fixture
def allocation(draft, decide, today) -> Allocation:
    application = decide(draft(gpu_hours=500, start_date=today, end_date=today + timedelta(9)))
    return Allocation.objects.get(application=application)


@pytest.mark.parametrize("action", ["allocation-suspend", "allocation-resume"])
def test_suspend_and_resume_of_an_allocation_one_cannot_see_answer_404(
    action, allocation, client_for
):
    # given: a user of no organization of the allocation's
    stranger = UserFactory(email="stranger@elsewhere.example")
    status_before = allocation.status

    # when
    response = client_for(stranger).post(reverse(action, kwargs={"pk": allocation.pk}))

    # then: as for an allocation that does not exist, and nothing changed
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    allocation.refresh_from_db()
    assert allocation.status == status_before


def test_suspend_by_a_member_who_sees_the_allocation_answers_403(
    allocation, researcher, client_for
):
    # when
    response = client_for(researcher).post(
        reverse("allocation-suspend", kwargs={"pk": allocation.pk})
    )

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Only operators may do this.",
    }
    allocation.refresh_from_db()
    assert allocation.status == "active"


def test_verifying_an_organization_one_cannot_see_answers_404(client_for):
    # given: an unverified organization and a user who is no member of it
    organization = OrganizationFactory(name="Hidden AS", verified_at=None)
    stranger = UserFactory(email="stranger@elsewhere.example")

    # when
    response = client_for(stranger).post(
        reverse("organization-verify", kwargs={"organization_id": organization.pk})
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert Organization.objects.get(pk=organization.pk).verified_at is None


def test_verifying_ones_own_organization_answers_403(startup, founder, client_for):
    # given: the organization's own admin, no operator
    startup.verified_at = None
    startup.save(update_fields=["verified_at"])

    # when
    response = client_for(founder).post(
        reverse("organization-verify", kwargs={"organization_id": startup.pk})
    )

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Only operators may do this.",
    }
    assert Organization.objects.get(pk=startup.pk).verified_at is None
