from __future__ import annotations

import pytest

from allocations.models import BackendCall, UsageRecord
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_operator_suspends_and_resumes_and_the_backend_is_told(client_for, operator, allocation):
    # given
    client = client_for(operator)
    url = f"/api/v1/allocations/{allocation.pk}"

    # when
    suspended = client.post(f"{url}/suspend/")
    resumed = client.post(f"{url}/resume/")

    # then
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"
    assert resumed.json()["status"] == "active"
    actions = list(
        BackendCall.objects.filter(allocation=allocation)
        .order_by("created_at")
        .values_list("action", flat=True)
    )
    assert actions == ["create_account", "suspend", "resume"]


def test_a_member_may_not_suspend(client_for, founder, allocation):
    # when
    response = client_for(founder).post(f"/api/v1/allocations/{allocation.pk}/suspend/")

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Only operators may do this.",
    }
    allocation.refresh_from_db()
    assert allocation.status == "active"


def test_resuming_an_active_allocation_is_refused_and_changes_nothing(
    client_for, operator, allocation
):
    # given
    events = AuditEvent.objects.count()

    # when
    response = client_for(operator).post(f"/api/v1/allocations/{allocation.pk}/resume/")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "The allocation is active: it cannot be resumed.",
    }
    assert AuditEvent.objects.count() == events
    assert BackendCall.objects.filter(action="resume").count() == 0


def test_usage_for_an_allocation_that_is_not_active_is_rejected(
    scheduler_client, record, allocation
):
    # given
    allocation.status = "expired"
    allocation.save(update_fields=["status"])

    # when
    response = scheduler_client.post("/api/v1/usage/", {"records": [record(1)]}, format="json")

    # then
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [
            {"index": 0, "code": "allocation_not_active", "message": "The allocation is expired."}
        ],
    }
    assert UsageRecord.objects.count() == 0
