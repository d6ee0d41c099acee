"""The declared lifecycles of applications and allocations: which status may follow which.

Every service that sets a status goes through `Lifecycle.move` (or asks `Lifecycle.allows`
first, where a move that does not apply is skipped rather than refused, as the daily beat
does), so a move the table does not hold can never be written. The README's "Lifecycles"
section draws the same tables (`tests/allocations/test_lifecycle.py` checks that it does).

A status that may follow itself ("stays") is declared like any other move: a waitlisted
application that a re-check leaves on the waitlist with new reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from allocations.models import AllocationStatus, ApplicationStatus
from portal.errors import InvalidTransition


class HasStatus(Protocol):
    status: str


@dataclass(frozen=True)
class Lifecycle:
    """The allowed moves of one stateful model: `moves[source]` holds its targets; a status
    with no targets is final."""

    name: str
    statuses: tuple[str, ...]
    moves: Mapping[str, frozenset[str]]
    #: Said when a move is refused; names `%(status)s` and `%(target)s`.
    refusal: StrOrPromise

    def allows(self, source: str, target: str) -> bool:
        return target in self.moves.get(source, frozenset())

    def sources(self, target: str) -> tuple[str, ...]:
        """The statuses from which `target` may be reached, in the table's order (for the
        filters of a service that moves many rows at once)."""
        return tuple(status for status in self.statuses if self.allows(status, target))

    def final(self) -> tuple[str, ...]:
        return tuple(status for status in self.statuses if not self.moves.get(status))

    def refuse(self, source: str, target: str, message: str | None = None) -> None:
        """Raise `InvalidTransition` unless the table holds the move, with `message` (or the
        lifecycle's refusal), which may name `%(status)s` (the current status) and
        `%(target)s`."""
        if self.allows(source, target):
            return
        raise InvalidTransition(
            (message or str(self.refusal)) % {"status": source, "target": target}
        )

    def move(self, obj: HasStatus, target: str, message: str | None = None) -> str:
        """Set `obj.status` to `target` if the table allows it from the current status;
        otherwise raise `InvalidTransition` and leave the object as it was. Answers the
        status it had. The caller saves the object (with its audit event)."""
        source = obj.status
        self.refuse(source, target, message)
        obj.status = target
        return source

    def mermaid(self) -> str:
        """The table as a Mermaid state diagram, as the README shows it."""
        lines = ["stateDiagram-v2"]
        first = self.statuses[0]
        lines.append(f"    [*] --> {first}")
        for source in self.statuses:
            for target in self.statuses:
                if self.allows(source, target):
                    lines.append(f"    {source} --> {target}")
        for status in self.final():
            lines.append(f"    {status} --> [*]")
        return "\n".join(lines)


def _table(
    name: str,
    statuses: Iterable[str],
    moves: Mapping[str, Iterable[str]],
    refusal: StrOrPromise,
) -> Lifecycle:
    ordered = tuple(str(status) for status in statuses)
    table = {str(source): frozenset(str(t) for t in targets) for source, targets in moves.items()}
    unknown = (set(table) | {t for targets in table.values() for t in targets}) - set(ordered)
    if unknown:
        raise ValueError(f"{name}: unknown statuses {sorted(unknown)}")
    return Lifecycle(name=name, statuses=ordered, moves=table, refusal=refusal)


A = ApplicationStatus

#: draft → submitted → approved, in_review, waitlisted or rejected; in review → approved or
#: rejected; waitlisted → approved, in review, rejected, or stays; the applicant withdraws
#: anything not yet final.
APPLICATION = _table(
    "application",
    A.values,
    {
        A.DRAFT: (A.SUBMITTED, A.WITHDRAWN),
        A.SUBMITTED: (A.APPROVED, A.IN_REVIEW, A.WAITLISTED, A.REJECTED, A.WITHDRAWN),
        A.IN_REVIEW: (A.APPROVED, A.REJECTED, A.WITHDRAWN),
        A.WAITLISTED: (A.WAITLISTED, A.APPROVED, A.IN_REVIEW, A.REJECTED, A.WITHDRAWN),
    },
    gettext_lazy("The application is %(status)s: it cannot become %(target)s."),
)

S = AllocationStatus

#: scheduled → active on its first day → exhausted at 100 % of its grant (active again when a
#: supplement adds hours) → expired after its last day; released by its organization before
#: its first day (a release once it runs gives back its future days and keeps its status);
#: suspended and resumed, or revoked, by an operator.
ALLOCATION = _table(
    "allocation",
    S.values,
    {
        S.SCHEDULED: (S.ACTIVE, S.SUSPENDED, S.RELEASED, S.EXPIRED, S.REVOKED),
        S.ACTIVE: (S.EXHAUSTED, S.SUSPENDED, S.EXPIRED, S.REVOKED),
        S.EXHAUSTED: (S.ACTIVE, S.SUSPENDED, S.EXPIRED, S.REVOKED),
        S.SUSPENDED: (S.ACTIVE, S.SCHEDULED, S.EXHAUSTED, S.EXPIRED, S.REVOKED),
    },
    gettext_lazy("The allocation is %(status)s: it cannot become %(target)s."),
)

#: The statuses whose allocation still holds its hours in the ledger and the quota.
LIVE_ALLOCATION = (S.SCHEDULED, S.ACTIVE, S.EXHAUSTED)
#: The statuses of an application still waiting for its final decision.
UNDECIDED = (A.SUBMITTED, A.IN_REVIEW, A.WAITLISTED)
