"""The energy ledger: every reservation releases exactly what it reserved, and edits of a
site's PUE, an accelerator's IT power or a pool's site or accelerator re-derive the site-day
ledger, so that it always equals the sum of the live reservations, day by day."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.authz import SYSTEM
from allocations.models import (
    AcceleratorModel,
    Allocation,
    AllocationStatus,
    Application,
    ApplicationStatus,
    GpuPool,
    Site,
    SiteDay,
)
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from allocations.services import inventory
from allocations.services.ledger import daily_shares, wh_per_gpu_hour
from tests.factories import (
    AcceleratorFactory,
    CapacityEventFactory,
    PoolFactory,
    PowerPhaseFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db


def live_reservations_wh() -> dict[tuple[Any, date], tuple[Decimal, Decimal]]:
    """(committed, held) Wh per site and day, summed from the live reservations at the rate
    of the inventory as it is now: every hold, and every grant's days not released."""
    totals: dict[tuple[Any, date], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
    reservations = Application.objects.filter(
        status__in=(ApplicationStatus.APPROVED, ApplicationStatus.IN_REVIEW)
    ).select_related("pool__site", "pool__accelerator", "allocation", "granted_allocation")
    for application in reservations:
        pool = GpuPool.objects.select_related("site", "accelerator").get(pk=application.pool_id)
        rate = Decimal(pool.accelerator.it_power_w) * pool.site.pue
        held = application.status == ApplicationStatus.IN_REVIEW
        if held and not application.holds_capacity:
            continue
        released_from = None
        if not held:
            allocation = (
                application.allocation
                if application.allocation_id
                else Allocation.objects.get(application=application)
            )
            released_from = Allocation.objects.get(pk=allocation.pk).released_from
        shares = daily_shares(
            gpu_hours=application.gpu_hours,
            start=application.start_date,
            end=application.end_date,
        )
        for offset, share in enumerate(shares):
            day = application.start_date + timedelta(days=offset)
            if released_from is not None and day >= released_from:
                continue
            totals[(pool.site_id, day)][1 if held else 0] += share * rate
    return {key: (value[0], value[1]) for key, value in totals.items() if any(value)}


def ledger_wh() -> dict[tuple[Any, date], tuple[Decimal, Decimal]]:
    return {
        (row.site_id, row.day): (row.committed_wh, row.held_wh)
        for row in SiteDay.objects.all()
        if row.committed_wh or row.held_wh
    }


def _set_pue(site: Site, pue: str) -> None:
    inventory.inventory_update(
        instance=Site.objects.get(pk=site.pk), values={"pue": Decimal(pue)}, actor=SYSTEM
    )


# --- the regressions ---------------------------------------------------------------------------


def test_energy_per_gpu_hour_is_the_site_pue_times_the_it_power():
    # given: a GB300 (1,900 W of IT power) at a site with a PUE of 1.10
    pool = GpuPool(site=Site(pue=Decimal("1.10")), accelerator=AcceleratorModel(it_power_w=1900))

    # then
    assert wh_per_gpu_hour(pool) == Decimal("2090.00")


def test_a_release_after_the_pue_rose_gives_back_what_the_grant_reserved(
    draft, decide, pool, founder
):
    # given: a grant at PUE 1.10, then the site's PUE raised to 1.20
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=1_000)))
    _set_pue(pool.site, "1.20")

    # when
    released = allocation_services.allocation_release(allocation=allocation, actor=founder)

    # then: no error, and nothing stays reserved for the released days
    assert released.status == AllocationStatus.RELEASED
    assert ledger_wh() == live_reservations_wh() == {}


def test_the_ledger_follows_a_pue_rise_for_what_stays_reserved(draft, decide, pool):
    # given
    decide(draft(gpu_hours=1_000))
    decide(draft(gpu_hours=12_000))

    # when
    _set_pue(pool.site, "1.20")

    # then: 100 GPU-hours a day at 1,900 W × 1.20 = 228,000 Wh committed
    first = ledger_wh()[(pool.site_id, draft().start_date)]
    assert first == (Decimal("228000"), Decimal("2736000"))
    assert ledger_wh() == live_reservations_wh()


def test_a_withdrawn_hold_after_the_pue_fell_leaves_no_phantom_energy(draft, decide, pool, founder):
    # given: a hold at PUE 1.10, then the PUE lowered to 1.05
    held = decide(draft(gpu_hours=12_000))
    assert held.status == ApplicationStatus.IN_REVIEW
    _set_pue(pool.site, "1.05")

    # when
    services.application_withdraw(application=held, actor=founder)

    # then
    assert ledger_wh() == {}


def test_a_rejected_hold_after_the_pue_rose_releases_without_error(draft, decide, pool, reviewer):
    # given
    held = decide(draft(gpu_hours=12_000))
    _set_pue(pool.site, "1.20")

    # when
    services.application_reject(application=held, actor=reviewer, note="no")

    # then
    assert ledger_wh() == {}


def test_an_approval_after_the_it_power_changed_commits_at_the_new_rate(
    draft, decide, pool, reviewer, founder
):
    # given: a hold, then the accelerator's IT power raised from 1,900 to 2,000 W
    held = decide(draft(gpu_hours=12_000))
    inventory.inventory_update(
        instance=AcceleratorModel.objects.get(pk=pool.accelerator_id),
        values={"it_power_w": 2_000},
        actor=SYSTEM,
    )

    # when
    services.application_approve(application=held, actor=reviewer, note="ok")
    allocation = Allocation.objects.get(application=held)
    allocation_services.allocation_release(allocation=allocation, actor=founder)

    # then
    assert ledger_wh() == live_reservations_wh() == {}


