from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts.models import AuditEvent, Organization, User
from allocations import selectors
from allocations.models import CapacityEvent, GpuPool, PowerPhase, Program, Site

pytestmark = pytest.mark.django_db

MODELS = (User, Organization, Site, PowerPhase, GpuPool, CapacityEvent, Program, AuditEvent)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_demo_loads_the_narvik_site_and_a_second_run_changes_nothing():
    # given
    call_command("load_demo", stdout=io.StringIO())
    first = _counts()

    # when
    out = io.StringIO()
    call_command("load_demo", stdout=out)

    # then
    assert _counts() == first
    assert "nothing new" in out.getvalue()
    assert "operator@narvik.example" in out.getvalue()
    assert "founder@fjordai.example" in out.getvalue()


def test_demo_site_has_230_mw_now_and_520_mw_from_july_2027():
    # given
    call_command("load_demo", stdout=io.StringIO())
    site = Site.objects.get(name="Narvik")

    # when
    december = selectors.site_power_days(site=site, start=date(2026, 12, 1), end=date(2026, 12, 31))
    august = selectors.site_power_days(site=site, start=date(2027, 8, 1), end=date(2027, 8, 31))

    # then
    assert {day.power_envelope_mw for day in december} == {Decimal("230")}
    assert {day.power_envelope_mw for day in august} == {Decimal("520")}


def test_demo_gpus_fit_inside_the_power_envelope_on_every_day():
    # given
    call_command("load_demo", stdout=io.StringIO())
    site = Site.objects.get(name="Narvik")
    start, end = date(2026, 12, 1), date(2027, 12, 31)

    # when
    envelope = selectors.site_power_days(site=site, start=start, end=end)
    per_pool = [
        selectors.pool_capacity_days(pool=pool, start=start, end=end)
        for pool in GpuPool.objects.select_related("site", "accelerator")
    ]

    # then
    for index, site_day in enumerate(envelope):
        drawn = sum(days[index].full_load_mw for days in per_pool)
        assert drawn <= site_day.power_envelope_mw, site_day.day


def test_demo_programs_leave_a_common_part_and_the_fast_lane_auto_approves_10000():
    # given
    call_command("load_demo", stdout=io.StringIO())

    # then
    shares = sum(program.nominal_share for program in Program.objects.all())
    assert Decimal("0") < 1 - shares < 1
    fast_lane = Program.objects.get(slug="no-startups-fast-lane")
    assert fast_lane.auto_approve_max_gpu_hours == 10_000
    assert fast_lane.max_gpu_hours == 50_000
    assert fast_lane.eligible_countries == ["NO"]
