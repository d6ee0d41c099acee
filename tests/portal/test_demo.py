from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Organization, User
from allocations import selectors
from allocations.models import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationStatus,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
    UsageRecord,
)
from allocations.selectors.console import console_summary
from allocations.selectors.reports import capacity_timeline
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

MODELS = (
    User,
    Organization,
    Site,
    PowerPhase,
    GpuPool,
    CapacityEvent,
    Program,
    AuditEvent,
    Application,
    Allocation,
    UsageRecord,
)


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


def test_demo_site_has_230_mw_now_and_520_mw_from_seven_months_on():
    # given
    call_command("load_demo", stdout=io.StringIO())
    site = Site.objects.get(name="Narvik")
    today = timezone.localdate()

    # when
    soon = selectors.site_power_days(site=site, start=today, end=today + timedelta(days=30))
    later = selectors.site_power_days(
        site=site, start=today + timedelta(days=213), end=today + timedelta(days=243)
    )

    # then
    assert {day.power_envelope_mw for day in soon} == {Decimal("230")}
    assert {day.power_envelope_mw for day in later} == {Decimal("520")}


def test_demo_tells_a_story_relative_to_today():
    # when
    call_command("load_demo", stdout=io.StringIO())
    today = timezone.localdate()

    # then: allocations that started weeks ago, with usage
    active = Allocation.objects.filter(status=AllocationStatus.ACTIVE)
    assert active.count() == 4
    assert all(allocation.start_date < today for allocation in active)
    assert all(allocation.used_gpu_seconds > 0 for allocation in active)
    # in review (one past its target), waitlisted, rejected
    statuses = dict(Application.objects.values_list("title", "status").order_by("title"))
    assert sorted(statuses.values()).count(ApplicationStatus.IN_REVIEW) == 2
    assert sorted(statuses.values()).count(ApplicationStatus.WAITLISTED) == 2
    assert sorted(statuses.values()).count(ApplicationStatus.REJECTED) == 1
    summary = console_summary()
    assert any(row.past_target for row in summary["in_review"])
    # a maintenance window that overcommits three days and puts two allocations at risk
    assert summary["overcommitted_day_count"] == 3
    assert summary["at_risk_count"] == 2
    # and the charts have committed and used GPU-hours to draw
    site = Site.objects.get(name="Narvik")
    timeline = capacity_timeline(
        site=site,
        pools=list(GpuPool.objects.filter(site=site)),
        start=today - timedelta(days=10),
        end=today,
    )
    assert all(day["committed_gpu_hours"] > 0 for day in timeline)
    assert sum(day["used_gpu_hours"] for day in timeline[:-1]) > 0


def test_demo_gpus_fit_inside_the_power_envelope_on_every_day():
    # given
    call_command("load_demo", stdout=io.StringIO())
    site = Site.objects.get(name="Narvik")
    start = timezone.localdate()
    end = start + timedelta(days=400)

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
