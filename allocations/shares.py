"""How GPU-hours are shared, in plain arithmetic (no database): over the days of a window,
and among the programs on one day (Kueue's cohort).

A request of G GPU-hours over D days is spread evenly: every day gets G // D and the first
G % D days one more, so the days sum to G exactly.

Each program q has a nominal part of a day, N_q = floor(capacity × nominal_share_q); the part
of it it never lends, N_q − floor(N_q × lending_limit_q), stays free for q while q does not
use it; past its own nominal part a program borrows at most floor(capacity × borrowing_limit).
The ledger's capacity check (services/ledger.py) and the capacity picture
(selectors/capacity.py) both count with these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from allocations.models import Program
from allocations.quantities import floor


def daily_shares(*, gpu_hours: int, start: date, end: date) -> list[int]:
    """GPU-hours per day of [start, end], evenly spread and summing exactly to gpu_hours."""
    days = (end - start).days + 1
    base, extra = divmod(gpu_hours, days)
    return [base + (1 if index < extra else 0) for index in range(days)]


@dataclass(frozen=True)
class ProgramTerms:
    """A program's cohort parameters, read once per check."""

    program_id: UUID
    nominal_share: Decimal
    lending_limit: Decimal
    borrowing_limit: Decimal

    @classmethod
    def of(cls, program: Program) -> ProgramTerms:
        return cls(
            program.pk, program.nominal_share, program.lending_limit, program.borrowing_limit
        )

    def nominal(self, capacity: int) -> int:
        return floor(capacity * self.nominal_share)

    def guaranteed(self, capacity: int) -> int:
        nominal = self.nominal(capacity)
        return nominal - floor(nominal * self.lending_limit)

    def borrowing(self, capacity: int) -> int:
        return floor(capacity * self.borrowing_limit)


def program_headroom(
    *,
    capacity: int,
    reserved: int,
    terms: ProgramTerms,
    used_by: dict[UUID, int],
    everyone: Sequence[ProgramTerms],
) -> tuple[int, int]:
    """(pool headroom, program headroom) of one day: what the pool and the program could
    still take, in GPU-hours. The program's headroom already respects the pool's."""
    pool_free = capacity - reserved
    others_protected = sum(
        max(other.guaranteed(capacity) - used_by.get(other.program_id, 0), 0)
        for other in everyone
        if other.program_id != terms.program_id
    )
    used = used_by.get(terms.program_id, 0)
    ceiling = terms.nominal(capacity) + terms.borrowing(capacity) - used
    return pool_free, max(min(pool_free - others_protected, ceiling), 0)
