"""The quantities of a day that the API, the pages, the admin and the charts show, each
defined once, here.

- **committed**: GPU-hours (and their energy, Wh) of approved allocations;
- **held**: GPU-hours (and Wh) held for applications in review, so that their approval can
  never fail for capacity;
- **reserved**: committed + held, what the capacity check counts against a day;
- **free**: capacity − reserved, never below zero;
- **MW**: a day's energy as its average power, Wh / 24,000,000;
- **overcommitted**: more reserved than the day's capacity, or more reserved energy than
  the site's power envelope: capacity or power shrank under reservations made before.

The ledger's rows (`PoolDay`, `ProgramDay`, `SiteDay`) keep committed and held apart; every
sum and comparison of them goes through these functions, or through the same expression in
SQL where a query filters on it (`selectors/console.py`, `services/ledger.py`), which says so.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

WH_PER_MW_DAY = Decimal(24_000_000)
MW = Decimal("0.001")


def floor(exact: Decimal) -> int:
    """Whole GPU-hours from an exact figure, rounded down: never more than can be delivered."""
    return int(exact.to_integral_value(rounding=ROUND_FLOOR))


def reserved(committed: int, held: int) -> int:
    return committed + held


def free(capacity: int, committed: int, held: int) -> int:
    return max(capacity - reserved(committed, held), 0)


def mw(wh: int | Decimal) -> Decimal:
    """A day's energy in Wh as average MW, to the kW."""
    return (Decimal(wh) / WH_PER_MW_DAY).quantize(MW)


def overcommitted(
    *,
    capacity: int,
    committed: int,
    held: int,
    envelope_wh: int | Decimal,
    committed_wh: int | Decimal,
    held_wh: int | Decimal,
) -> bool:
    return reserved(committed, held) > capacity or Decimal(committed_wh) + Decimal(
        held_wh
    ) > Decimal(envelope_wh)
