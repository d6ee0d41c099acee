from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from accounts.models import AccessToken, AuditEvent, Organization, User
from accounts.services import token_create
from allocations.models import Application, GpuPool, PowerPhase, Program, Site
from tests.factories import (
    OperatorFactory,
    OrganizationFactory,
    PoolFactory,
    ProgramFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser() -> User:
    return OperatorFactory(email="root@narvik.example", is_superuser=True)


@pytest.fixture
def browser(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def _admin_url(model: type, view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m.__name__)
def test_every_changelist_loads_with_its_filters_and_search(browser, model):
    # given: a row of the inventory to list
    PoolFactory()

    # when
    response = browser.get(_admin_url(model, "changelist"), {"q": "x"})

    # then
    assert response.status_code == 200


@pytest.mark.parametrize("model", [Site, GpuPool, Program, User], ids=lambda m: m.__name__)
def test_add_pages_of_editable_models_load(browser, model):
    # when
    response = browser.get(_admin_url(model, "add"))

    # then
    assert response.status_code == 200


def test_saving_a_site_with_a_power_phase_goes_through_the_services(browser, superuser):
    # given
    form = {
        "name": "Mo i Rana",
        "country": "NO",
        "pue": "1.15",
        "power_phases-TOTAL_FORMS": "1",
        "power_phases-INITIAL_FORMS": "0",
        "power_phases-0-name": "Phase 1",
        "power_phases-0-power_mw": "50",
        "power_phases-0-online_from": "2027-01-01",
    }

    # when
    response = browser.post(_admin_url(Site, "add"), form)

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    site = Site.objects.get(name="Mo i Rana")
    assert PowerPhase.objects.get(site=site).power_mw == Decimal("50")
    verbs = set(AuditEvent.objects.filter(actor=superuser).values_list("verb", flat=True))
    assert {"site.create", "powerphase.create"} <= verbs


def test_a_program_share_past_one_is_refused_and_nothing_is_written(browser):
    # given
    ProgramFactory(nominal_share=Decimal("0.9"))
    before = Program.objects.count()

    # when
    response = browser.post(
        _admin_url(Program, "add"),
        {
            "name": "Greedy",
            "slug": "greedy",
            "priority": "5",
            "eligible_countries": "[]",
            "eligible_kinds": "[]",
            "min_gpu_hours": "1",
            "max_gpu_hours": "100",
            "max_duration_days": "10",
            "auto_approve_max_gpu_hours": "0",
            "org_cap_gpu_hours": "100",
            "nominal_share": "0.2",
            "lending_limit": "0",
            "borrowing_limit": "0",
            "turnaround_days": "1",
        },
    )

    # then
    assert response.status_code == 200
    assert "sum to more than 1" in response.content.decode()
    assert Program.objects.count() == before


def test_deleting_a_site_that_has_a_pool_shows_an_error_and_deletes_nothing(browser):
    # given
    pool = PoolFactory()

    # when
    response = browser.post(_admin_url(Site, "delete", pool.site.pk), {"post": "yes"}, follow=True)

    # then
    assert response.status_code == 200
    assert "Cannot delete site" in response.content.decode()  # the admin names the pool
    assert Site.objects.filter(pk=pool.site.pk).exists()


def test_the_verify_action_verifies_and_audits(browser, superuser):
    # given
    organization = OrganizationFactory(verified_at=None)

    # when
    browser.post(
        _admin_url(Organization, "changelist"),
        {"action": "verify_selected", "_selected_action": [str(organization.pk)]},
    )

    # then
    organization.refresh_from_db()
    assert organization.verified_at is not None
    assert AuditEvent.objects.filter(verb="organization.verify", actor=superuser).count() == 1


def test_the_revoke_action_revokes_and_the_digest_is_never_shown(browser, superuser):
    # given
    issued = token_create(user=superuser, name="laptop")

    # when
    page = browser.get(_admin_url(AccessToken, "change", issued.token.pk))
    browser.post(
        _admin_url(AccessToken, "changelist"),
        {"action": "revoke_selected", "_selected_action": [str(issued.token.pk)]},
    )

    # then
    assert issued.token.digest not in page.content.decode()
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None


def test_the_capacity_chart_page_is_linked_from_the_sites(browser):
    # given
    site = SiteFactory()

    # when
    response = browser.get(_admin_url(Site, "changelist"))

    # then
    assert f"/admin/capacity/?site={site.pk}" in response.content.decode()


def test_a_reviewer_approves_from_the_review_queue(browser, superuser):
    from allocations.models.demand import ReviewQueueItem
    from allocations.services import applications as services
    from tests.factories import (
        CapacityEventFactory,
        MembershipFactory,
        PowerPhaseFactory,
        UserFactory,
    )

    # given: an application in review in a program the operator reviews
    pool = PoolFactory()
    CapacityEventFactory(pool=pool, effective_from=date(2020, 1, 1), gpus_in_service=1000)
    PowerPhaseFactory(site=pool.site, online_from=date(2020, 1, 1))
    program = ProgramFactory(auto_approve_max_gpu_hours=0)
    program.reviewers.add(superuser)
    organization = OrganizationFactory()
    founder = UserFactory()
    MembershipFactory(user=founder, organization=organization)
    from django.utils import timezone

    today = timezone.localdate()
    application = services.application_create(
        applicant=founder,
        values={
            "organization": organization, "program": program, "pool": pool, "title": "LLM",
            "gpu_hours": 500, "start_date": today, "end_date": today,
        },
    )  # fmt: skip
    submitted = services.application_submit(application=application, actor=founder)
    services.application_decide(application_id=submitted.pk, submission=submitted.submission)
    assert Application.objects.get(pk=application.pk).status == "in_review"

    # when
    browser.post(
        _admin_url(ReviewQueueItem, "changelist"),
        {"action": "approve_selected", "_selected_action": [str(application.pk)],
         "reason": "Good plan."},
    )  # fmt: skip

    # then
    approved = Application.objects.get(pk=application.pk)
    assert approved.status == "approved"
    assert approved.reasons == [{"code": "approved_by_reviewer", "message": "Good plan."}]
