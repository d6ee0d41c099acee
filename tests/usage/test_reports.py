from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import MembershipRole
from allocations.models import Allocation, Application
from allocations.services import applications as services
from tests.bodies import invalid
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_capacity_report_sums_the_ledger_usage_and_power(
    client_for, operator, scheduler_client, record, allocation
):
    # given: 1,000 GPU-hours over ten days (100 a day), 16 GPU-hours used on the first day
    scheduler_client.post("/api/v1/usage/", {"records": [record(1), record(2)]}, format="json")
    start = allocation.start_date

    # when
    response = client_for(operator).get(
        "/api/v1/reports/capacity/",
        {"pool": str(allocation.pool_id), "start": str(start), "end": str(start)},
    )

    # then
    assert response.status_code == 200
    (day,) = response.json()
    # 100 GPUs × 24 h × 0.95; 1 MW for the site; 100 GPU-hours × 1.9 kW × 1.1 = 209 kWh
    assert day == {
        "day": str(start),
        "capacity_gpu_hours": 2280,
        "committed_gpu_hours": 100,
        "held_gpu_hours": 0,
        "used_gpu_hours": "16.00",
        "free_gpu_hours": 2180,
        "power_envelope_mw": "1.000",
        "committed_mw": "0.009",
        "held_mw": "0.000",
        "programs": {"fast-lane": 100},
    }


def test_capacity_report_is_for_operators(client_for, founder, allocation):
    # when
    response = client_for(founder).get(
        "/api/v1/reports/capacity/", {"pool": str(allocation.pool_id)}
    )

    # then
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_shares_report_gives_the_norwegian_fraction(
    client_for, founder, draft, decide, fast_lane, pool, today
):
    # given: 1,000 GPU-hours to a Norwegian startup and 3,000 to a Swedish one
    decide(draft(gpu_hours=1_000))
    swedish = OrganizationFactory(name="Göta AI AB", country="SE", kind="startup")
    swede = UserFactory(email="founder@gota.example")
    MembershipFactory(user=swede, organization=swedish, role=MembershipRole.ADMIN)
    fast_lane.eligible_countries = ["NO", "SE"]
    fast_lane.save(update_fields=["eligible_countries"])
    application = services.application_create(
        applicant=swede,
        values={
            "organization": swedish,
            "program": fast_lane,
            "pool": pool,
            "title": "Swedish speech model",
            "gpu_hours": 3_000,
            "start_date": today + timedelta(days=1),
            "end_date": today + timedelta(days=10),
        },
    )
    submitted = services.application_submit(application=application, actor=swede)
    services.application_decide(application_id=submitted.pk, submission=submitted.submission)

    # when
    response = client_for(founder).get("/api/v1/reports/shares/")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["granted_gpu_hours"] == 4_000
    assert Decimal(body["norwegian_fraction"]) == Decimal("0.25")
    assert body["by_country"] == [
        {"key": "SE", "granted_gpu_hours": 3000, "used_gpu_hours": "0.00"},
        {"key": "NO", "granted_gpu_hours": 1000, "used_gpu_hours": "0.00"},
    ]
    assert body["by_organization_kind"] == [
        {"key": "startup", "granted_gpu_hours": 4000, "used_gpu_hours": "0.00"}
    ]


def test_turnaround_report_measures_decisions_against_the_target(
    client_for, founder, draft, decide, fast_lane
):
    # given: one decided at once, one that took three days (target: two)
    fast = decide(draft(gpu_hours=1_000))
    slow = decide(draft(gpu_hours=1_000))
    Application.objects.filter(pk=slow.pk).update(submitted_at=slow.decided_at - timedelta(days=3))
    assert Allocation.objects.count() == 2
    assert fast.status == "approved"

    # when
    response = client_for(founder).get("/api/v1/reports/turnaround/")

    # then
    (row,) = [r for r in response.json() if r["program"] == "fast-lane"]
    assert row["decided"] == 2
    assert row["turnaround_days"] == 2
    assert row["within_target_fraction"] == 0.5
    assert row["median_hours"] == pytest.approx(36, abs=0.1)
    assert row["p90_hours"] == pytest.approx(72, abs=0.1)


def test_turnaround_report_counts_the_last_ninety_days_by_default(
    client_for, founder, draft, decide, fast_lane
):
    # given: one decided now, one decided 89 days ago, one 91 days ago
    now = timezone.now()
    _recent, edge, old = (decide(draft(gpu_hours=1_000)) for _ in range(3))
    for application, days in ((edge, 89), (old, 91)):
        decided_at = now - timedelta(days=days)
        Application.objects.filter(pk=application.pk).update(
            submitted_at=decided_at - timedelta(hours=1), decided_at=decided_at
        )

    # when
    default = client_for(founder).get("/api/v1/reports/turnaround/")
    longer = client_for(founder).get(
        "/api/v1/reports/turnaround/",
        {
            "start": str(timezone.localdate() - timedelta(days=120)),
            "end": str(timezone.localdate()),
        },
    )
    older = client_for(founder).get(
        "/api/v1/reports/turnaround/",
        {
            "start": str(timezone.localdate() - timedelta(days=100)),
            "end": str(timezone.localdate() - timedelta(days=90)),
        },
    )

    # then
    assert (default.status_code, longer.status_code, older.status_code) == (200, 200, 200)

    def decided(response: Any) -> int:
        (row,) = [r for r in response.json() if r["program"] == "fast-lane"]
        return row["decided"]

    assert (decided(default), decided(longer), decided(older)) == (2, 3, 1)


def test_turnaround_report_refuses_a_window_longer_than_366_days(client_for, founder):
    # when
    today = timezone.localdate()
    too_long = client_for(founder).get(
        "/api/v1/reports/turnaround/",
        {"start": str(today - timedelta(days=366)), "end": str(today)},
    )
    backwards = client_for(founder).get(
        "/api/v1/reports/turnaround/",
        {"start": str(today), "end": str(today - timedelta(days=1))},
    )

    # then
    assert (too_long.status_code, backwards.status_code) == (400, 400)
    assert too_long.json() == invalid(
        {"end": [("window_too_long", "Ask for at most 366 days at a time.")]}
    )
    assert backwards.json() == invalid(
        {"end": [("before_start", "The end comes on or after the start.")]}
    )


def test_admin_capacity_chart_draws_svg(client, operator, allocation):
    # given
    operator.is_superuser = True
    operator.save(update_fields=["is_superuser"])
    client.force_login(operator)

    # when
    response = client.get("/admin/capacity/", {"site": str(allocation.pool.site_id), "days": 30})

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('role="img"') == 3
    assert "Capacity and reservations per day" in page
    assert "Committed, held and used per day" in page
    assert "power envelope" in page
    assert "to Norwegian organizations" in page
    assert "fast-lane" in page  # the shares and turnaround tables
