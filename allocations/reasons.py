"""Decision reasons and refusals in the reader's language.

A decision is made in a worker, where no reader's language is known, and is then read by the
applicant, the organization's admins and the operators, each in their own. So a reason is
stored with its English message (as the audit trail keeps it) and with what is needed to write
it again in another language: the key of its message here and the figures that go in it.

    entry = reason("over_quota", text("over_quota", held=..., program=..., cap=...))
    entry["message"]     # the English message, stored
    message_of(entry)    # the message in the active language (the API, pages, admin, mails)

A reason without a key (a reviewer's own note, or one stored before keys) reads as stored.
Keys are stable: a stored reason names one, so a key is never renamed or given other figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_noop

# The messages, by key: English with named figures, translated by the catalogs.
MESSAGES: dict[str, str] = {
    "program_closed": gettext_noop("The program %(program)s is closed."),
    "not_verified": gettext_noop("The organization is not verified yet."),
    "not_in_country": gettext_noop("%(program)s is not open to organizations in %(country)s."),
    "not_for_kind": gettext_noop("%(program)s is not open to a %(kind)s."),
    "not_member": gettext_noop("The applicant is not a member of the organization."),
    "pool_closed": gettext_noop("The pool %(pool)s takes no applications."),
    "gpu_hours_bounds": gettext_noop(
        "%(program)s takes %(min)s to %(max)s GPU-hours per application."
    ),
    "window_in_past": gettext_noop("The window starts in the past."),
    "window_too_long": gettext_noop("%(program)s allows windows of at most %(days)s days."),
    "prohibited_use": gettext_noop("The declared use is prohibited under the AI Act (art. 5)."),
    "needs_review": gettext_noop("A high-risk AI use is decided by a reviewer."),
    "data_outside_eea": gettext_noop("Data leaving the EEA is decided by a reviewer."),
    "systemic_risk": gettext_noop(
        "The lineage %(lineage)s would reach %(flop)s FLOP of training compute, at or past 1E+25."
    ),
    "change_other_allocation": gettext_noop(
        "The allocation belongs to another organization, program or pool."
    ),
    "change_allocation_status": gettext_noop("The allocation is %(status)s."),
    "supplement_window": gettext_noop("A supplement stays inside the allocation's window."),
    "extension_window": gettext_noop("An extension starts the day after the allocation ends."),
    "change_gpu_hours": gettext_noop(
        "With this change the allocation would hold %(gpu_hours)s GPU-hours; %(program)s "
        "allows at most %(max)s."
    ),
    "change_days": gettext_noop(
        "With this change the allocation would last %(days)s days; %(program)s allows at most "
        "%(max)s."
    ),
    "over_quota": gettext_noop(
        "The organization holds %(held)s GPU-hours in %(program)s; with this request it would "
        "pass its cap of %(cap)s."
    ),
    "capacity_pool": gettext_noop(
        "On %(day)s the pool has %(free)s GPU-hours free; the request needs %(needs)s."
    ),
    "capacity_program": gettext_noop(
        "On %(day)s the program may take %(free)s more GPU-hours (its share, what others lend "
        "and the common part); the request needs %(needs)s."
    ),
    "capacity_power": gettext_noop(
        "On %(day)s the site has %(free)s MWh of its power envelope free; the request needs "
        "%(needs)s MWh."
    ),
    "above_auto_approve": gettext_noop(
        "Above %(max)s GPU-hours, %(program)s is decided by a reviewer."
    ),
    "auto_approved": gettext_noop("Eligible, within quota and capacity: approved."),
    "withdrawn": gettext_noop("Withdrawn by the applicant."),
    "revoked_by_operator": gettext_noop("Revoked by an operator."),
    "window_started": gettext_noop("The window started before a decision could be made."),
}


class Text(str):
    """An English message that remembers its key and figures, to be written again in
    another language. It is a `str`, so it goes wherever a message went."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, params: dict[str, Any]) -> Text:
        made = super().__new__(cls, MESSAGES[key] % params)
        made.key = key
        made.params = params
        return made


def _stored(value: Any) -> Any:
    """A figure as JSON keeps it: numbers and text as they are, days in ISO 8601."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return str(value)
    return str(value)


def text(key: str, **params: Any) -> Text:
    """The message `key` with its figures."""
    return Text(key, {name: _stored(value) for name, value in params.items()})


def reason(code: str, message: str, day: date | None = None) -> dict[str, Any]:
    """A decision reason: a stable code, a message for people, the day for capacity. A
    message made by `text` is stored with its key and figures."""
    entry: dict[str, Any] = {"code": code, "message": str(message)}
    if isinstance(message, Text):
        entry["message_key"] = message.key
        entry["params"] = message.params
    if day is not None:
        entry["day"] = day.isoformat()
    return entry


def message_of(entry: Mapping[str, Any]) -> str:
    """The entry's message in the active language; as stored when it has no key, or when its
    figures no longer fit the message (never raises on a stored reason)."""
    key = entry.get("message_key")
    params = entry.get("params")
    if isinstance(key, str) and key in MESSAGES and isinstance(params, dict):
        try:
            return gettext(MESSAGES[key]) % params
        except (KeyError, TypeError, ValueError):
            pass
    return str(entry.get("message", ""))


def translated(entries: list[Any] | None) -> list[dict[str, Any]]:
    """Reasons as stored, each with its message in the active language."""
    return [
        {**entry, "message": message_of(entry)}
        for entry in entries or []
        if isinstance(entry, Mapping)
    ]


def lazily_translated(entries: list[Any] | None) -> list[dict[str, Any]]:
    """Reasons whose message is written when it is read, in the language active then (a mail
    composed once for readers of each language)."""
    return [
        {**entry, "message": lazy(message_of, str)(entry)}
        for entry in entries or []
        if isinstance(entry, Mapping)
    ]
