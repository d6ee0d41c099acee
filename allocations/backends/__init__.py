"""Scheduler backends: the site's batch system, behind one small interface.

A backend brings the scheduler account of an allocation to what the portal intends (its
account, its GPU-minute limit, its users, whether new GPU jobs may start), reads back what
the scheduler holds, and reports usage since a time. Calls are recorded as `BackendCall`
rows in the transaction that asks for them and carried out by a task after commit, with
retries and backoff, so a slow or failing scheduler never blocks a decision. Every call
converges on the allocation's state when it runs, so a retried or late call never undoes a
newer one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class AccountSpec:
    """What the portal intends for the scheduler account of one allocation.

    `gpu_minutes` is the grant: the scheduler counts the usage itself. `runnable` is false
    when new GPU jobs must not start (suspended, exhausted, not yet started, ended).
    """

    account: str
    organization: str
    gpu_minutes: int
    users: tuple[str, ...] = ()
    runnable: bool = True

    @property
    def qos(self) -> str:
        return f"{self.account}-qos"

    @property
    def description(self) -> str:
        return account_description(self.organization)


@dataclass(frozen=True)
class ClusterAccount:
    """What the scheduler holds for one account; None where it holds nothing."""

    account: str
    description: str | None = None
    qos: frozenset[str] = frozenset()
    default_qos: str | None = None
    users: dict[str, frozenset[str]] = field(default_factory=dict)  # user → its QOS
    qos_exists: bool = False
    no_decay: bool = False
    gpu_minutes: int | None = None
    gpu_cap: int | None = None  # GrpTRES gres/gpu: 0 blocks new GPU jobs

    @property
    def exists(self) -> bool:
        return self.description is not None


@dataclass(frozen=True)
class ReportedUsage:
    """One finished job as the scheduler reports it."""

    source: str
    external_id: str
    account: str
    gpu_seconds: int
    started_at: datetime
    ended_at: datetime
    energy_kwh: str | None = None


class BackendError(Exception):
    """The scheduler refused or failed; the call is retried with backoff."""


class SchedulerBackend(Protocol):
    name: str

    def apply(self, spec: AccountSpec) -> list[str]:
        """Bring the account to the spec; answer the commands run (or that would be)."""
        ...

    def accounts(self) -> dict[str, ClusterAccount] | None:
        """The portal's accounts as the scheduler holds them (None: nothing to compare)."""
        ...

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]: ...


def get_backend() -> SchedulerBackend:
    """The backend named by PORTAL_SCHEDULER_BACKEND (the recording one by default)."""
    backend: SchedulerBackend = import_string(settings.PORTAL_SCHEDULER_BACKEND)()
    return backend


ACCOUNT_PREFIX = "pap-"


def account_name(allocation_id: object) -> str:
    """A scheduler account name for an allocation: short, stable, unique, lowercase."""
    return f"{ACCOUNT_PREFIX}{str(allocation_id).replace('-', '')[:16]}"


# Letters that do not decompose into an ASCII letter and a mark.
_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d", "ł": "l"})


def account_description(organization: str) -> str:
    """The organization's name as sacctmgr keeps it unchanged: sacctmgr lowercases
    descriptions and turns quotes into backticks, so the portal sends only lowercase ASCII
    letters, digits and single hyphens (`Fjord AI's "Lab" AS` → `fjord-ai-s-lab-as`)."""
    spelled = organization.translate(_LETTERS)
    ascii_name = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:100] or "organization"
