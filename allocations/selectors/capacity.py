"""The per-day capacity picture of a pool: the ledger where it has rows, the inventory
where it has none yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from allocations import quantities
from allocations.models import GpuPool, PoolDay, Program, ProgramDay, SiteDay
from allocations.selectors.inventory import pool_capacity_days, site_power_days
from allocations.shares import ProgramTerms, program_headroom


@dataclass(frozen=True)
class ProgramPart:
    program: Program
    nominal_gpu_hours: int
    committed_gpu_hours: int
    held_gpu_hours: int
    free_gpu_hours: int


def capacity_days(*, pool: GpuPool, start: date, end: date) -> list[dict[str, Any]]:
    """Per day: capacity, committed, held and free GPU-hours, the power envelope and the
    committed and held MW of the site, whether the day is overcommitted (each as
    `allocations/quantities.py` defines it), and per program its nominal part, what it holds
    and what it could still take. Six queries whatever the window; O(days × programs) work.
    A day the ledger has no row for yet is read from the inventory, with nothing reserved."""
    programs = list(Program.objects.order_by("priority", "name"))
    everyone = [ProgramTerms.of(program) for program in programs]
    pool_rows = {row.day: row for row in PoolDay.objects.filter(pool=pool, day__range=(start, end))}
    site_rows = {
        row.day: row
        for row in SiteDay.objects.filter(site_id=pool.site_id, day__range=(start, end))
    }
    program_rows: dict[date, dict[Any, ProgramDay]] = {}
    for row in ProgramDay.objects.filter(pool=pool, day__range=(start, end)):
        program_rows.setdefault(row.day, {})[row.program_id] = row
    inventory = pool_capacity_days(pool=pool, start=start, end=end)
    envelopes = site_power_days(site=pool.site, start=start, end=end)
    days: list[dict[str, Any]] = []
    for computed, envelope in zip(inventory, envelopes, strict=True):
        ledger = pool_rows.get(computed.day)
        site_row = site_rows.get(computed.day)
        figures = _day(
            gpus_in_service=computed.gpus_in_service,
            capacity=ledger.capacity_gpu_hours if ledger else computed.capacity_gpu_hours,
            committed=ledger.committed_gpu_hours if ledger else 0,
            held=ledger.held_gpu_hours if ledger else 0,
            envelope_wh=(
                site_row.envelope_wh
                if site_row
                else envelope.power_envelope_mw * quantities.WH_PER_MW_DAY
            ),
            committed_wh=site_row.committed_wh if site_row else 0,
            held_wh=site_row.held_wh if site_row else 0,
        )
        parts = _program_parts(figures, programs, everyone, program_rows.get(computed.day, {}))
        days.append({"day": computed.day, **figures, "programs": parts})
    return days


def _day(
    *,
    gpus_in_service: int,
    capacity: int,
    committed: int,
    held: int,
    envelope_wh: int | Decimal,
    committed_wh: int | Decimal,
    held_wh: int | Decimal,
) -> dict[str, Any]:
    return {
        "gpus_in_service": gpus_in_service,
        "capacity_gpu_hours": capacity,
        "committed_gpu_hours": committed,
        "held_gpu_hours": held,
        "free_gpu_hours": quantities.free(capacity, committed, held),
        "power_envelope_mw": quantities.mw(envelope_wh),
        "committed_mw": quantities.mw(committed_wh),
        "held_mw": quantities.mw(held_wh),
        "overcommitted": quantities.overcommitted(
            capacity=capacity,
            committed=committed,
            held=held,
            envelope_wh=envelope_wh,
            committed_wh=committed_wh,
            held_wh=held_wh,
        ),
    }


def _program_parts(
    day: dict[str, Any],
    programs: list[Program],
    everyone: list[ProgramTerms],
    rows: dict[Any, ProgramDay],
) -> list[ProgramPart]:
    """Each program's nominal part of the day, what it holds, and what it could still take
    beside the others."""
    capacity = day["capacity_gpu_hours"]
    reserved = quantities.reserved(day["committed_gpu_hours"], day["held_gpu_hours"])
    used_by = {program_id: row.reserved_gpu_hours for program_id, row in rows.items()}
    parts = []
    for program, terms in zip(programs, everyone, strict=True):
        part = rows.get(program.pk)
        _, free = program_headroom(
            capacity=capacity, reserved=reserved, terms=terms, used_by=used_by, everyone=everyone
        )
        parts.append(
            ProgramPart(
                program=program,
                nominal_gpu_hours=terms.nominal(capacity),
                committed_gpu_hours=part.committed_gpu_hours if part else 0,
                held_gpu_hours=part.held_gpu_hours if part else 0,
                free_gpu_hours=free,
            )
        )
    return parts
