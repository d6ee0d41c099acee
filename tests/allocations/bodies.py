"""Expected API bodies of the inventory and the programs, built from the rows themselves
(re-read from the database, never through the serializers under test); what every answer
shares is in `tests/bodies.py`."""

from __future__ import annotations

from typing import Any

from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Program, Site
from tests.bodies import day, fixed, when


def site_body(site: Site) -> dict[str, Any]:
    row = Site.objects.get(pk=site.pk)
    return {
        "id": str(row.pk),
        "name": row.name,
        "country": row.country.code,
        "pue": fixed(row.pue, 2),
        "created_at": when(row.created_at),
    }


def power_phase_body(phase: PowerPhase) -> dict[str, Any]:
    row = PowerPhase.objects.get(pk=phase.pk)
    return {
        "id": str(row.pk),
        "site": str(row.site_id),
        "name": row.name,
        "power_mw": fixed(row.power_mw, 3),
        "online_from": day(row.online_from),
        "online_until": day(row.online_until),
    }


def accelerator_body(accelerator: AcceleratorModel) -> dict[str, Any]:
    row = AcceleratorModel.objects.get(pk=accelerator.pk)
    return {
        "id": str(row.pk),
        "name": row.name,
        "board_power_w": row.board_power_w,
        "it_power_w": row.it_power_w,
        "peak_bf16_flops": row.peak_bf16_flops,
    }


def pool_body(pool: GpuPool) -> dict[str, Any]:
    row = GpuPool.objects.get(pk=pool.pk)
    return {
        "id": str(row.pk),
        "name": row.name,
        "site": str(row.site_id),
        "accelerator": str(row.accelerator_id),
        "availability": fixed(row.availability, 3),
        "is_open": row.is_open,
        "created_at": when(row.created_at),
    }


def capacity_event_body(event: CapacityEvent) -> dict[str, Any]:
    row = CapacityEvent.objects.get(pk=event.pk)
    return {
        "id": str(row.pk),
        "pool": str(row.pool_id),
        "effective_from": day(row.effective_from),
        "gpus_in_service": row.gpus_in_service,
        "note": row.note,
    }


def program_body(program: Program) -> dict[str, Any]:
    row = Program.objects.get(pk=program.pk)
    return {
        "id": str(row.pk),
        "name": row.name,
        "slug": row.slug,
        "description": row.description,
        "priority": row.priority,
        "is_open": row.is_open,
        "eligible_countries": row.eligible_countries,
        "eligible_kinds": row.eligible_kinds,
        "verification_required": row.verification_required,
        "min_gpu_hours": row.min_gpu_hours,
        "max_gpu_hours": row.max_gpu_hours,
        "max_duration_days": row.max_duration_days,
        "auto_approve_max_gpu_hours": row.auto_approve_max_gpu_hours,
        "org_cap_gpu_hours": row.org_cap_gpu_hours,
        "nominal_share": fixed(row.nominal_share, 4),
        "lending_limit": fixed(row.lending_limit, 4),
        "borrowing_limit": fixed(row.borrowing_limit, 4),
        "turnaround_days": row.turnaround_days,
        "reviewers": [str(pk) for pk in row.reviewers.values_list("pk", flat=True)],
    }
