"""Scheduler backends: the site's batch system, behind one small interface.

A backend creates the account of an allocation, sets its GPU-minute limit, suspends and
resumes it, and reports usage since a time. Calls are recorded as `BackendCall` rows in the
transaction that asks for them and carried out by a task after commit, with retries and
backoff, so a slow or failing scheduler never blocks a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class AccountSpec:
    """What a backend needs to know of an allocation."""

    account: str
    organization: str
    gpu_minutes: int


@dataclass(frozen=True)
class ReportedUsage:
    """One finished (or running) job as the scheduler reports it."""

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

    def create_account(self, spec: AccountSpec) -> list[str]: ...

    def set_limit(self, spec: AccountSpec) -> list[str]: ...

    def suspend(self, spec: AccountSpec) -> list[str]: ...

    def resume(self, spec: AccountSpec) -> list[str]: ...

    def fetch_usage(self, since: datetime) -> list[ReportedUsage]: ...


def get_backend() -> SchedulerBackend:
    """The backend named by PORTAL_SCHEDULER_BACKEND (the recording one by default)."""
    backend: SchedulerBackend = import_string(settings.PORTAL_SCHEDULER_BACKEND)()
    return backend


def account_name(allocation_id: object) -> str:
    """A scheduler account name for an allocation: short, stable, unique."""
    return f"pap-{str(allocation_id).replace('-', '')[:16]}"
