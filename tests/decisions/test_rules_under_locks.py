"""Rules a grant depends on hold at the moment it is made: checked again under the locks
(a change onto an allocation released meanwhile), on the allocation a chain of changes
makes (not per change), and the AI Act's lineage compute over normalized names, granted and
held, read under a lock so that two applications cannot both pass 10^25 FLOP."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.authz import SYSTEM
from accounts.models import Membership, User
from allocations.models import Allocation, Application, GpuPool
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from allocations.services import inventory
from tests.factories import AcceleratorFactory, CapacityEventFactory, PoolFactory
from tests.races import race

# --- chains of changes are checked on the allocation they make ---------------------------

# A program of at most 2,000 GPU-hours per application, all approved at once, with 30 % of
# the pool (684 GPU-hours a day)
SMALL: dict[str, Any] = {
    "name": "Small",
    "slug": "small",
    "max_gpu_hours": 2_000,
    "auto_approve_max_gpu_hours": 2_000,
    "nominal_share": Decimal("0.3"),
}


@pytest.mark.django_db
def test_a_supplement_that_takes_the_allocation_past_the_programs_maximum_is_refused(
    draft, decide, make_program, window
):
    # given: a program of at most 2,000 GPU-hours per allocation; 1,500 granted
    program = make_program(**SMALL)
    granted = decide(draft(program=program, gpu_hours=1_500, **window(1, 10)))
    allocation = Allocation.objects.get(application=granted)

    # when: 1,000 more, which alone would be within bounds
    supplement = decide(
        draft(
            program=program,
            kind="supplement",
            allocation=allocation,
            gpu_hours=1_000,
            **window(2, 9),
        )
    )

    # then
    assert supplement.status == "rejected"
    assert [entry["code"] for entry in supplement.reasons] == ["out_of_bounds"]
    assert Allocation.objects.get(pk=allocation.pk).granted_gpu_hours == 1_500


@pytest.mark.django_db
def test_an_extension_that_makes_the_window_longer_than_the_program_allows_is_refused(
    draft, decide, make_program, window
):
    # given: windows of at most 10 days; an allocation of 8
    program = make_program(**{**SMALL, "max_duration_days": 10})
    granted = decide(draft(program=program, gpu_hours=800, **window(1, 8)))
    allocation = Allocation.objects.get(application=granted)

    # when: 8 more days, which alone would be within bounds
    extension = decide(
        draft(
            program=program,
            kind="extension",
            allocation=allocation,
            gpu_hours=800,
            **window(9, 16),
        )
    )

    # then
    assert extension.status == "rejected"
    assert [entry["code"] for entry in extension.reasons] == ["out_of_bounds"]
    assert Allocation.objects.get(pk=allocation.pk).end_date == granted.end_date


@pytest.mark.django_db
def test_a_supplement_counts_the_supplements_still_in_review(draft, decide, make_program, window):
    # given: 1,000 granted of at most 2,000, and 600 more in review (a reviewer will not
    # check the bounds again)
    program = make_program(**SMALL)
    granted = decide(draft(program=program, gpu_hours=1_000, **window(1, 10)))
    allocation = Allocation.objects.get(application=granted)
    change = {"program": program, "kind": "supplement", "allocation": allocation}
    held = decide(draft(gpu_hours=600, risk_category="high", **change, **window(2, 9)))
    assert held.status == "in_review"

    # when
    second = decide(draft(gpu_hours=600, **change, **window(2, 9)))

    # then
    assert second.status == "rejected"
    assert [entry["code"] for entry in second.reasons] == ["out_of_bounds"]


@pytest.mark.django_db
def test_changes_within_the_bounds_of_the_resulting_allocation_are_granted(
    draft, decide, make_program, window
):
    # given
    program = make_program(**{**SMALL, "max_duration_days": 16})
    granted = decide(draft(program=program, gpu_hours=800, **window(1, 8)))
    allocation = Allocation.objects.get(application=granted)
    change = {"program": program, "allocation": allocation}

    # when
    supplement = decide(draft(kind="supplement", gpu_hours=400, **change, **window(1, 8)))
    extension = decide(draft(kind="extension", gpu_hours=800, **change, **window(9, 16)))

    # then: 2,000 GPU-hours over 16 days, exactly the limits
    assert (supplement.status, extension.status) == ("approved", "approved")
    allocation.refresh_from_db()
    assert (allocation.granted_gpu_hours, (allocation.end_date - allocation.start_date).days) == (
        2_000,
        15,
    )


# --- the lineage's compute ---------------------------------------------------------------------

# 10^18 FLOP/s × 3,600 s × 0.4 = 1.44 × 10^21 FLOP per GPU-hour: 6,945 GPU-hours reach 10^25
HEAVY_FLOPS = 10**18


@pytest.fixture
def heavy_pool(pool: GpuPool) -> GpuPool:
    """A pool at the fixture's site whose GPUs are fast enough for 10^25 FLOP in a week."""
    heavy = PoolFactory(
        name="narvik-heavy",
        site=pool.site,
        accelerator=AcceleratorFactory(name="X1", peak_bf16_flops=HEAVY_FLOPS),
    )
    CapacityEventFactory(pool=heavy, effective_from=date(2020, 1, 1), gpus_in_service=100)
    return heavy


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spelling",
    ["fjord llm", "  Fjord   LLM ", "FJORD\tLLM", "\uff26\uff4a\uff4f\uff52\uff44 LLM"],
    ids=["lower", "spaces", "tab", "fullwidth"],
)
def test_a_lineage_spelt_otherwise_adds_up_with_its_grants(
    draft, decide, heavy_pool, window, spelling
):
    # given: 4,000 GPU-hours granted to "Fjord LLM" (5.8 × 10^24 FLOP)
    first = decide(
        draft(pool=heavy_pool, gpu_hours=4_000, model_lineage="Fjord LLM", **window(1, 10))
    )
    assert first.status == "approved"

    # when: 4,000 more for the same lineage, spelt otherwise
    second = decide(
        draft(pool=heavy_pool, gpu_hours=4_000, model_lineage=spelling, **window(1, 10))
    )

    # then
    assert second.status == "in_review"
    assert "systemic_risk" in [entry["code"] for entry in second.reasons]