def test_moving_a_pool_to_another_site_moves_its_reservations(draft, decide, pool):
    # given: a grant and a hold in the pool, and a second site with another PUE
    decide(draft(gpu_hours=1_000))
    decide(draft(gpu_hours=12_000))
    other = SiteFactory(name="mo-i-rana", pue=Decimal("1.30"))
    PowerPhaseFactory(site=other, power_mw=Decimal("1"), online_from=date(2020, 1, 1))

    # when
    inventory.inventory_update(
        instance=GpuPool.objects.get(pk=pool.pk), values={"site": other}, actor=SYSTEM
    )

    # then: the first site has nothing left; the second holds both at its own rate
    assert {site for site, _ in ledger_wh()} == {other.pk}
    assert ledger_wh() == live_reservations_wh()


def test_a_pue_rise_past_the_envelope_succeeds_and_flags_the_allocations(draft, decide, pool):
    # given: a grant whose energy nearly fills a small envelope
    allocation = Allocation.objects.get(application=decide(draft(gpu_hours=1_000)))
    inventory.inventory_create(
        model=type(pool.site.power_phases.first()),
        values={
            "site": pool.site,
            "name": "curtailment",
            "power_mw": Decimal("-0.99"),
            "online_from": date(2020, 1, 1),
        },
        actor=SYSTEM,
    )
    # 0.01 MW × 24 h = 240,000 Wh a day; 100 GPU-hours at 2,090 Wh = 209,000 Wh fit

    # when: at PUE 1.30, 247,000 Wh do not fit any more
    _set_pue(pool.site, "1.30")

    # then: nothing cancelled, the days reported overcommitted
    allocation.refresh_from_db()
    assert allocation.status in (AllocationStatus.SCHEDULED, AllocationStatus.ACTIVE)
    assert allocation.at_risk is True
    assert ledger_wh() == live_reservations_wh()


# --- any sequence of decisions and edits ---------------------------------------------------------

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "grant",
                "hold",
                "approve",
                "reject",
                "withdraw",
                "release",
                "pue",
                "it_power",
                "move",
                "swap_accelerator",
            ]
        ),
        st.integers(min_value=0, max_value=1_000),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_after_any_sequence_the_energy_ledger_equals_the_live_reservations(
    operations, draft, decide, pool, founder, reviewer, today
):
    # given: a second site and a second accelerator, each example from the same start
    with transaction.atomic():
        other_site = SiteFactory(name="mo-i-rana", pue=Decimal("1.25"))
        PowerPhaseFactory(site=other_site, power_mw=Decimal("1"), online_from=date(2020, 1, 1))
        other_accelerator = AcceleratorFactory(name="H200", board_power_w=700, it_power_w=1_100)
        second = PoolFactory(name="mo-i-rana-h200", site=other_site, accelerator=other_accelerator)
        CapacityEventFactory(pool=second, effective_from=date(2020, 1, 1), gpus_in_service=100)
        pools = [pool, second]

        # when: the operations run one after the other
        for operation, seed in operations:
            target = GpuPool.objects.get(pk=pools[seed % 2].pk)
            first = 1 + seed % 7
            if operation in ("grant", "hold"):
                days = 1 + seed % 9
                hours = 100 + seed * 3 if operation == "grant" else 10_001 + seed
                decide(
                    draft(
                        pool=target,
                        gpu_hours=hours,
                        start_date=today + timedelta(days=first),
                        end_date=today + timedelta(days=first + days + 8),
                    )
                )
            elif operation in ("approve", "reject", "withdraw"):
                held = list(Application.objects.filter(status=ApplicationStatus.IN_REVIEW))
                if held:
                    application = held[seed % len(held)]
                    if operation == "approve":
                        services.application_approve(
                            application=application, actor=reviewer, note="ok"
                        )
                    elif operation == "reject":
                        services.application_reject(
                            application=application, actor=reviewer, note="no"
                        )
                    else:
                        services.application_withdraw(application=application, actor=founder)
            elif operation == "release":
                live = list(
                    Allocation.objects.filter(
                        status=AllocationStatus.SCHEDULED, released_from__isnull=True
                    ).order_by("created_at")
                )
                if live:
                    allocation_services.allocation_release(
                        allocation=live[seed % len(live)], actor=founder
                    )
            elif operation == "pue":
                site = Site.objects.get(pk=target.site_id)
                _set_pue(site, str(Decimal("1.00") + Decimal(seed % 60) / 100))
            elif operation == "it_power":
                accelerator = AcceleratorModel.objects.get(pk=target.accelerator_id)
                inventory.inventory_update(
                    instance=accelerator,
                    values={"it_power_w": accelerator.board_power_w + seed},
                    actor=SYSTEM,
                )
            elif operation == "move":
                sites = [pool.site_id, other_site.pk]
                new_site = Site.objects.get(pk=sites[(sites.index(target.site_id) + 1) % 2])
                inventory.inventory_update(instance=target, values={"site": new_site}, actor=SYSTEM)
            else:
                accelerators = [pool.accelerator_id, other_accelerator.pk]
                new_accelerator = AcceleratorModel.objects.get(
                    pk=accelerators[(accelerators.index(target.accelerator_id) + 1) % 2]
                )
                inventory.inventory_update(
                    instance=target, values={"accelerator": new_accelerator}, actor=SYSTEM
                )

            # then: after every step, the ledger is the sum of what is reserved
            assert ledger_wh() == live_reservations_wh(), operation
        transaction.set_rollback(True)
