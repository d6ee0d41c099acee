"""Expected API bodies of applications, allocations and their audit trail, built from the
rows themselves (not from the serializers); what every answer shares is in `tests/bodies.py`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allocations.models import Allocation, Application
from audit.models import AuditEvent
from tests.bodies import day, when
from tests.decisions.support import said

NOT_A_MEMBER = {
    "code": "permission_denied",
    "message": "Only members of the applying organization may do this.",
}
NOT_A_REVIEWER = {
    "code": "permission_denied",
    "message": "Only reviewers of the application's program may decide it.",
}
NOT_AN_ADMIN = {
    "code": "permission_denied",
    "message": "Only the organization's admins may release its allocations.",
}
KWH_PER_GPU_HOUR = Decimal("2.09")  # GB300's 1,900 W × PUE 1.10


def application_body(application: Application) -> dict[str, Any]:
    row = Application.objects.get(pk=application.pk)
    granted = Allocation.objects.filter(application=row).first()
    allocation = None
    if row.status == "approved":
        allocation = str(row.allocation_id or granted.pk)  # type: ignore[union-attr]
    return {
        "id": str(row.pk),
        "organization": str(row.organization_id),
        "program": str(row.program_id),
        "pool": str(row.pool_id),
        "applicant": str(row.applicant_id),
        "kind": row.kind,
        "changes_allocation": str(row.allocation_id) if row.allocation_id else None,
        "title": row.title,
        "summary": row.summary,
        "gpu_hours": row.gpu_hours,
        "start_date": day(row.start_date),
        "end_date": day(row.end_date),
        "purpose": row.purpose,
        "risk_category": row.risk_category,
        "data_stays_in_eea": row.data_stays_in_eea,
        "model_lineage": row.model_lineage,
        "status": row.status,
        "reasons": said(row.reasons),
        "failed_day": day(row.failed_day),
        "holds_capacity": row.holds_capacity,
        "created_at": when(row.created_at),
        "submitted_at": when(row.submitted_at),
        "decided_at": when(row.decided_at),
        "allocation": allocation,
    }


def allocation_body(allocation: Allocation) -> dict[str, Any]:
    row = Allocation.objects.get(pk=allocation.pk)
    estimate = Decimal(row.granted_gpu_hours) * KWH_PER_GPU_HOUR / 1000
    return {
        "id": str(row.pk),
        "application": str(row.application_id),
        "organization": str(row.organization_id),
        "program": str(row.program_id),
        "pool": str(row.pool_id),
        "start_date": day(row.start_date),
        "end_date": day(row.end_date),
        "granted_gpu_hours": row.granted_gpu_hours,
        "used_gpu_hours": f"{row.used_gpu_hours:.2f}",
        "remaining_gpu_hours": f"{row.remaining_gpu_hours:.2f}",
        "used_gpu_seconds": row.used_gpu_seconds,
        "energy_estimate_mwh": f"{estimate:.3f}",
        "energy_measured_mwh": f"{row.energy_kwh / 1000:.3f}",
        "status": row.status,
        "at_risk": row.at_risk,
        "released_from": day(row.released_from),
        "model_lineage": row.model_lineage,
        "created_at": when(row.created_at),
    }


def event_body(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.pk),
        "created_at": when(event.created_at),
        "actor": event.actor.email if event.actor else None,
        "verb": event.verb,
        "before": event.before,
        "after": event.after,
        "reasons": said(event.reasons),
    }
