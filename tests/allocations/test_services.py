"""The inventory and program services: validation before any write, one audit event per
change, the shares of all programs within 1 even under concurrent writers, and the ledger
rewritten when the supply changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from allocations import locks
from allocations.models import CapacityEvent, GpuPool, PoolDay, PowerPhase, Program, Site, SiteDay
from allocations.services import inventory as services
from audit.models import AuditEvent
from portal.errors import InUse, SharesExceeded
from tests.bodies import audit_rows, audit_when
from tests.factories import (
    CapacityEventFactory,
    OperatorFactory,
    PoolFactory,
    PowerPhaseFactory,
    ProgramFactory,
    SiteFactory,
    UserFactory,
)
from tests.races import race

PROGRAM = '"allocations_program"'


def _program_values(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Sigma2 AI",
        "slug": "sigma2-ai",
        "priority": 10,
        "max_gpu_hours": 50_000,
        "max_duration_days": 90,
        "org_cap_gpu_hours": 100_000,
        "nominal_share": Decimal("0.2000"),
        "lending_limit": Decimal("0.5000"),
        "borrowing_limit": Decimal("0.1000"),
        "turnaround_days": 5,
        **overrides,
    }


def _statements(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [query["sql"] for query in queries.captured_queries]


# --- inventory rows -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_invalid_row_is_refused_before_anything_is_written(operator, counts):
    # given
    before = counts()

    # when
    with pytest.raises(ValidationError) as refused:
        services.inventory_create(
            model=Site,
            values={"name": "Narvik", "country": "NO", "pue": Decimal("0.9")},
            actor=operator,
        )

    # then
    assert refused.value.message_dict == {
        "pue": ["Ensure this value is greater than or equal to 1."]
    }
    assert counts() == before


@pytest.mark.django_db
def test_a_created_row_is_audited_with_its_values(operator):
    # when
    site = services.inventory_create(
        model=Site,
        values={"name": "Narvik", "country": "NO", "pue": Decimal("1.10")},
        actor=operator,
    )

    # then
    site.refresh_from_db()
    assert audit_rows() == [
        {
            "verb": "site.create",
            "actor": operator.pk,
            "target": ("site", site.pk),
            "before": {},
            "after": {
                "name": "Narvik",
                "country": "NO",
                "pue": "1.10",
                "created_at": audit_when(site.created_at),
            },
        }
    ]


@pytest.mark.django_db
def test_an_update_audits_only_the_fields_that_changed(operator):
    # given
    pool = PoolFactory(availability=Decimal("0.950"), is_open=True)

    # when
    services.inventory_update(
        instance=pool, values={"availability": Decimal("0.900"), "is_open": True}, actor=operator
    )

    # then
    pool.refresh_from_db()
    assert pool.availability == Decimal("0.900")
    assert audit_rows() == [
        {
            "verb": "gpupool.update",
            "actor": operator.pk,
            "target": ("gpupool", pool.pk),
            "before": {"availability": "0.950"},
            "after": {"availability": "0.900"},
        }
    ]


@pytest.mark.django_db
def test_an_update_that_changes_nothing_writes_nothing(operator, counts):
    # given
    site = SiteFactory(pue=Decimal("1.10"))
    before = counts()

    # when
    services.inventory_update(instance=site, values={"pue": Decimal("1.10")}, actor=operator)

    # then
    assert counts() == before


@pytest.mark.django_db
def test_a_foreign_key_change_is_audited_as_plain_ids(operator):
    # given
    pool = PoolFactory()
    old_site, new_site = pool.site, SiteFactory()

    # when
    services.inventory_update(instance=pool, values={"site": new_site}, actor=operator)

    # then
    event = AuditEvent.objects.get(verb="gpupool.update")
    assert (event.before, event.after) == (
        {"site_id": str(old_site.pk)},
        {"site_id": str(new_site.pk)},
    )


@pytest.mark.django_db
def test_an_invalid_update_leaves_the_row_as_it_was(operator, counts):
    # given
    phase = PowerPhaseFactory(online_from=date(2026, 1, 1))
    before = counts()

    # when
    with pytest.raises(ValidationError):
        services.inventory_update(
            instance=phase, values={"online_until": date(2025, 12, 31)}, actor=operator
        )

    # then
    phase.refresh_from_db()
    assert phase.online_until is None
    assert counts() == before


@pytest.mark.django_db
def test_a_site_with_a_pool_is_in_use_and_nothing_is_deleted(operator, counts):
    # given
    pool = PoolFactory()
    PowerPhaseFactory(site=pool.site)
    before = counts()

    # when
    with pytest.raises(InUse) as refused:
        services.inventory_delete(instance=pool.site, actor=operator)

    # then
    assert refused.value.message == "This site is still referenced and cannot be deleted."
    assert counts() == before


@pytest.mark.django_db
def test_deleting_a_pool_deletes_its_capacity_events_and_audits_the_pool(operator):
    # given
    event = CapacityEventFactory()
    pool = event.pool

    # when
    services.inventory_delete(instance=pool, actor=operator)

    # then
    assert not GpuPool.objects.exists()
    assert not CapacityEvent.objects.exists()
    assert [row["verb"] for row in audit_rows()] == ["gpupool.delete"]


@pytest.mark.django_db
@pytest.mark.usefixtures("postgres")
def test_an_update_locks_the_row_before_it_writes_it(operator):
    # given
    site = SiteFactory()

    # when
    statements = _statements(
        lambda: services.inventory_update(
            instance=site, values={"pue": Decimal("1.20")}, actor=operator
        )
    )

    # then
    lock = next(
        index
        for index, sql in enumerate(statements)
        if sql.startswith("SELECT")
        and 'FROM "allocations_site"' in sql
        and sql.endswith("FOR NO KEY UPDATE")
    )
    write = next(
        i for i, sql in enumerate(statements) if sql.startswith('UPDATE "allocations_site"')
    )
    assert lock < write


# --- the ledger follows the supply --------------------------------------------------------


@pytest.fixture
def ledger_pool(db: None) -> GpuPool:
    """A pool of 100 GPUs and 1 MW with ledger rows from yesterday to five days on."""
    pool = PoolFactory(availability=Decimal("0.950"))
    CapacityEventFactory(pool=pool, effective_from=date(2020, 1, 1), gpus_in_service=100)
    PowerPhaseFactory(site=pool.site, power_mw=Decimal("1"), online_from=date(2020, 1, 1))
    today = timezone.localdate()
    locks.ensure_ledger_rows(pool=pool, start=today - timedelta(days=1), end=today + timedelta(5))
    return pool


def _capacities(pool: GpuPool) -> list[int]:
    rows = PoolDay.objects.filter(pool=pool).order_by("day")
    return list(rows.values_list("capacity_gpu_hours", flat=True))


def _envelopes(pool: GpuPool) -> list[int]:
    rows = SiteDay.objects.filter(site=pool.site).order_by("day")
    return list(rows.values_list("envelope_wh", flat=True))


def test_more_gpus_rewrite_the_ledger_from_their_day_and_queue_the_waitlist(
    ledger_pool, operator, django_capture_on_commit_callbacks
):
    # given
    today = timezone.localdate()

    # when: 100 more GPUs from the day after tomorrow
    with django_capture_on_commit_callbacks() as callbacks:
        services.inventory_create(
            model=CapacityEvent,
            values={
                "pool": ledger_pool,
                "effective_from": today + timedelta(days=2),
                "gpus_in_service": 200,
            },
            actor=operator,
        )

    # then: yesterday, today and tomorrow keep 2,280; from then on 4,560
    assert _capacities(ledger_pool) == [2_280] * 3 + [4_560] * 4
    assert len(callbacks) == 1  # the waitlist re-check


def test_fewer_gpus_rewrite_the_ledger_and_queue_nothing(
    ledger_pool, operator, django_capture_on_commit_callbacks
):
    # given
    today = timezone.localdate()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        services.inventory_create(
            model=CapacityEvent,
            values={"pool": ledger_pool, "effective_from": today, "gpus_in_service": 50},
            actor=operator,
        )

    # then: the past is history; from today on 50 × 24 × 0.95
    assert _capacities(ledger_pool) == [2_280] + [1_140] * 6
    assert callbacks == []


def test_a_curtailment_rewrites_the_sites_envelope_on_its_days_only(ledger_pool, operator):
    # given
    today = timezone.localdate()

    # when
    services.inventory_create(
        model=PowerPhase,
        values={
            "site": ledger_pool.site,
            "name": "Curtailment",
            "power_mw": Decimal("-0.5"),
            "online_from": today + timedelta(days=1),
            "online_until": today + timedelta(2),
        },
        actor=operator,
    )

    # then: 1 MW × 24 h = 24,000,000 Wh a day, half of it on the curtailed days
    assert _envelopes(ledger_pool) == [24_000_000] * 2 + [12_000_000] * 2 + [24_000_000] * 3


# --- programs -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_shares_summing_to_exactly_one_are_allowed(operator):
    # given
    ProgramFactory(nominal_share=Decimal("0.8000"))

    # when
    program = services.program_create(
        values=_program_values(nominal_share=Decimal("0.2000")), actor=operator
    )

    # then
    assert Program.objects.aggregate(total=Sum("nominal_share"))["total"] == Decimal(1)
    assert [row["verb"] for row in audit_rows(target_id=program.pk)] == ["program.create"]


@pytest.mark.django_db
def test_shares_past_one_are_refused_and_nothing_is_written(operator, counts):
    # given
    ProgramFactory(nominal_share=Decimal("0.8000"))
    before = counts()

    # when
    with pytest.raises(SharesExceeded) as refused:
        services.program_create(
            values=_program_values(nominal_share=Decimal("0.2001")),
            reviewers=[operator],
            actor=operator,
        )

    # then
    assert refused.value.message == (
        "Other programs hold 0.8000 of the pools; 0.2001 more would pass 1."
    )
    assert counts() == before


@pytest.mark.django_db
def test_a_programs_own_share_does_not_count_against_its_update(operator):
    # given
    program = ProgramFactory(nominal_share=Decimal("0.6000"))
    ProgramFactory(nominal_share=Decimal("0.4000"))

    # when: 0.6 → 0.6 again and then down, never counted twice
    services.program_update(
        program=program, values={"nominal_share": Decimal("0.6000")}, actor=operator
    )
    services.program_update(
        program=program, values={"nominal_share": Decimal("0.5000")}, actor=operator
    )

    # then
    program.refresh_from_db()
    assert program.nominal_share == Decimal("0.5000")
    assert audit_rows(verb="program.update") == [
        {
            "verb": "program.update",
            "actor": operator.pk,
            "target": ("program", program.pk),
            "before": {"nominal_share": "0.6000"},
            "after": {"nominal_share": "0.5000"},
        }
    ]


@pytest.mark.django_db
def test_an_update_past_one_changes_neither_the_rules_nor_the_reviewers(operator, counts, state):
    # given
    program = ProgramFactory(nominal_share=Decimal("0.5000"), priority=10)
    ProgramFactory(nominal_share=Decimal("0.4000"))
    before = state()

    # when
    with pytest.raises(SharesExceeded):
        services.program_update(
            program=program,
            values={"nominal_share": Decimal("0.6001"), "priority": 1},
            reviewers=[operator],
            actor=operator,
        )

    # then
    assert state() == before


@pytest.mark.django_db
def test_reviewers_given_at_creation_are_audited(operator):
    # given
    reviewer = UserFactory(email="reviewer@sigma2.example")

    # when
    program = services.program_create(
        values=_program_values(), reviewers=[reviewer], actor=operator
    )

    # then
    assert list(program.reviewers.all()) == [reviewer]
    assert [row["verb"] for row in audit_rows(target_id=program.pk)] == [
        "program.create",
        "program.reviewers",
    ]
    assert audit_rows(verb="program.reviewers")[0]["after"] == {"reviewers": [str(reviewer.pk)]}


@pytest.mark.django_db
def test_setting_the_same_reviewers_again_writes_no_audit_event(operator, counts):
    # given
    program = ProgramFactory()
    program.reviewers.set([operator])
    before = counts()

    # when
    services.program_set_reviewers(program=program, reviewers=[operator], actor=operator)

    # then
    assert counts() == before


@pytest.mark.django_db
def test_replacing_reviewers_is_audited_with_before_and_after(operator):
    # given
    program = ProgramFactory()
    old, new = UserFactory(), UserFactory()
    program.reviewers.set([old])

    # when
    services.program_set_reviewers(program=program, reviewers=[new], actor=operator)

    # then
    assert list(program.reviewers.all()) == [new]
    assert audit_rows(verb="program.reviewers") == [
        {
            "verb": "program.reviewers",
            "actor": operator.pk,
            "target": ("program", program.pk),
            "before": {"reviewers": [str(old.pk)]},
            "after": {"reviewers": [str(new.pk)]},
        }
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("postgres")
def test_a_share_check_takes_the_shares_lock_before_it_reads_the_shares(operator):
    # when
    statements = _statements(
        lambda: services.program_create(values=_program_values(), actor=operator)
    )

    # then: the lock comes before the sum and the sum before the insert
    lock = next(i for i, sql in enumerate(statements) if "pg_advisory_xact_lock" in sql)
    read = next(i for i, sql in enumerate(statements) if f"FROM {PROGRAM}" in sql)
    write = next(i for i, sql in enumerate(statements) if sql.startswith(f"INSERT INTO {PROGRAM}"))
    assert lock < read < write


# --- races between real processes ---------------------------------------------------------


def _create(number: int, actor_id: Any) -> Callable[[], object]:
    def run() -> object:
        values = _program_values(
            name=f"Track {number}", slug=f"track-{number}", nominal_share=Decimal("0.3000")
        )
        return services.program_create(values=values, actor=User.objects.get(pk=actor_id))

    return run


def _raise(program_id: Any, actor_id: Any) -> Callable[[], object]:
    def run() -> object:
        return services.program_update(
            program=Program.objects.get(pk=program_id),
            values={"nominal_share": Decimal("0.4000")},
            actor=User.objects.get(pk=actor_id),
        )

    return run


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_programs_created_at_once_never_share_more_than_the_pools():
    # given: 0.1 taken; six operators each create a program of 0.3 at the same moment
    ProgramFactory(nominal_share=Decimal("0.1000"))
    actor = OperatorFactory()

    # when
    outcomes = race({str(number): _create(number, actor.pk) for number in range(6)})

    # then: three fit (0.1 + 3 × 0.3 = 1.0), three are refused
    assert sorted(outcomes.values()) == ["SharesExceeded"] * 3 + ["ok"] * 3
    assert Program.objects.aggregate(total=Sum("nominal_share"))["total"] == Decimal(1)
    assert AuditEvent.objects.filter(verb="program.create").count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_a_create_and_updates_at_once_never_share_more_than_the_pools():
    # given: three programs of 0.2; each may grow to 0.4 or a new one of 0.3 come in
    programs = [ProgramFactory(nominal_share=Decimal("0.2000")) for _ in range(3)]
    actor = OperatorFactory()
    runs = {f"raise {p.pk}": _raise(p.pk, actor.pk) for p in programs}
    runs["create"] = _create(99, actor.pk)

    # when
    outcomes = race(runs)

    # then: whatever the order, the sum stays within 1
    total = Program.objects.aggregate(total=Sum("nominal_share"))["total"]
    assert total <= Decimal(1)
    assert list(outcomes.values()).count("ok") >= 1
    assert set(outcomes.values()) <= {"ok", "SharesExceeded"}
