"""The declared lifecycles (allocations/lifecycle.py) walked through the services: from every
status, every action either makes a move the table holds or is refused with nothing
changed; and every move the table holds is made by some action, so the table says no more
than the services do. The README's diagrams are the table's."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.authz import SYSTEM
from allocations.lifecycle import ALLOCATION, APPLICATION
from allocations.models import Allocation, Application
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from allocations.services import inventory
from allocations.services.usage import usage_ingest
from portal.errors import InvalidTransition
from tests.factories import CapacityEventFactory

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"


# --- the table itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("lifecycle", [APPLICATION, ALLOCATION], ids=lambda lc: lc.name)
def test_every_pair_outside_the_table_is_refused_and_leaves_the_object_alone(lifecycle):
    class Row:
        status = ""

    for source in lifecycle.statuses:
        for target in lifecycle.statuses:
            row = Row()
            row.status = source
            if lifecycle.allows(source, target):
                assert lifecycle.move(row, target) == source
                assert row.status == target
            else:
                with pytest.raises(InvalidTransition) as refused:
                    lifecycle.move(row, target)
                assert refused.value.code == "invalid_transition"
                assert refused.value.message == (
                    f"The {lifecycle.name} is {source}: it cannot become {target}."
                )
                assert row.status == source


def test_the_final_statuses_are_the_designs():
    assert APPLICATION.final() == ("approved", "rejected", "withdrawn")
    assert ALLOCATION.final() == ("expired", "released", "revoked")


@pytest.mark.parametrize("lifecycle", [APPLICATION, ALLOCATION], ids=lambda lc: lc.name)
def test_the_readme_draws_the_table(lifecycle):
    text = README.read_text()
    drawn = re.search(
        rf"<!-- lifecycle: {lifecycle.name} -->\n```mermaid\n(.*?)\n```", text, re.DOTALL
    )
    assert drawn is not None, f"README has no diagram of the {lifecycle.name} lifecycle"
    assert drawn.group(1) == lifecycle.mermaid()


# --- walking the services ------------------------------------------------------------------------


class _Undo(Exception):
    """Ends one case of a walk: its rows are rolled back, so the cases never fill the
    capacity or the quota that the next one is decided against."""


def _walk(
    lifecycle: Any,
    cases: dict[str, Callable[[], Any]],
    actions: dict[str, Callable[[Any], Any]],
    snapshot: Callable[[], Any],
) -> set[tuple[str, str]]:
    """Each action on a fresh object of each case: refused with nothing changed, or a move
    the table holds. Answers the moves made."""
    made: set[tuple[str, str]] = set()
    for case, make in cases.items():
        for name, action in actions.items():
            try:
                with transaction.atomic():
                    row = make()
                    source, before = row.status, snapshot()
                    try:
                        action(row)
                    except InvalidTransition:
                        row.refresh_from_db()
                        assert (row.status, snapshot()) == (source, before), (case, name)
                        raise _Undo from None
                    row.refresh_from_db()
                    if row.status != source or lifecycle.allows(source, source):
                        assert lifecycle.allows(source, row.status), (case, name, row.status)
                        made.add((source, row.status))
                    raise _Undo
            except _Undo:
                pass
    return made


def _declared(lifecycle: Any) -> set[tuple[str, str]]:
    return {
        (source, target)
        for source in lifecycle.statuses
        for target in lifecycle.statuses
        if lifecycle.allows(source, target)
    }


@pytest.fixture
def no_gpus_on_day_20(pool, today):
    """Day 20 has no GPUs in service (a maintenance window): what asks for it waits.
    Answers a function that ends the maintenance."""
    CapacityEventFactory(pool=pool, effective_from=today + timedelta(days=21), gpus_in_service=100)
    event = CapacityEventFactory(
        pool=pool, effective_from=today + timedelta(days=20), gpus_in_service=0
    )

    def end() -> None:
        inventory.inventory_update(instance=event, values={"gpus_in_service": 100}, actor=SYSTEM)

    return end


def test_every_application_action_from_every_status_moves_as_the_table_says(
    draft, decide, founder, reviewer, window, no_gpus_on_day_20, snapshot
):
    submit = lambda a: services.application_submit(application=a, actor=founder)  # noqa: E731

    def waiting(**values: Any) -> Application:
        application = decide(draft(**window(20, 20), **values))
        assert application.status == "waitlisted", application.reasons
        return application

    def room_back(application: Application) -> Application:
        no_gpus_on_day_20()
        return application

    cases: dict[str, Callable[[], Application]] = {
        "a draft": lambda: draft(),
        "submitted, fits": lambda: submit(draft()),
        "submitted, large": lambda: submit(draft(gpu_hours=12_000)),
        "submitted, no room": lambda: submit(draft(gpu_hours=1_000, **window(20, 20))),
        "submitted, prohibited": lambda: submit(draft(risk_category="prohibited")),
        "in review": lambda: decide(draft(gpu_hours=12_000)),
        "waitlisted": lambda: waiting(gpu_hours=1_000),
        "waitlisted, room back": lambda: room_back(waiting(gpu_hours=1_000)),
        "waitlisted, flagged, room back": lambda: room_back(
            waiting(gpu_hours=1_000, data_stays_in_eea=False)
        ),
        "approved": lambda: decide(draft()),
        "rejected": lambda: decide(draft(risk_category="prohibited")),
        "withdrawn": lambda: services.application_withdraw(application=draft(), actor=founder),
    }
    actions: dict[str, Callable[[Application], Any]] = {
        "submit": submit,
        "decide": lambda a: services.application_decide(
            application_id=a.pk, submission=a.submission
        ),
        "recheck": lambda a: services.application_recheck(application_id=a.pk),
        "approve": lambda a: services.application_approve(
            application=a, actor=reviewer, note="Fits."
        ),
        "reject": lambda a: services.application_reject(
            application=a, actor=reviewer, note="Out of scope."
        ),
        "withdraw": lambda a: services.application_withdraw(application=a, actor=founder),
    }

    made = _walk(APPLICATION, cases, actions, snapshot)

    assert _declared(APPLICATION) - made == set()


def test_every_allocation_action_from_every_status_moves_as_the_table_says(
    draft, decide, founder, operator, window, today, snapshot
):
    def granted(first: int) -> Allocation:
        return Allocation.objects.get(application=decide(draft(gpu_hours=100, **window(first, 2))))

    def used_up(allocation: Allocation) -> Allocation:
        started = timezone.now() - timedelta(hours=1)
        usage_ingest(
            source="slurm-test",
            records=[
                {
                    "source": "slurm-test",
                    "external_id": f"job-{allocation.pk}-{allocation.used_gpu_seconds}",
                    "allocation": allocation.pk,
                    "gpu_seconds": allocation.granted_gpu_hours * 3600,
                    "started_at": started,
                    "ended_at": started + timedelta(minutes=30),
                    "energy_kwh": None,
                }
            ],
        )
        allocation.refresh_from_db()
        return allocation

    def suspended(allocation: Allocation) -> Allocation:
        return allocation_services.allocation_suspend(allocation=allocation, actor=operator)

    def supplemented(allocation: Allocation) -> None:
        first = max((allocation.start_date - today).days, 0)
        decide(draft(kind="supplement", allocation=allocation, gpu_hours=100, **window(first, 2)))

    cases: dict[str, Callable[[], Allocation]] = {
        "scheduled": lambda: granted(1),
        "active": lambda: granted(0),
        "exhausted": lambda: used_up(granted(0)),
        "suspended, running": lambda: suspended(granted(0)),
        "suspended, not started": lambda: suspended(granted(1)),
        "suspended, used up": lambda: suspended(used_up(granted(0))),
        "expired": lambda: _expired(granted(0), today),
        "released": lambda: allocation_services.allocation_release(
            allocation=granted(1), actor=founder
        ),
        "revoked": lambda: allocation_services.allocation_revoke(
            allocation=granted(0), actor=operator
        ),
    }
    actions: dict[str, Callable[[Allocation], Any]] = {
        "suspend": suspended,
        "resume": lambda a: allocation_services.allocation_resume(allocation=a, actor=operator),
        "release": lambda a: allocation_services.allocation_release(allocation=a, actor=founder),
        "revoke": lambda a: allocation_services.allocation_revoke(allocation=a, actor=operator),
        "start": lambda a: allocation_services.allocation_advance(today=today + timedelta(days=1)),
        "expire": lambda a: allocation_services.allocation_advance(today=today + timedelta(days=3)),
        "use": used_up,
        "supplement": supplemented,
    }

    made = _walk(ALLOCATION, cases, actions, snapshot)

    assert _declared(ALLOCATION) - made == set()


def _expired(allocation: Allocation, today: Any) -> Allocation:
    allocation_services.allocation_advance(today=today + timedelta(days=3))
    allocation.refresh_from_db()
    return allocation