@pytest.mark.django_db
def test_a_lineage_counts_the_compute_held_in_review(draft, decide, heavy_pool, window):
    # given: 4,000 GPU-hours of the lineage held for a reviewer (high risk)
    held = decide(
        draft(
            pool=heavy_pool,
            gpu_hours=4_000,
            risk_category="high",
            model_lineage="Fjord LLM",
            **window(1, 10),
        )
    )
    assert held.status == "in_review"

    # when
    second = decide(
        draft(pool=heavy_pool, gpu_hours=4_000, model_lineage="fjord llm", **window(1, 10))
    )

    # then
    assert second.status == "in_review"
    assert "systemic_risk" in [entry["code"] for entry in second.reasons]


@pytest.mark.django_db
def test_a_supplement_without_a_lineage_counts_for_its_allocations(
    draft, decide, heavy_pool, window
):
    # given
    granted = decide(
        draft(pool=heavy_pool, gpu_hours=4_000, model_lineage="Fjord LLM", **window(1, 10))
    )
    allocation = Allocation.objects.get(application=granted)

    # when: 4,000 more to the same allocation, no lineage named
    supplement = decide(
        draft(
            pool=heavy_pool,
            kind="supplement",
            allocation=allocation,
            gpu_hours=4_000,
            **window(1, 10),
        )
    )

    # then
    assert supplement.status == "in_review"
    assert "systemic_risk" in [entry["code"] for entry in supplement.reasons]


def test_the_lineage_key_is_the_name_folded_and_its_spaces_collapsed():
    # then
    assert services.lineage_key("  Fjord \u00a0 LLM\n") == "fjord llm"
    assert services.lineage_key("\uff26\uff4a\uff4f\uff52\uff44-LLM") == "fjord-llm"
    assert services.lineage_key("   ") == ""


# --- races of real processes on PostgreSQL ---------------------------------------------------


