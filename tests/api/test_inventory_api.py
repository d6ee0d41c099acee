"""Inventory and programs: read by users, written by operators; exact bodies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from allocations.models import CapacityEvent, GpuPool, PowerPhase, Program, Site
from tests.factories import (
    AcceleratorFactory,
    CapacityEventFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

NOT_OPERATOR = {"code": "permission_denied", "message": "Only operators may do this."}


def _site(site: Site) -> dict:
    return {
        "id": str(site.pk),
        "name": site.name,
        "country": str(site.country),
        "pue": f"{site.pue:.2f}",
        "created_at": site.created_at.astimezone().isoformat(),
    }


def test_users_read_sites_and_operators_create_them(client_for, member, operator):
    # given
    site = SiteFactory(name="Narvik")

    # when
    listed = client_for(member).get("/api/v1/sites/")
    created = client_for(operator).post(
        "/api/v1/sites/", {"name": "Mo i Rana", "country": "NO", "pue": "1.15"}, format="json"
    )

    # then
    assert listed.status_code == 200
    assert listed.json()["results"] == [_site(site)]
    assert created.status_code == 201
    assert created.json() == _site(Site.objects.get(name="Mo i Rana"))
    assert AuditEvent.objects.filter(verb="site.create", actor=operator).count() == 1


def test_a_member_may_not_create_a_site(client_for, member):
    # when
    response = client_for(member).post(
        "/api/v1/sites/", {"name": "X", "country": "NO", "pue": "1.1"}, format="json"
    )

    # then
    assert response.status_code == 403
    assert response.json() == NOT_OPERATOR
    assert Site.objects.count() == 0


def test_a_pue_below_one_is_a_field_error(client_for, operator):
    # when
    response = client_for(operator).post(
        "/api/v1/sites/", {"name": "X", "country": "NO", "pue": "0.9"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "pue": [
            {"code": "min_value", "message": "Ensure this value is greater than or equal to 1."}
        ]
    }
    assert Site.objects.count() == 0


def test_operators_patch_and_delete_sites_with_audit(client_for, operator):
    # given
    site = SiteFactory(name="Old")
    client = client_for(operator)

    # when
    patched = client.patch(f"/api/v1/sites/{site.pk}/", {"pue": "1.20"}, format="json")
    deleted = client.delete(f"/api/v1/sites/{site.pk}/")

    # then
    assert patched.status_code == 200
    assert patched.json()["pue"] == "1.20"
    assert deleted.status_code == 204
    event = AuditEvent.objects.get(verb="site.update")
    assert (event.before, event.after) == ({"pue": "1.10"}, {"pue": "1.20"})
    assert AuditEvent.objects.filter(verb="site.delete").count() == 1


def test_a_site_with_pools_cannot_be_deleted(client_for, operator):
    # given
    pool = PoolFactory()

    # when
    response = client_for(operator).delete(f"/api/v1/sites/{pool.site_id}/")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "in_use",
        "message": "This site is still referenced and cannot be deleted.",
    }
    assert Site.objects.filter(pk=pool.site_id).exists()
    assert not AuditEvent.objects.filter(verb="site.delete").exists()


def test_power_phases_nest_under_their_site(client_for, member, operator):
    # given
    site = SiteFactory()
    phase = PowerPhaseFactory(site=site, name="Phase 1", power_mw=Decimal("230"))

    # when
    listed = client_for(member).get(f"/api/v1/sites/{site.pk}/power-phases/")
    created = client_for(operator).post(
        f"/api/v1/sites/{site.pk}/power-phases/",
        {"name": "Curtailment", "power_mw": "-40", "online_from": "2027-01-10",
         "online_until": "2027-01-12"},
        format="json",
    )  # fmt: skip
    denied = client_for(member).post(
        f"/api/v1/sites/{site.pk}/power-phases/",
        {"name": "x", "power_mw": "1", "online_from": "2027-01-10"},
        format="json",
    )

    # then
    assert listed.json()["results"] == [
        {"id": str(phase.pk), "site": str(site.pk), "name": "Phase 1", "power_mw": "230.000",
         "online_from": "2026-01-01", "online_until": None}
    ]  # fmt: skip
    assert created.status_code == 201
    assert created.json()["power_mw"] == "-40.000"
    assert denied.status_code == 403
    assert PowerPhase.objects.count() == 2


def test_a_phase_that_ends_before_it_starts_is_refused(client_for, operator):
    # given
    site = SiteFactory()

    # when
    response = client_for(operator).post(
        f"/api/v1/sites/{site.pk}/power-phases/",
        {"name": "x", "power_mw": "5", "online_from": "2027-02-01", "online_until": "2027-01-01"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "online_until": [
            {"code": "before_start", "message": "The last day online comes on or after the first."}
        ]
    }
    assert PowerPhase.objects.count() == 0


def test_accelerators_read_create_and_validate(client_for, member, operator):
    # given
    gb300 = AcceleratorFactory()

    # when
    listed = client_for(member).get("/api/v1/accelerators/")
    invalid = client_for(operator).post(
        "/api/v1/accelerators/",
        {"name": "B200", "board_power_w": 1000, "it_power_w": 900, "peak_bf16_flops": 10**15},
        format="json",
    )
    denied = client_for(member).patch(
        f"/api/v1/accelerators/{gb300.pk}/", {"it_power_w": 2000}, format="json"
    )

    # then
    assert listed.json()["results"] == [
        {"id": str(gb300.pk), "name": "GB300", "board_power_w": 1400, "it_power_w": 1900,
         "peak_bf16_flops": 2_500_000_000_000_000}
    ]  # fmt: skip
    assert invalid.status_code == 400
    assert invalid.json()["fields"] == {
        "it_power_w": [
            {
                "code": "below_board_power",
                "message": "IT power per GPU includes the board: it cannot be smaller.",
            }
        ]
    }
    assert denied.status_code == 403


def test_pools_and_capacity_events(client_for, member, operator, django_assert_num_queries):
    # given
    pool = PoolFactory(name="narvik-gb300-a")
    client = client_for(operator)

    # when
    created = client.post(
        f"/api/v1/pools/{pool.pk}/capacity-events/",
        {"effective_from": "2026-01-01", "gpus_in_service": 100_000, "note": "installation"},
        format="json",
    )
    clash = client.post(
        f"/api/v1/pools/{pool.pk}/capacity-events/",
        {"effective_from": "2026-01-01", "gpus_in_service": 5},
        format="json",
    )
    with django_assert_num_queries(2):
        pools = client_for(member).get("/api/v1/pools/")

    # then
    assert created.status_code == 201
    assert created.json()["gpus_in_service"] == 100_000
    assert clash.status_code == 400
    assert clash.json()["fields"] == {
        "effective_from": [
            {"code": "unique", "message": "The pool already has a capacity event on this day."}
        ]
    }
    assert CapacityEvent.objects.count() == 1
    assert pools.json()["results"][0]["name"] == "narvik-gb300-a"


def test_pool_list_costs_the_same_for_one_and_five(client_for, member, django_assert_num_queries):
    # given
    for _ in range(5):
        PoolFactory()

    # then
    with django_assert_num_queries(2):
        assert client_for(member).get("/api/v1/pools/").json()["count"] == 5


def test_pool_availability_gives_gpus_capacity_and_power_per_day(client_for, member):
    # given: 100,000 GB300 at 0.95 on a 230 MW site
    pool = PoolFactory(availability=Decimal("0.950"))
    CapacityEventFactory(pool=pool, effective_from=date(2026, 1, 1), gpus_in_service=100_000)
    PowerPhaseFactory(site=pool.site, power_mw=Decimal("230"), online_from=date(2026, 1, 1))

    # when
    response = client_for(member).get(
        f"/api/v1/pools/{pool.pk}/availability/", {"start": "2026-12-01", "end": "2026-12-01"}
    )

    # then
    assert response.json() == [
        {"day": "2026-12-01", "gpus_in_service": 100_000, "capacity_gpu_hours": 2_280_000,
         "full_load_mw": "209.000", "power_envelope_mw": "230.000"}
    ]  # fmt: skip


def test_pool_availability_window_must_be_in_order(client_for, member):
    # given
    pool = PoolFactory()

    # when
    response = client_for(member).get(
        f"/api/v1/pools/{pool.pk}/availability/", {"start": "2026-12-02", "end": "2026-12-01"}
    )

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "end": [{"code": "before_start", "message": "The end comes on or after the start."}]
    }


def test_programs_list_open_ones_for_users_and_all_for_operators(
    client_for, member, operator, django_assert_num_queries
):
    # given
    ProgramFactory(name="Open", slug="open")
    closed = ProgramFactory(
        name="Closed", slug="closed", is_open=False, nominal_share=Decimal("0.1")
    )

    # when
    with django_assert_num_queries(3):
        for_member = client_for(member).get("/api/v1/programs/")
    for_operator = client_for(operator).get("/api/v1/programs/")
    hidden = client_for(member).get(f"/api/v1/programs/{closed.pk}/")

    # then
    assert [p["slug"] for p in for_member.json()["results"]] == ["open"]
    assert {p["slug"] for p in for_operator.json()["results"]} == {"open", "closed"}
    assert hidden.status_code == 404


def test_program_shares_past_one_are_refused_and_nothing_is_written(client_for, operator):
    # given
    ProgramFactory(nominal_share=Decimal("0.9"))

    # when
    response = client_for(operator).post(
        "/api/v1/programs/",
        {"name": "Greedy", "slug": "greedy", "priority": 5, "max_gpu_hours": 100,
         "max_duration_days": 10, "org_cap_gpu_hours": 100, "nominal_share": "0.2",
         "lending_limit": "0", "borrowing_limit": "0", "turnaround_days": 1},
        format="json",
    )  # fmt: skip

    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "shares_exceeded",
        "message": "Other programs hold 0.9000 of the pools; 0.2000 more would pass 1.",
    }
    assert Program.objects.count() == 1


def test_a_member_may_not_change_a_program(client_for, member):
    # given
    program = ProgramFactory()

    # when
    response = client_for(member).patch(
        f"/api/v1/programs/{program.pk}/", {"priority": 1}, format="json"
    )

    # then
    assert response.status_code == 403
    assert response.json() == NOT_OPERATOR
    program.refresh_from_db()
    assert program.priority == 10


def test_an_operator_changes_a_programs_bounds_and_reviewers(client_for, operator, member):
    # given
    program = ProgramFactory()

    # when
    response = client_for(operator).patch(
        f"/api/v1/programs/{program.pk}/",
        {"max_gpu_hours": 60_000, "reviewers": [str(operator.pk)]},
        format="json",
    )
    invalid = client_for(operator).patch(
        f"/api/v1/programs/{program.pk}/", {"min_gpu_hours": 70_000}, format="json"
    )

    # then
    assert response.status_code == 200
    assert response.json()["max_gpu_hours"] == 60_000
    assert response.json()["reviewers"] == [str(operator.pk)]
    assert invalid.status_code == 400
    assert invalid.json()["fields"] == {
        "min_gpu_hours": [
            {"code": "out_of_bounds", "message": "The minimum is at most the maximum."}
        ]
    }
    assert {"program.update", "program.reviewers"} <= set(
        AuditEvent.objects.values_list("verb", flat=True)
    )


def test_a_capacity_event_on_a_foreign_pool_path_is_404(client_for, operator):
    # given
    event = CapacityEventFactory()
    other = PoolFactory()

    # when
    response = client_for(operator).get(f"/api/v1/pools/{other.pk}/capacity-events/{event.pk}/")

    # then
    assert response.status_code == 404
    assert GpuPool.objects.count() == 2
