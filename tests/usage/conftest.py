from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.authz import SYSTEM
from accounts.models import User
from accounts.services import scheduler_account_create, scheduler_token_issue
from allocations.models import Allocation
from tests.decisions.conftest import (  # noqa: F401 - the site, program and helpers
    decide,
    draft,
    fast_lane,
    founder,
    pool,
    reviewer,
    startup,
    today,
)
from tests.usage.fake_slurm import FakeSlurm, SimulatedSlurm


@pytest.fixture
def allocation(draft, decide, today) -> Allocation:  # noqa: F811 - fixtures imported above
    """An active allocation of 1,000 GPU-hours over ten days from today."""
    application = decide(
        draft(gpu_hours=1_000, start_date=today, end_date=today + timedelta(days=9))
    )
    assert application.status == "approved"
    return Allocation.objects.get(application=application)


@pytest.fixture
def scheduler(db: None) -> User:
    """The service account of the Narvik cluster's scheduler."""
    return scheduler_account_create(source="slurm-narvik", actor=SYSTEM)


@pytest.fixture
def scheduler_token() -> Callable[[User], APIClient]:
    """An API client with a `usage:write` token of the given scheduler account."""

    def make(account: User) -> APIClient:
        issued = scheduler_token_issue(account=account, actor=SYSTEM, name="slurm")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        return client

    return make


@pytest.fixture
def scheduler_client(scheduler: User, scheduler_token: Callable[[User], APIClient]) -> APIClient:
    return scheduler_token(scheduler)


@pytest.fixture
def record(allocation: Allocation):
    start = timezone.make_aware(datetime.combine(allocation.start_date, datetime.min.time()))

    def make(index: int, gpu_seconds: int = 3_600 * 8, **overrides: object) -> dict[str, object]:
        return {
            "source": "slurm-narvik",
            "external_id": f"job-{index}",
            "allocation": str(allocation.pk),
            "gpu_seconds": gpu_seconds,
            "started_at": (start + timedelta(hours=1)).isoformat(),
            "ended_at": (start + timedelta(hours=2)).isoformat(),
            **overrides,
        }

    return make


@pytest.fixture
def fake_slurm(settings: Any) -> FakeSlurm:
    """The Slurm backend chosen, running against a fake sacctmgr of this test's own."""
    settings.PORTAL_SCHEDULER_BACKEND = "tests.usage.fake_slurm.SimulatedSlurm"
    settings.PORTAL_SLURM_CLUSTER = "narvik"
    SimulatedSlurm.fake = FakeSlurm()
    return SimulatedSlurm.fake
