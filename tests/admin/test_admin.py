"""The operators' admin: every page loads, lists search and filter, and every write goes
through the services (proved by the audit events they write), refusals shown as messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.models import DELETION, LogEntry
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import allocations.admin
from accounts.models import AccessToken, Membership, Organization, User
from accounts.services import token_create
from allocations.models import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PoolDay,
    PowerPhase,
    Program,
    Site,
)
from audit.models import AuditEvent
from tests.admin.conftest import Inventory
from tests.factories import (
    AcceleratorFactory,
    CapacityEventFactory,
    OperatorFactory,
    OrganizationFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

URL = Callable[..., str]
Messages = Callable[[Any], list[str]]

ALL_MODELS = [User, Organization, Membership, AccessToken, AuditEvent, Site, AcceleratorModel,
              GpuPool, Program]  # fmt: skip
EDITABLE_MODELS = [User, Site, AcceleratorModel, GpuPool, Program]
READ_ONLY_MODELS = [Organization, Membership, AccessToken, AuditEvent]


def _names(model: type[Model]) -> str:
    return model.__name__


def _listed(response: Any) -> list[Any]:
    return list(response.context["cl"].result_list)


def _verbs(actor: User) -> list[str]:
    return list(AuditEvent.objects.filter(actor=actor).values_list("verb", flat=True))


# Pages


@pytest.mark.parametrize("model", ALL_MODELS, ids=_names)
def test_every_changelist_loads_with_its_rows(
    browser: Client, admin_url: URL, inventory: Inventory, model: type[Model]
) -> None:
    # when
    response = browser.get(admin_url(model, "changelist"))

    # then
    assert response.status_code == 200
    assert inventory.row_of(model) in _listed(response)


@pytest.mark.parametrize("model", ALL_MODELS, ids=_names)
def test_every_change_page_loads(
    browser: Client, admin_url: URL, inventory: Inventory, model: type[Model]
) -> None:
    # given
    row = inventory.row_of(model)

    # when
    response = browser.get(admin_url(model, "change", row.pk))

    # then: the page is about that row, and only the editable models offer to save it
    assert response.status_code == 200
    assert response.context["original"] == row
    assert str(row) in response.content.decode()
    assert ('name="_save"' in response.content.decode()) == (model in EDITABLE_MODELS)


@pytest.mark.parametrize("model", EDITABLE_MODELS, ids=_names)
def test_add_pages_of_editable_models_load(
    browser: Client, admin_url: URL, model: type[Model]
) -> None:
    # when
    response = browser.get(admin_url(model, "add"))

    # then: an empty form with its save button
    assert response.status_code == 200
    assert response.context["add"] is True
    assert response.context["adminform"].form.instance._state.adding
    assert 'name="_save"' in response.content.decode()


@pytest.mark.parametrize("model", READ_ONLY_MODELS, ids=_names)
def test_read_only_models_have_no_add_page(
    browser: Client, admin_url: URL, model: type[Model]
) -> None:
    # when
    response = browser.get(admin_url(model, "add"))

    # then
    assert response.status_code == 403


@pytest.mark.parametrize("model", list(django_admin.site._registry), ids=_names)
def test_every_registered_changelist_answers_a_search(
    browser: Client, admin_url: URL, model: type[Model]
) -> None:
    # given: a pool, so that the inventory lists have a row the search must not match
    PoolFactory()

    # when
    response = browser.get(admin_url(model, "changelist"), {"q": "x"})

    # then: the list is searched, and the operator sees the search they typed
    assert response.status_code == 200
    assert response.context["cl"].query == "x"
    if django_admin.site._registry[model].search_fields:
        assert 'name="q" value="x"' in response.content.decode()


def test_the_admin_asks_anonymous_visitors_to_log_in(admin_url: URL) -> None:
    # when
    response = Client().get(admin_url(Site, "changelist"))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# List columns, search and filters


def test_organizations_are_searched_by_registry_number_and_filtered_by_verification(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    unverified = OrganizationFactory(name="Tromsø Lab", registry_number="", verified_at=None)
    url = admin_url(Organization, "changelist")

    # when
    by_number = browser.get(url, {"q": "923609016"})
    by_name = browser.get(url, {"q": "tromsø"})
    not_verified = browser.get(url, {"verified": "no"})
    verified = browser.get(url, {"verified": "yes", "kind__exact": "startup"})

    # then
    assert _listed(by_number) == [inventory.organization]
    assert _listed(by_name) == [unverified]
    assert _listed(not_verified) == [unverified]
    assert _listed(verified) == [inventory.organization]


def test_pools_show_the_gpus_in_service_today_and_filter_by_site(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given: an expansion that has not happened yet, and a pool at another site
    CapacityEventFactory(
        pool=inventory.pool,
        effective_from=timezone.localdate() + timedelta(days=10),
        gpus_in_service=5000,
    )
    elsewhere = PoolFactory(name="bergen-h200", site=SiteFactory(name="bergen"))
    url = admin_url(GpuPool, "changelist")

    # when
    at_narvik = browser.get(url, {"site__id__exact": str(inventory.site.pk)})
    searched = browser.get(url, {"q": "bergen"})

    # then
    assert _listed(at_narvik) == [inventory.pool]
    assert _listed(at_narvik)[0].gpus_in_service_today == 1000
    assert _listed(searched) == [elsewhere]
    assert _listed(searched)[0].gpus_in_service_today is None  # no event yet: shown as 0


def test_sites_show_the_power_online_today(browser: Client, admin_url: URL) -> None:
    # given: 230 MW online, a curtailment of 30 MW now, a finished and a future phase
    today = timezone.localdate()
    site = SiteFactory(name="narvik")
    PowerPhaseFactory(site=site, power_mw=Decimal(230), online_from=today - timedelta(days=99))
    PowerPhaseFactory(
        site=site,
        power_mw=Decimal(-30),
        online_from=today - timedelta(days=1),
        online_until=today + timedelta(days=1),
    )
    PowerPhaseFactory(
        site=site,
        power_mw=Decimal(50),
        online_from=today - timedelta(days=9),
        online_until=today - timedelta(days=1),
    )
    PowerPhaseFactory(site=site, power_mw=Decimal(290), online_from=today + timedelta(days=1))
    PoolFactory(site=site)

    # when
    response = browser.get(admin_url(Site, "changelist"))

    # then
    (row,) = _listed(response)
    assert row.power_today == Decimal(200)
    assert row.pool_total == 1
    assert f"/admin/capacity/?site={site.pk}" in response.content.decode()


@pytest.mark.parametrize("model", [Site, GpuPool, Program, Organization], ids=_names)
def test_changelist_queries_do_not_grow_with_the_rows(
    browser: Client, admin_url: URL, model: type[Model]
) -> None:
    # given
    def add_rows() -> None:
        pool = PoolFactory()
        CapacityEventFactory(pool=pool, effective_from=date(2020, 1, 1))
        PowerPhaseFactory(site=pool.site, online_from=date(2020, 1, 1))
        ProgramFactory(nominal_share=Decimal("0.01"))
        OrganizationFactory()

    add_rows()
    with CaptureQueriesContext(connection) as one_row:
        browser.get(admin_url(model, "changelist"))
    for _ in range(3):
        add_rows()

    # when
    with CaptureQueriesContext(connection) as four_rows:
        response = browser.get(admin_url(model, "changelist"))

    # then
    assert len(_listed(response)) >= 4
    assert len(four_rows) == len(one_row)


def test_the_audit_trail_is_searched_by_target_and_filtered_by_verb_and_type(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    url = admin_url(AuditEvent, "changelist")
    site_type = AuditEvent.objects.get(verb="site.create").target_type_id

    # when
    searched = browser.get(url, {"q": "narvik-gb300"})
    by_verb = browser.get(url, {"verb": "powerphase.create"})
    by_type = browser.get(url, {"target_type__id__exact": str(site_type)})

    # then
    assert {event.verb for event in _listed(searched)} == {
        "gpupool.create",
        "capacityevent.create",  # "narvik-gb300-a: 1000 GPUs from …"
    }
    assert [event.target_id for event in _listed(by_verb)] == [inventory.phase.pk]
    assert [event.verb for event in _listed(by_type)] == ["site.create"]


def test_tokens_are_searched_by_prefix_and_filtered_by_status(
    browser: Client, admin_url: URL, inventory: Inventory, superuser: User
) -> None:
    # given
    revoked = token_create(user=superuser, name="old ci").token
    AccessToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    url = admin_url(AccessToken, "changelist")

    # when
    searched = browser.get(url, {"q": inventory.token.prefix})
    active = browser.get(url, {"status": "active"})
    revoked_only = browser.get(url, {"status": "revoked"})

    # then
    assert _listed(searched) == [inventory.token]
    assert _listed(active) == [inventory.token]
    assert _listed(revoked_only) == [revoked]


def test_programs_and_users_are_searched_and_filtered(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    closed = ProgramFactory(name="UK AIRR", slug="airr", is_open=False)

    # when
    programs = browser.get(admin_url(Program, "changelist"), {"q": "sigma2"})
    closed_programs = browser.get(admin_url(Program, "changelist"), {"is_open__exact": "0"})
    users = browser.get(admin_url(User, "changelist"), {"q": "fjord.example"})
    staff = browser.get(admin_url(User, "changelist"), {"is_staff__exact": "1"})

    # then
    assert _listed(programs) == [inventory.program]
    assert _listed(closed_programs) == [closed]
    assert _listed(users) == [inventory.membership.user]
    assert inventory.membership.user not in _listed(staff)


# Inventory writes go through the services


def test_saving_a_site_with_a_power_phase_writes_audit_events(
    browser: Client, admin_url: URL, superuser: User
) -> None:
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
    response = browser.post(admin_url(Site, "add"), form)

    # then
    site = Site.objects.get(name="Mo i Rana")
    assert response.status_code == 302
    assert response["Location"] == admin_url(Site, "changelist")
    assert PowerPhase.objects.get(site=site).power_mw == Decimal(50)
    assert _verbs(superuser) == ["site.create", "powerphase.create"]
    created = AuditEvent.objects.get(verb="site.create")
    assert created.target_id == site.pk
    assert created.after["pue"] == "1.15"


def test_editing_and_deleting_power_phases_inline_goes_through_the_services(
    browser: Client, admin_url: URL, superuser: User
) -> None:
    # given
    site = SiteFactory(name="narvik")
    kept = PowerPhaseFactory(site=site, name="Phase 1", power_mw=Decimal(230))
    dropped = PowerPhaseFactory(site=site, name="Phase 2", power_mw=Decimal(290))
    form = {
        "name": "narvik",
        "country": "NO",
        "pue": "1.10",
        "power_phases-TOTAL_FORMS": "2",
        "power_phases-INITIAL_FORMS": "2",
        "power_phases-0-id": str(kept.pk),
        "power_phases-0-site": str(site.pk),
        "power_phases-0-name": "Phase 1",
        "power_phases-0-power_mw": "200",
        "power_phases-0-online_from": "2026-01-01",
        "power_phases-1-id": str(dropped.pk),
        "power_phases-1-site": str(site.pk),
        "power_phases-1-name": "Phase 2",
        "power_phases-1-power_mw": "290",
        "power_phases-1-online_from": "2026-01-01",
        "power_phases-1-DELETE": "on",
    }

    # when
    response = browser.post(admin_url(Site, "change", site.pk), form)

    # then
    assert response.status_code == 302
    assert list(PowerPhase.objects.values_list("name", "power_mw")) == [("Phase 1", Decimal(200))]
    assert sorted(_verbs(superuser)) == ["powerphase.delete", "powerphase.update"]
    update = AuditEvent.objects.get(verb="powerphase.update")
    assert (update.before, update.target_id) == ({"power_mw": "230.000"}, kept.pk)


def test_a_capacity_event_added_in_the_pool_page_rewrites_the_ledger(
    browser: Client,
    admin_url: URL,
    superuser: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given: a pool with no GPUs yet and a ledger row for tomorrow
    pool = PoolFactory(name="narvik-gb300-b", availability=Decimal("0.950"))
    tomorrow = timezone.localdate() + timedelta(days=1)
    PoolDay.objects.create(pool=pool, day=tomorrow, capacity_gpu_hours=0)
    form = {
        "name": pool.name,
        "site": str(pool.site.pk),
        "accelerator": str(pool.accelerator.pk),
        "availability": "0.950",
        "is_open": "on",
        "capacity_events-TOTAL_FORMS": "1",
        "capacity_events-INITIAL_FORMS": "0",
        "capacity_events-0-effective_from": timezone.localdate().isoformat(),
        "capacity_events-0-gpus_in_service": "100",
        "capacity_events-0-note": "first racks",
    }

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = browser.post(admin_url(GpuPool, "change", pool.pk), form)

    # then: 100 GPUs × 24 h × 0.95, and the waitlist is re-checked after commit
    assert response.status_code == 302
    assert PoolDay.objects.get(pool=pool, day=tomorrow).capacity_gpu_hours == 2280
    assert _verbs(superuser) == ["capacityevent.create"]
    assert len(callbacks) == 1


def test_adding_a_pool_with_its_capacity_events_audits_both(
    browser: Client, admin_url: URL, superuser: User
) -> None:
    # given
    site, accelerator = SiteFactory(), AcceleratorFactory()
    form = {
        "name": "narvik-gb300-c",
        "site": str(site.pk),
        "accelerator": str(accelerator.pk),
        "availability": "0.900",
        "is_open": "on",
        "capacity_events-TOTAL_FORMS": "2",
        "capacity_events-INITIAL_FORMS": "0",
        "capacity_events-0-effective_from": "2026-03-01",
        "capacity_events-0-gpus_in_service": "4000",
        "capacity_events-1-effective_from": "2026-06-01",
        "capacity_events-1-gpus_in_service": "8000",
    }

    # when
    response = browser.post(admin_url(GpuPool, "add"), form)

    # then
    pool = GpuPool.objects.get(name="narvik-gb300-c")
    assert response.status_code == 302
    assert list(pool.capacity_events.values_list("gpus_in_service", flat=True)) == [4000, 8000]
    assert _verbs(superuser) == ["gpupool.create", "capacityevent.create", "capacityevent.create"]
    log = LogEntry.objects.get(object_id=str(pool.pk))
    assert log.user_id == superuser.pk


# Programs


def test_adding_a_program_with_reviewers_goes_through_the_services(
    browser: Client,
    admin_url: URL,
    superuser: User,
    program_form: Callable[..., dict[str, Any]],
) -> None:
    # given
    reviewer = OperatorFactory(email="reviewer@sigma2.example")

    # when
    response = browser.post(admin_url(Program, "add"), program_form(reviewers=[reviewer.pk]))

    # then
    program = Program.objects.get(slug="fast-lane")
    assert response.status_code == 302
    assert program.eligible_countries == ["NO", "SE"]
    assert program.eligible_kinds == ["startup", "university"]
    assert list(program.reviewers.all()) == [reviewer]
    assert _verbs(superuser) == ["program.create", "program.reviewers"]


def test_changing_a_program_audits_only_what_changed(
    browser: Client,
    admin_url: URL,
    superuser: User,
    program_form: Callable[..., dict[str, Any]],
) -> None:
    # given
    program = ProgramFactory(name="AI Factory Fast Lane", slug="fast-lane", priority=5)
    body = program_form(
        eligible_countries=["NO"], eligible_kinds=[], max_gpu_hours="50000",
        max_duration_days="90", auto_approve_max_gpu_hours="10000", org_cap_gpu_hours="100000",
        turnaround_days="2", nominal_share="0.2", borrowing_limit="0.1", lending_limit="0.5",
    )  # fmt: skip
    body["turnaround_days"] = "5"

    # when
    response = browser.post(admin_url(Program, "change", program.pk), body)

    # then
    assert response.status_code == 302
    assert _verbs(superuser) == ["program.update"]
    event = AuditEvent.objects.get(verb="program.update")
    assert (event.before, event.after) == ({"turnaround_days": 2}, {"turnaround_days": 5})


def test_a_program_share_past_one_is_shown_on_the_form_and_nothing_is_written(
    browser: Client,
    admin_url: URL,
    superuser: User,
    program_form: Callable[..., dict[str, Any]],
) -> None:
    # given
    ProgramFactory(nominal_share=Decimal("0.9"))

    # when
    response = browser.post(admin_url(Program, "add"), program_form(nominal_share="0.2"))

    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["nominal_share"] == [
        "The shares of all programs would sum to more than 1: others hold 0.9000."
    ]
    assert not Program.objects.filter(slug="fast-lane").exists()
    assert _verbs(superuser) == []


def test_a_share_taken_after_the_form_checked_is_refused_by_the_service(
    browser: Client,
    admin_url: URL,
    superuser: User,
    messages_of: Messages,
    program_form: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: the form read the shares before another operator's program took 0.9
    ProgramFactory(nominal_share=Decimal("0.9"))
    monkeypatch.setattr(allocations.admin, "_shares_of_others", lambda program: Decimal(0))
    reviewer = OperatorFactory()

    # when
    response = browser.post(
        admin_url(Program, "add"), program_form(nominal_share="0.2", reviewers=[reviewer.pk])
    )

    # then: an error message, not a 500, and nothing written
    assert response.status_code == 302
    assert response["Location"] == admin_url(Program, "add")
    assert messages_of(response) == [
        "Other programs hold 0.9000 of the pools; 0.2 more would pass 1."
    ]
    assert not Program.objects.filter(slug="fast-lane").exists()
    assert _verbs(superuser) == []
    assert not LogEntry.objects.exists()


# Deletes


def test_deleting_a_site_that_has_a_pool_shows_an_error_and_deletes_nothing(
    browser: Client, admin_url: URL, superuser: User
) -> None:
    # given
    pool = PoolFactory()
    url = admin_url(Site, "delete", pool.site.pk)

    # when
    page = browser.get(url)
    response = browser.post(url, {"post": "yes"})

    # then
    assert page.status_code == 200
    assert "Cannot delete site" in page.content.decode()
    assert response.status_code == 200
    assert Site.objects.filter(pk=pool.site.pk).exists()
    assert _verbs(superuser) == []


def test_bulk_delete_asks_first_then_deletes_through_the_service_and_reports_refusals(
    browser: Client, admin_url: URL, superuser: User, messages_of: Messages
) -> None:
    # given: one site free to go, one that still has a pool
    free = SiteFactory(name="mo-i-rana")
    PowerPhaseFactory(site=free)
    busy = PoolFactory().site
    selected = {"action": "delete_selected", "_selected_action": [str(free.pk), str(busy.pk)]}
    url = admin_url(Site, "changelist")

    # when
    confirmation = browser.post(url, selected)
    response = browser.post(url, {**selected, "post": "yes"})

    # then
    assert confirmation.status_code == 200
    assert "Cannot delete" in confirmation.content.decode()
    assert response.status_code == 302
    assert list(Site.objects.all()) == [busy]
    assert _verbs(superuser) == ["site.delete"]
    assert messages_of(response) == [
        f"{busy}: This site is still referenced and cannot be deleted.",
        "1 deleted.",
    ]
    assert LogEntry.objects.get(action_flag=DELETION).object_id == str(free.pk)


def test_an_unused_accelerator_is_deleted_from_its_page_through_the_service(
    browser: Client, admin_url: URL, superuser: User
) -> None:
    # given
    accelerator = AcceleratorFactory(name="H200")

    # when
    response = browser.post(admin_url(AcceleratorModel, "delete", accelerator.pk), {"post": "yes"})

    # then
    assert response.status_code == 302
    assert not AcceleratorModel.objects.exists()
    assert _verbs(superuser) == ["acceleratormodel.delete"]


def test_a_pool_with_ledger_rows_can_be_deleted_from_its_page(
    browser: Client, admin_url: URL, superuser: User
) -> None:
    # given: ledger rows are derived, read-only in the admin, and go with their pool
    pool = PoolFactory()
    CapacityEventFactory(pool=pool)
    PoolDay.objects.create(pool=pool, day=date(2026, 1, 2), capacity_gpu_hours=22800)

    # when
    response = browser.post(admin_url(GpuPool, "delete", pool.pk), {"post": "yes"})

    # then
    assert response.status_code == 302
    assert not GpuPool.objects.exists()
    assert not PoolDay.objects.exists()
    assert not CapacityEvent.objects.exists()
    assert _verbs(superuser) == ["gpupool.delete"]


# Organizations, tokens, memberships, the audit trail, users


def test_the_verify_action_verifies_audits_and_tells_the_admins(
    browser: Client,
    admin_url: URL,
    superuser: User,
    messages_of: Messages,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given
    pending = OrganizationFactory(verified_at=None)
    verified = OrganizationFactory()
    before = verified.verified_at

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = browser.post(
            admin_url(Organization, "changelist"),
            {"action": "verify_selected", "_selected_action": [str(pending.pk), str(verified.pk)]},
        )

    # then
    pending.refresh_from_db()
    verified.refresh_from_db()
    assert response.status_code == 302
    assert pending.verified_at is not None
    assert pending.verified_by == superuser
    assert verified.verified_at == before
    event = AuditEvent.objects.get(verb="organization.verify")
    assert (event.actor, event.target_id) == (superuser, pending.pk)
    assert len(callbacks) == 1
    assert messages_of(response) == [
        "1 organization(s) verified.",
        "1 organization(s) were already verified.",
    ]


def test_verifying_only_pending_organizations_says_only_how_many_were_verified(
    browser: Client, admin_url: URL, messages_of: Messages
) -> None:
    # given
    pending = OrganizationFactory(verified_at=None)

    # when
    response = browser.post(
        admin_url(Organization, "changelist"),
        {"action": "verify_selected", "_selected_action": [str(pending.pk)]},
    )

    # then: no word about organizations that were already verified
    assert messages_of(response) == ["1 organization(s) verified."]
    pending.refresh_from_db()
    assert pending.verified_at is not None


def test_an_organization_page_is_read_only(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    organization = inventory.organization
    url = admin_url(Organization, "change", organization.pk)

    # when
    page = browser.get(url)
    response = browser.post(url, {"name": "Renamed", "verified_at": ""})

    # then
    assert page.status_code == 200
    assert 'name="verified_at"' not in page.content.decode()
    assert response.status_code == 403
    organization.refresh_from_db()
    assert organization.name == "Fjord AI AS"
    assert organization.verified_at is not None


def test_operators_without_the_permission_cannot_verify(admin_url: URL) -> None:
    # given: staff, but granted no permission on organizations
    client = Client()
    client.force_login(OperatorFactory())
    organization = OrganizationFactory(verified_at=None)

    # when
    response = client.post(
        admin_url(Organization, "changelist"),
        {"action": "verify_selected", "_selected_action": [str(organization.pk)]},
    )

    # then
    assert response.status_code == 403
    organization.refresh_from_db()
    assert organization.verified_at is None


def test_the_revoke_action_revokes_through_the_service(
    browser: Client,
    admin_url: URL,
    superuser: User,
    inventory: Inventory,
    messages_of: Messages,
) -> None:
    # given
    token = inventory.token

    # when
    response = browser.post(
        admin_url(AccessToken, "changelist"),
        {"action": "revoke_selected", "_selected_action": [str(token.pk)]},
    )

    # then
    token.refresh_from_db()
    assert response.status_code == 302
    assert token.revoked_at is not None
    assert _verbs(superuser)[-1] == "token.revoke"
    assert messages_of(response) == ["1 token(s) revoked."]


def test_token_digests_are_never_shown_and_tokens_are_read_only(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    token = inventory.token
    url = admin_url(AccessToken, "change", token.pk)

    # when
    listed = browser.get(admin_url(AccessToken, "changelist"))
    page = browser.get(url)
    response = browser.post(url, {"name": "renamed", "scope": "full"})

    # then
    assert token.digest not in listed.content.decode()
    assert token.digest not in page.content.decode()
    assert token.prefix in page.content.decode()
    assert response.status_code == 403
    assert browser.post(admin_url(AccessToken, "delete", token.pk)).status_code == 403


def test_the_audit_trail_cannot_be_changed_or_deleted(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    event = AuditEvent.objects.get(verb="site.create")
    count = AuditEvent.objects.count()

    # when
    page = browser.get(admin_url(AuditEvent, "change", event.pk))
    changed = browser.post(admin_url(AuditEvent, "change", event.pk), {"verb": "forged"})
    deleted = browser.post(admin_url(AuditEvent, "delete", event.pk), {"post": "yes"})
    listed = browser.get(admin_url(AuditEvent, "changelist"))

    # then
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (changed.status_code, deleted.status_code) == (403, 403)
    assert "delete_selected" not in listed.content.decode()
    assert AuditEvent.objects.count() == count
    assert AuditEvent.objects.get(pk=event.pk).verb == "site.create"


def test_memberships_are_read_only(browser: Client, admin_url: URL, inventory: Inventory) -> None:
    # given
    membership = inventory.membership

    # when
    changed = browser.post(admin_url(Membership, "change", membership.pk), {"role": "admin"})
    deleted = browser.post(admin_url(Membership, "delete", membership.pk), {"post": "yes"})

    # then
    assert (changed.status_code, deleted.status_code) == (403, 403)
    assert Membership.objects.get(pk=membership.pk).role == "member"


def test_a_user_added_in_the_admin_logs_in_with_a_lowercased_email(
    browser: Client, admin_url: URL
) -> None:
    # given
    password = "fjord-and-fell-2026"

    # when
    response = browser.post(
        admin_url(User, "add"),
        {
            "email": "Ola.Nordmann@Fjord.example",
            "full_name": "Ola Nordmann",
            "usable_password": "true",
            "password1": password,
            "password2": password,
        },
    )

    # then
    user = User.objects.get(full_name="Ola Nordmann")
    assert response.status_code == 302
    assert user.email == "ola.nordmann@fjord.example"
    assert user.check_password(password)
    assert Client().login(username="ola.nordmann@fjord.example", password=password)


def test_users_are_deactivated_not_deleted(
    browser: Client, admin_url: URL, inventory: Inventory
) -> None:
    # given
    user = inventory.membership.user

    # when
    response = browser.post(admin_url(User, "delete", user.pk), {"post": "yes"})

    # then
    assert response.status_code == 403
    assert User.objects.filter(pk=user.pk).exists()