def _slowed_after_screening(seconds: float) -> None:
    """In this process, wait before the locks of a decision are taken, after its lock-free
    checks: whatever another process commits meanwhile is what the locked part must see."""
    from allocations import locks

    make_rows = locks.ensure_ledger_rows_of

    def slow(**kwargs: Any) -> None:
        time.sleep(seconds)
        make_rows(**kwargs)

    # an admission cycle makes its missing rows by ids, before its transaction
    locks.ensure_ledger_rows_of = slow  # type: ignore[assignment]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_a_supplement_decided_while_its_allocation_is_released_is_refused(
    draft, decide, founder, window, totals
):
    # given: an allocation, and a supplement to it waiting for the worker
    granted = decide(draft(gpu_hours=1_000, **window(1, 10)))
    allocation = Allocation.objects.get(application=granted)
    supplement = services.application_submit(
        application=draft(kind="supplement", allocation=allocation, gpu_hours=500, **window(2, 8)),
        actor=founder,
    )

    def decide_the_supplement() -> None:
        _slowed_after_screening(1.5)
        services.application_decide(application_id=supplement.pk, submission=1)

    def release() -> None:
        allocation_services.allocation_release(
            allocation=Allocation.objects.get(pk=allocation.pk),
            actor=User.objects.get(pk=founder.pk),
        )

    # when: the release commits after the supplement's rules were first read
    outcomes = race({"decide": decide_the_supplement, "release": release})

    # then
    assert outcomes == {"decide": "ok", "release": "ok"}
    decided = Application.objects.get(pk=supplement.pk)
    assert decided.status == "rejected"
    assert [entry["code"] for entry in decided.reasons] == ["invalid_change"]
    assert Allocation.objects.get(pk=allocation.pk).status == "released"
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_two_applications_of_one_lineage_at_once_cannot_both_pass_the_systemic_risk_line(
    draft, heavy_pool, founder, rival, window
):
    # given: two organizations (two quota rows) each ask 4,000 GPU-hours for one lineage,
    # 5.8 × 10^24 FLOP each, 1.15 × 10^25 together
    rival_admin = Membership.objects.get(organization=rival).user
    submitted = [
        services.application_submit(
            application=draft(
                applicant=applicant,
                organization=organization,
                pool=heavy_pool,
                gpu_hours=4_000,
                model_lineage=lineage,
                **window(1, 10),
            ),
            actor=applicant,
        )
        for applicant, organization, lineage in (
            (founder, founder.memberships.get().organization, "Fjord LLM"),
            (rival_admin, rival, "fjord llm"),
        )
    ]

    def deciding(application: Application):
        def run() -> None:
            _slowed_after_screening(1.0)
            services.application_decide(application_id=application.pk, submission=1)

        return run

    # when: both are decided at once
    outcomes = race({str(index): deciding(app) for index, app in enumerate(submitted)})

    # then: one is granted, the other goes to a reviewer for systemic risk
    assert set(outcomes.values()) == {"ok"}
    decided = sorted(
        Application.objects.filter(pk__in=[app.pk for app in submitted]).values_list(
            "status", flat=True
        )
    )
    assert decided == ["approved", "in_review"]
    in_review = Application.objects.get(pk__in=[a.pk for a in submitted], status="in_review")
    assert "systemic_risk" in [entry["code"] for entry in in_review.reasons]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_a_pool_edit_while_a_decision_holds_its_days_neither_deadlocks_nor_fails(
    draft, founder, pool, window
):
    # given: an application the worker will approve, and the pool's rows for its days
    submitted = services.application_submit(
        application=draft(gpu_hours=1_000, **window(1, 10)), actor=founder
    )

    def decide_holding_the_days() -> None:
        grant = services.allocation_grant

        def slow(**kwargs: Any) -> Allocation:
            allocation = grant(**kwargs)
            # the pool-day locks are held and rows that refer to the pool are written: its
            # foreign keys are checked at commit, after the edit below came in
            time.sleep(1.5)
            return allocation

        services.allocation_grant = slow  # type: ignore[assignment]
        services.application_decide(application_id=submitted.pk, submission=1)

    def edit_the_pool() -> None:
        time.sleep(0.5)
        inventory.inventory_update(
            instance=GpuPool.objects.get(pk=pool.pk),
            values={"availability": Decimal("0.900")},
            actor=SYSTEM,
        )

    # when
    outcomes = race({"decide": decide_holding_the_days, "edit": edit_the_pool})

    # then: both succeed, one after the other
    assert outcomes == {"decide": "ok", "edit": "ok"}
    assert Application.objects.get(pk=submitted.pk).status == "approved"
    assert GpuPool.objects.get(pk=pool.pk).availability == Decimal("0.900")


@pytest.mark.django_db
@pytest.mark.usefixtures("postgres")
def test_inventory_writers_lock_the_pool_so_that_foreign_key_checks_pass(pool, draft, decide):
    # given: a pool with ledger rows to rewrite
    decide(draft())

    # when
    with CaptureQueriesContext(connection) as queries:
        inventory.inventory_update(
            instance=pool, values={"availability": Decimal("0.900")}, actor=SYSTEM
        )

    # then: every lock on the pool is FOR NO KEY UPDATE, which FOR KEY SHARE does not wait for
    pool_locks = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT")
        and 'FROM "allocations_gpupool"' in query["sql"]
        and " FOR " in query["sql"]
    ]
    assert len(pool_locks) >= 2
    assert all(sql.endswith("FOR NO KEY UPDATE") for sql in pool_locks)
