"""The inventory API: sites, power phases, accelerators, pools, their availability and their
capacity events. Every signed-in user reads; only operators write, and every write is
audited. Each endpoint: the happy path, a denial and a refusal, with exact bodies; what is
refused changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Site
from tests.allocations.bodies import (
    accelerator_body,
    capacity_event_body,
    pool_body,
    power_phase_body,
    site_body,
)
from tests.allocations.conftest import Narvik
from tests.bodies import (
    INVALID_PAGE,
    NOT_AN_OPERATOR,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    REQUIRED,
    audit_rows,
    audit_when,
    invalid,
    page,
)
from tests.factories import (
    AcceleratorFactory,
    CapacityEventFactory,
    PoolFactory,
    PowerPhaseFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

API = "/api/v1"


def _in_use(noun: str) -> dict[str, str]:
    return {"code": "in_use", "message": f"This {noun} is still referenced and cannot be deleted."}


# --- who may do what, on every endpoint ---------------------------------------------------

# Each request is built from the Narvik site; rows it needs of its own (a site nobody uses,
# an accelerator no pool runs) are made when it is built, before the state is read.
Request = tuple[str, str, dict[str, Any] | None]

READS: dict[str, Callable[[Narvik], Request]] = {
    "list sites": lambda n: ("get", f"{API}/sites/", None),
    "read a site": lambda n: ("get", f"{API}/sites/{n.site.pk}/", None),
    "list power phases": lambda n: ("get", f"{API}/sites/{n.site.pk}/power-phases/", None),
    "read a power phase": lambda n: (
        "get",
        f"{API}/sites/{n.site.pk}/power-phases/{n.phase_one.pk}/",
        None,
    ),
    "list accelerators": lambda n: ("get", f"{API}/accelerators/", None),
    "read an accelerator": lambda n: ("get", f"{API}/accelerators/{n.gb300.pk}/", None),
    "list pools": lambda n: ("get", f"{API}/pools/", None),
    "read a pool": lambda n: ("get", f"{API}/pools/{n.pool.pk}/", None),
    "read availability": lambda n: (
        "get",
        f"{API}/pools/{n.pool.pk}/availability/",
        {"start": "2026-12-01", "end": "2026-12-01"},
    ),
    "list capacity events": lambda n: ("get", f"{API}/pools/{n.pool.pk}/capacity-events/", None),
    "read a capacity event": lambda n: (
        "get",
        f"{API}/pools/{n.pool.pk}/capacity-events/{n.installation.pk}/",
        None,
    ),
}

WRITES: dict[str, Callable[[Narvik], Request]] = {
    "create a site": lambda n: (
        "post",
        f"{API}/sites/",
        {"name": "Mo i Rana", "country": "NO", "pue": "1.15"},
    ),
    "change a site": lambda n: ("patch", f"{API}/sites/{n.site.pk}/", {"pue": "1.20"}),
    "delete a site": lambda n: ("delete", f"{API}/sites/{SiteFactory(name='Spare').pk}/", None),
    "create a power phase": lambda n: (
        "post",
        f"{API}/sites/{n.site.pk}/power-phases/",
        {"name": "Phase 3", "power_mw": "100", "online_from": "2028-01-01"},
    ),
    "change a power phase": lambda n: (
        "patch",
        f"{API}/sites/{n.site.pk}/power-phases/{n.phase_two.pk}/",
        {"power_mw": "300"},
    ),
    "delete a power phase": lambda n: (
        "delete",
        f"{API}/sites/{n.site.pk}/power-phases/{n.phase_two.pk}/",
        None,
    ),
    "create an accelerator": lambda n: (
        "post",
        f"{API}/accelerators/",
        {"name": "H200", "board_power_w": 700, "it_power_w": 1200, "peak_bf16_flops": 10**15},
    ),
    "change an accelerator": lambda n: (
        "patch",
        f"{API}/accelerators/{n.gb300.pk}/",
        {"it_power_w": 2000},
    ),
    "delete an accelerator": lambda n: (
        "delete",
        f"{API}/accelerators/{AcceleratorFactory(name='H200', board_power_w=700).pk}/",
        None,
    ),
    "create a pool": lambda n: (
        "post",
        f"{API}/pools/",
        {"name": "narvik-gb300-b", "site": str(n.site.pk), "accelerator": str(n.gb300.pk)},
    ),
    "change a pool": lambda n: ("patch", f"{API}/pools/{n.pool.pk}/", {"availability": "0.9"}),
    "delete a pool": lambda n: ("delete", f"{API}/pools/{n.pool.pk}/", None),
    "create a capacity event": lambda n: (
        "post",
        f"{API}/pools/{n.pool.pk}/capacity-events/",
        {"effective_from": "2026-12-10", "gpus_in_service": 90_000},
    ),
    "change a capacity event": lambda n: (
        "patch",
        f"{API}/pools/{n.pool.pk}/capacity-events/{n.installation.pk}/",
        {"gpus_in_service": 1},
    ),
    "delete a capacity event": lambda n: (
        "delete",
        f"{API}/pools/{n.pool.pk}/capacity-events/{n.installation.pk}/",
        None,
    ),
}


def _send(client: Any, request: Request) -> Any:
    method, url, data = request
    if method == "get":
        return client.get(url, data)
    return getattr(client, method)(url, data, format="json")


@pytest.mark.parametrize("who", ["member", "outsider"])
@pytest.mark.parametrize("name", WRITES)
def test_a_user_who_is_not_an_operator_may_not_write_the_inventory(
    name, who, narvik, client_for, state, request
):
    # given
    user = request.getfixturevalue(who)
    sent = WRITES[name](narvik)
    before = state()

    # when
    response = _send(client_for(user), sent)

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_OPERATOR
    assert state() == before


@pytest.mark.parametrize("name", [*READS, *WRITES])
def test_nobody_signed_out_reads_or_writes_the_inventory(name, narvik, api, state):
    # given
    sent = {**READS, **WRITES}[name](narvik)
    before = state()

    # when
    response = _send(api, sent)

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert state() == before


@pytest.mark.parametrize("name", READS)
def test_every_signed_in_user_reads_the_inventory(name, narvik, client_for, outsider):
    # when
    response = _send(client_for(outsider), READS[name](narvik))

    # then
    assert response.status_code == 200


# --- lists: pages and query counts --------------------------------------------------------

LISTS: dict[str, Callable[[Narvik], str]] = {
    "sites": lambda n: f"{API}/sites/",
    "power phases": lambda n: f"{API}/sites/{n.site.pk}/power-phases/",
    "accelerators": lambda n: f"{API}/accelerators/",
    "pools": lambda n: f"{API}/pools/",
    "capacity events": lambda n: f"{API}/pools/{n.pool.pk}/capacity-events/",
}


def _more_rows(narvik: Narvik, kind: str, how_many: int) -> None:
    """Add rows to one list of the Narvik site, which holds one of each."""
    for number in range(how_many):
        if kind == "sites":
            SiteFactory()
        elif kind == "power phases":
            PowerPhaseFactory(site=narvik.site, online_from=date(2028, 1, 1 + number))
        elif kind == "accelerators":
            AcceleratorFactory(name=f"H{200 + number}", board_power_w=700, it_power_w=1200)
        elif kind == "pools":
            PoolFactory(site=SiteFactory(), accelerator=AcceleratorFactory(name=f"B{number}"))
        else:
            CapacityEventFactory(pool=narvik.pool, effective_from=date(2027, 1, 1 + number))


# A nested list reads its parent first; every list counts its rows, then reads the page.
QUERIES = {"sites": 2, "power phases": 3, "accelerators": 2, "pools": 2, "capacity events": 3}


@pytest.mark.parametrize("kind", LISTS)
@pytest.mark.parametrize("rows", [1, 5])
def test_a_list_costs_the_same_queries_for_one_row_and_for_five(
    kind, rows, narvik, client_for, member, django_assert_num_queries
):
    # given: Narvik has one row of each kind (two power phases: none with one row)
    if kind == "power phases":
        PowerPhase.objects.filter(pk=narvik.phase_two.pk).delete()
    _more_rows(narvik, kind, rows - 1)
    client = client_for(member)

    # when
    with django_assert_num_queries(QUERIES[kind]):
        response = client.get(LISTS[kind](narvik))

    # then
    assert response.status_code == 200
    assert response.json()["count"] == rows


@pytest.mark.parametrize("kind", LISTS)
def test_a_page_past_the_last_is_not_found(kind, narvik, client_for, member):
    # when
    response = client_for(member).get(LISTS[kind](narvik), {"page": 2})

    # then
    assert response.status_code == 404
    assert response.json() == INVALID_PAGE


# --- sites --------------------------------------------------------------------------------


def test_a_member_lists_every_site_by_name(narvik, client_for, member):
    # given
    bodo = SiteFactory(name="Bodø", pue=Decimal("1.25"))

    # when
    response = client_for(member).get(f"{API}/sites/")

    # then
    assert response.status_code == 200
    assert response.json() == page([site_body(bodo), site_body(narvik.site)])


def test_an_operator_creates_a_site_and_the_creation_is_audited(client_for, operator):
    # when
    response = client_for(operator).post(
        f"{API}/sites/", {"name": "Mo i Rana", "country": "NO", "pue": "1.15"}, format="json"
    )

    # then
    site = Site.objects.get()
    assert response.status_code == 201
    assert response.json() == site_body(site)
    assert (site.name, site.country.code, site.pue) == ("Mo i Rana", "NO", Decimal("1.15"))
    assert audit_rows() == [
        {
            "verb": "site.create",
            "actor": operator.pk,
            "target": ("site", site.pk),
            "before": {},
            "after": {
                "name": "Mo i Rana",
                "country": "NO",
                "pue": "1.15",
                "created_at": audit_when(site.created_at),
            },
        }
    ]


def test_a_site_with_a_taken_name_an_unknown_country_and_a_pue_below_one_is_refused(
    narvik, client_for, operator, state
):
    # given
    before = state()

    # when
    response = client_for(operator).post(
        f"{API}/sites/", {"name": "Narvik", "country": "XX", "pue": "0.99"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "name": [("unique", "site with this name already exists.")],
            "country": [("invalid_choice", '"XX" is not a valid choice.')],
            "pue": [("min_value", "Ensure this value is greater than or equal to 1.")],
        }
    )
    assert state() == before


def test_a_site_without_its_fields_is_refused(client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).post(f"{API}/sites/", {}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"name": [REQUIRED], "country": [REQUIRED], "pue": [REQUIRED]}
    )
    assert state() == before


def test_a_member_reads_one_site(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/sites/{narvik.site.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == site_body(narvik.site)


def test_an_unknown_site_is_not_found(narvik, client_for, operator):
    # when
    response = client_for(operator).get(f"{API}/sites/{narvik.pool.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_changes_a_sites_pue_and_the_change_is_audited(narvik, client_for, operator):
    # when
    response = client_for(operator).patch(
        f"{API}/sites/{narvik.site.pk}/", {"pue": "1.2"}, format="json"
    )

    # then
    assert response.status_code == 200
    assert response.json() == site_body(narvik.site)
    assert response.json()["pue"] == "1.20"
    assert audit_rows() == [
        {
            "verb": "site.update",
            "actor": operator.pk,
            "target": ("site", narvik.site.pk),
            "before": {"pue": "1.10"},
            "after": {"pue": "1.20"},
        }
    ]


def test_a_site_patched_with_a_malformed_pue_keeps_its_value(narvik, client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).patch(
        f"{API}/sites/{narvik.site.pk}/", {"pue": "low"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"pue": [("invalid", "A valid number is required.")]})
    assert state() == before


def test_an_operator_deletes_a_site_without_pools_and_its_power_phases_go_too(client_for, operator):
    # given
    site = SiteFactory(name="Spare")
    PowerPhaseFactory(site=site)
    snapshot = {
        "name": "Spare",
        "country": "NO",
        "pue": "1.10",
        "created_at": audit_when(site.created_at),
    }

    # when
    response = client_for(operator).delete(f"{API}/sites/{site.pk}/")

    # then
    assert response.status_code == 204
    assert response.content == b""
    assert not Site.objects.exists()
    assert not PowerPhase.objects.exists()
    assert audit_rows() == [
        {
            "verb": "site.delete",
            "actor": operator.pk,
            "target": ("site", site.pk),
            "before": snapshot,
            "after": {},
        }
    ]


def test_deleting_a_site_that_still_has_a_pool_is_in_use_and_deletes_nothing(
    narvik, client_for, operator, state
):
    # given
    before = state()

    # when
    response = client_for(operator).delete(f"{API}/sites/{narvik.site.pk}/")

    # then
    assert response.status_code == 409
    assert response.json() == _in_use("site")
    assert state() == before


# --- power phases -------------------------------------------------------------------------


def test_a_member_lists_a_sites_power_phases_by_first_day(narvik, client_for, member):
    # given: a curtailment between the two phases, and a phase of another site
    curtailment = PowerPhaseFactory(
        site=narvik.site,
        name="Curtailment",
        power_mw=Decimal("-40"),
        online_from=date(2026, 12, 10),
        online_until=date(2026, 12, 12),
    )
    PowerPhaseFactory(site=SiteFactory(name="Bodø"))

    # when
    response = client_for(member).get(f"{API}/sites/{narvik.site.pk}/power-phases/")

    # then
    assert response.status_code == 200
    assert response.json() == page(
        [
            power_phase_body(narvik.phase_one),
            power_phase_body(curtailment),
            power_phase_body(narvik.phase_two),
        ]
    )


def test_the_power_phases_of_an_unknown_site_are_not_found(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/sites/{narvik.pool.pk}/power-phases/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_adds_a_curtailment_and_the_addition_is_audited(narvik, client_for, operator):
    # when
    response = client_for(operator).post(
        f"{API}/sites/{narvik.site.pk}/power-phases/",
        {
            "name": "Curtailment",
            "power_mw": "-40",
            "online_from": "2026-12-10",
            "online_until": "2026-12-12",
        },
        format="json",
    )

    # then
    phase = PowerPhase.objects.get(name="Curtailment")
    assert response.status_code == 201
    assert response.json() == power_phase_body(phase)
    assert (phase.site, phase.power_mw) == (narvik.site, Decimal("-40"))
    assert audit_rows() == [
        {
            "verb": "powerphase.create",
            "actor": operator.pk,
            "target": ("powerphase", phase.pk),
            "before": {},
            "after": {
                "site_id": str(narvik.site.pk),
                "name": "Curtailment",
                "power_mw": "-40.000",
                "online_from": "2026-12-10",
                "online_until": "2026-12-12",
            },
        }
    ]


@pytest.mark.parametrize(
    ("sent", "fields"),
    [
        (
            {
                "name": "x",
                "power_mw": "5",
                "online_from": "2027-02-01",
                "online_until": "2027-01-31",
            },
            {
                "online_until": [
                    ("before_start", "The last day online comes on or after the first.")
                ]
            },
        ),
        (
            {"name": "x", "power_mw": "0", "online_from": "2027-02-01"},
            {"power_mw": [("zero", "A phase adds or removes power: it cannot be 0 MW.")]},
        ),
        (
            {},
            {"name": [REQUIRED], "power_mw": [REQUIRED], "online_from": [REQUIRED]},
        ),
        (
            {"name": "x", "power_mw": "1000000", "online_from": "1 February"},
            {
                "power_mw": [
                    (
                        "max_whole_digits",
                        "Ensure that there are no more than 6 digits before the decimal point.",
                    )
                ],
                "online_from": [
                    (
                        "invalid",
                        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                    )
                ],
            },
        ),
    ],
    ids=["ends before it starts", "zero MW", "empty", "malformed"],
)
def test_an_invalid_power_phase_is_refused(sent, fields, narvik, client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).post(
        f"{API}/sites/{narvik.site.pk}/power-phases/", sent, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert state() == before


def test_a_member_reads_one_power_phase(narvik, client_for, member):
    # when
    response = client_for(member).get(
        f"{API}/sites/{narvik.site.pk}/power-phases/{narvik.phase_two.pk}/"
    )

    # then
    assert response.status_code == 200
    assert response.json() == power_phase_body(narvik.phase_two)


def test_a_power_phase_read_under_another_site_is_not_found(narvik, client_for, operator):
    # given
    other = SiteFactory(name="Bodø")

    # when
    response = client_for(operator).get(
        f"{API}/sites/{other.pk}/power-phases/{narvik.phase_one.pk}/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_ends_a_power_phase_and_the_change_is_audited(narvik, client_for, operator):
    # when
    response = client_for(operator).patch(
        f"{API}/sites/{narvik.site.pk}/power-phases/{narvik.phase_one.pk}/",
        {"online_until": "2030-12-31"},
        format="json",
    )

    # then
    assert response.status_code == 200
    assert response.json() == power_phase_body(narvik.phase_one)
    assert response.json()["online_until"] == "2030-12-31"
    assert audit_rows() == [
        {
            "verb": "powerphase.update",
            "actor": operator.pk,
            "target": ("powerphase", narvik.phase_one.pk),
            "before": {"online_until": None},
            "after": {"online_until": "2030-12-31"},
        }
    ]


def test_a_power_phase_cannot_be_changed_to_end_before_it_starts(
    narvik, client_for, operator, state
):
    # given: phase 2 starts on 2027-07-01
    before = state()

    # when
    response = client_for(operator).patch(
        f"{API}/sites/{narvik.site.pk}/power-phases/{narvik.phase_two.pk}/",
        {"online_until": "2027-06-30"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"online_until": [("before_start", "The last day online comes on or after the first.")]}
    )
    assert state() == before


def test_an_operator_deletes_a_power_phase_and_the_deletion_is_audited(
    narvik, client_for, operator
):
    # given
    phase = narvik.phase_two

    # when
    response = client_for(operator).delete(f"{API}/sites/{narvik.site.pk}/power-phases/{phase.pk}/")

    # then
    assert response.status_code == 204
    assert list(PowerPhase.objects.all()) == [narvik.phase_one]
    assert audit_rows() == [
        {
            "verb": "powerphase.delete",
            "actor": operator.pk,
            "target": ("powerphase", phase.pk),
            "before": {
                "site_id": str(narvik.site.pk),
                "name": "Phase 2",
                "power_mw": "290.000",
                "online_from": "2027-07-01",
                "online_until": None,
            },
            "after": {},
        }
    ]


def test_deleting_a_power_phase_under_another_site_is_not_found_and_deletes_nothing(
    narvik, client_for, operator, state
):
    # given
    other = SiteFactory(name="Bodø")
    before = state()

    # when
    response = client_for(operator).delete(
        f"{API}/sites/{other.pk}/power-phases/{narvik.phase_one.pk}/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert state() == before


# --- accelerators -------------------------------------------------------------------------


def test_a_member_lists_the_accelerators_by_name(narvik, client_for, member):
    # given
    h200 = AcceleratorFactory(name="H200", board_power_w=700, it_power_w=1200)

    # when
    response = client_for(member).get(f"{API}/accelerators/")

    # then
    assert response.status_code == 200
    assert response.json() == page([accelerator_body(narvik.gb300), accelerator_body(h200)])


def test_an_operator_adds_an_accelerator_and_the_addition_is_audited(client_for, operator):
    # when
    response = client_for(operator).post(
        f"{API}/accelerators/",
        {
            "name": "H200",
            "board_power_w": 700,
            "it_power_w": 1200,
            "peak_bf16_flops": 989_000_000_000_000,
        },
        format="json",
    )

    # then
    h200 = AcceleratorModel.objects.get()
    assert response.status_code == 201
    assert response.json() == accelerator_body(h200)
    assert audit_rows() == [
        {
            "verb": "acceleratormodel.create",
            "actor": operator.pk,
            "target": ("acceleratormodel", h200.pk),
            "before": {},
            "after": {
                "name": "H200",
                "board_power_w": 700,
                "it_power_w": 1200,
                "peak_bf16_flops": 989_000_000_000_000,
            },
        }
    ]


@pytest.mark.parametrize(
    ("sent", "fields"),
    [
        (
            {"name": "B200", "board_power_w": 1000, "it_power_w": 900, "peak_bf16_flops": 10**15},
            {
                "it_power_w": [
                    (
                        "below_board_power",
                        "IT power per GPU includes the board: it cannot be smaller.",
                    )
                ]
            },
        ),
        (
            {"name": "GB300", "board_power_w": 1400, "it_power_w": 1900, "peak_bf16_flops": 1},
            {"name": [("unique", "accelerator model with this name already exists.")]},
        ),
        (
            {"name": "B200", "board_power_w": -1, "it_power_w": 900, "peak_bf16_flops": 10**15},
            {"board_power_w": [("min_value", "Ensure this value is greater than or equal to 0.")]},
        ),
    ],
    ids=["IT below board", "name taken", "negative board power"],
)
def test_an_invalid_accelerator_is_refused(sent, fields, narvik, client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).post(f"{API}/accelerators/", sent, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert state() == before


def test_a_member_reads_one_accelerator(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/accelerators/{narvik.gb300.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == accelerator_body(narvik.gb300)


def test_an_unknown_accelerator_is_not_found(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/accelerators/{narvik.site.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_changes_an_accelerators_it_power_and_the_change_is_audited(
    narvik, client_for, operator
):
    # when
    response = client_for(operator).patch(
        f"{API}/accelerators/{narvik.gb300.pk}/", {"it_power_w": 2000}, format="json"
    )

    # then
    assert response.status_code == 200
    assert response.json() == accelerator_body(narvik.gb300)
    assert response.json()["it_power_w"] == 2000
    assert audit_rows() == [
        {
            "verb": "acceleratormodel.update",
            "actor": operator.pk,
            "target": ("acceleratormodel", narvik.gb300.pk),
            "before": {"it_power_w": 1900},
            "after": {"it_power_w": 2000},
        }
    ]


def test_an_accelerators_it_power_cannot_be_changed_below_its_board_power(
    narvik, client_for, operator, state
):
    # given: the GB300's board draws 1,400 W
    before = state()

    # when
    response = client_for(operator).patch(
        f"{API}/accelerators/{narvik.gb300.pk}/", {"it_power_w": 1399}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "it_power_w": [
                ("below_board_power", "IT power per GPU includes the board: it cannot be smaller.")
            ]
        }
    )
    assert state() == before


def test_an_operator_deletes_an_accelerator_no_pool_runs(narvik, client_for, operator):
    # given
    h200 = AcceleratorFactory(name="H200", board_power_w=700, it_power_w=1200)

    # when
    response = client_for(operator).delete(f"{API}/accelerators/{h200.pk}/")

    # then
    assert response.status_code == 204
    assert list(AcceleratorModel.objects.all()) == [narvik.gb300]
    assert [(row["verb"], row["target"]) for row in audit_rows()] == [
        ("acceleratormodel.delete", ("acceleratormodel", h200.pk))
    ]


def test_deleting_an_accelerator_a_pool_runs_is_in_use_and_deletes_nothing(
    narvik, client_for, operator, state
):
    # given
    before = state()

    # when
    response = client_for(operator).delete(f"{API}/accelerators/{narvik.gb300.pk}/")

    # then
    assert response.status_code == 409
    assert response.json() == _in_use("accelerator model")
    assert state() == before


# --- pools --------------------------------------------------------------------------------


def test_a_member_lists_the_pools_by_name(narvik, client_for, member):
    # given
    first = PoolFactory(name="bodo-h200", accelerator=AcceleratorFactory(name="H200"))

    # when
    response = client_for(member).get(f"{API}/pools/")

    # then
    assert response.status_code == 200
    assert response.json() == page([pool_body(first), pool_body(narvik.pool)])


def test_pools_filter_by_site_and_by_being_open(narvik, client_for, member):
    # given
    closed = PoolFactory(name="narvik-gb300-b", site=narvik.site, is_open=False)
    PoolFactory(name="bodo-h200", site=SiteFactory(name="Bodø"))
    client = client_for(member)

    # when
    at_narvik = client.get(f"{API}/pools/", {"site": str(narvik.site.pk)})
    closed_at_narvik = client.get(f"{API}/pools/", {"site": str(narvik.site.pk), "is_open": False})

    # then
    assert at_narvik.json() == page([pool_body(narvik.pool), pool_body(closed)])
    assert closed_at_narvik.json() == page([pool_body(closed)])


def test_a_pool_filter_that_is_not_a_site_id_is_refused(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/pools/", {"site": "narvik"})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"site": [("invalid", "“narvik” is not a valid UUID.")]})


def test_an_operator_creates_a_pool_and_the_creation_is_audited(narvik, client_for, operator):
    # when
    response = client_for(operator).post(
        f"{API}/pools/",
        {
            "name": "narvik-gb300-b",
            "site": str(narvik.site.pk),
            "accelerator": str(narvik.gb300.pk),
            "availability": "0.9",
            "is_open": False,
        },
        format="json",
    )

    # then
    pool = GpuPool.objects.get(name="narvik-gb300-b")
    assert response.status_code == 201
    assert response.json() == pool_body(pool)
    assert (pool.availability, pool.is_open) == (Decimal("0.9"), False)
    assert audit_rows() == [
        {
            "verb": "gpupool.create",
            "actor": operator.pk,
            "target": ("gpupool", pool.pk),
            "before": {},
            "after": {
                "name": "narvik-gb300-b",
                "site_id": str(narvik.site.pk),
                "accelerator_id": str(narvik.gb300.pk),
                "availability": "0.900",
                "is_open": False,
                "created_at": audit_when(pool.created_at),
            },
        }
    ]


def test_a_new_pool_is_open_at_0_95_unless_told_otherwise(narvik, client_for, operator):
    # when
    response = client_for(operator).post(
        f"{API}/pools/",
        {
            "name": "narvik-gb300-b",
            "site": str(narvik.site.pk),
            "accelerator": str(narvik.gb300.pk),
        },
        format="json",
    )

    # then
    assert response.status_code == 201
    assert (response.json()["availability"], response.json()["is_open"]) == ("0.950", True)


@pytest.mark.parametrize(
    ("sent", "fields"),
    [
        (
            {"name": "Narvik GB300", "availability": "0"},
            {
                "name": [
                    (
                        "invalid",
                        'Enter a valid "slug" consisting of letters, numbers, '
                        "underscores or hyphens.",
                    )
                ],
                "availability": [
                    ("min_value", "Ensure this value is greater than or equal to 0.001.")
                ],
            },
        ),
        (
            {"name": "narvik-gb300-a", "availability": "1.5"},
            {
                "name": [("unique", "gpu pool with this name already exists.")],
                "availability": [("max_value", "Ensure this value is less than or equal to 1.")],
            },
        ),
    ],
    ids=["not a slug, no availability", "name taken, availability past 1"],
)
def test_an_invalid_pool_is_refused(sent, fields, narvik, client_for, operator, state):
    # given
    before = state()
    sent = {"site": str(narvik.site.pk), "accelerator": str(narvik.gb300.pk), **sent}

    # when
    response = client_for(operator).post(f"{API}/pools/", sent, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert state() == before


def test_a_pool_at_an_unknown_site_is_refused(narvik, client_for, operator, state):
    # given
    before = state()
    unknown = narvik.pool.pk

    # when
    response = client_for(operator).post(
        f"{API}/pools/",
        {"name": "nowhere", "site": str(unknown), "accelerator": str(narvik.gb300.pk)},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"site": [("does_not_exist", f'Invalid pk "{unknown}" - object does not exist.')]}
    )
    assert state() == before


def test_a_member_reads_one_pool(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/pools/{narvik.pool.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == pool_body(narvik.pool)


def test_an_unknown_pool_is_not_found(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/pools/{narvik.site.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_lowers_a_pools_availability_and_the_change_is_audited(
    narvik, client_for, operator
):
    # when
    response = client_for(operator).patch(
        f"{API}/pools/{narvik.pool.pk}/", {"availability": "0.9"}, format="json"
    )

    # then
    assert response.status_code == 200
    assert response.json() == pool_body(narvik.pool)
    assert response.json()["availability"] == "0.900"
    assert audit_rows() == [
        {
            "verb": "gpupool.update",
            "actor": operator.pk,
            "target": ("gpupool", narvik.pool.pk),
            "before": {"availability": "0.950"},
            "after": {"availability": "0.900"},
        }
    ]


def test_a_pools_availability_cannot_pass_one(narvik, client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).patch(
        f"{API}/pools/{narvik.pool.pk}/", {"availability": "1.001"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"availability": [("max_value", "Ensure this value is less than or equal to 1.")]}
    )
    assert state() == before


def test_an_operator_deletes_a_pool_without_applications_and_its_events_go_too(
    narvik, client_for, operator
):
    # when
    response = client_for(operator).delete(f"{API}/pools/{narvik.pool.pk}/")

    # then
    assert response.status_code == 204
    assert not GpuPool.objects.exists()
    assert not CapacityEvent.objects.exists()
    assert [(row["verb"], row["target"]) for row in audit_rows()] == [
        ("gpupool.delete", ("gpupool", narvik.pool.pk))
    ]


def test_deleting_a_pool_with_an_application_is_in_use_and_deletes_nothing(
    narvik, client_for, operator, state, application_in
):
    # given
    application_in(pool=narvik.pool)
    before = state()

    # when
    response = client_for(operator).delete(f"{API}/pools/{narvik.pool.pk}/")

    # then
    assert response.status_code == 409
    assert response.json() == _in_use("gpu pool")
    assert state() == before


# --- availability -------------------------------------------------------------------------


def _availability(day: str, gpus: int, capacity: int, full_load: str, envelope: str) -> dict:
    return {
        "day": day,
        "gpus_in_service": gpus,
        "capacity_gpu_hours": capacity,
        "full_load_mw": full_load,
        "power_envelope_mw": envelope,
    }


def test_availability_gives_each_days_gpus_gpu_hours_and_power(narvik, client_for, member):
    # given: 10,000 GPUs out for maintenance from 30 June, back on 2 July; phase 2 on 1 July
    CapacityEventFactory(pool=narvik.pool, effective_from=date(2027, 6, 30), gpus_in_service=90_000)
    CapacityEventFactory(pool=narvik.pool, effective_from=date(2027, 7, 2), gpus_in_service=100_000)

    # when
    response = client_for(member).get(
        f"{API}/pools/{narvik.pool.pk}/availability/", {"start": "2027-06-29", "end": "2027-07-02"}
    )

    # then
    assert response.status_code == 200
    assert response.json() == [
        _availability("2027-06-29", 100_000, 2_280_000, "209.000", "230.000"),
        _availability("2027-06-30", 90_000, 2_052_000, "188.100", "230.000"),
        _availability("2027-07-01", 90_000, 2_052_000, "188.100", "520.000"),
        _availability("2027-07-02", 100_000, 2_280_000, "209.000", "520.000"),
    ]


def test_availability_of_a_single_day_before_any_gpu_or_power(narvik, client_for, member):
    # when
    response = client_for(member).get(
        f"{API}/pools/{narvik.pool.pk}/availability/", {"start": "2025-12-31", "end": "2025-12-31"}
    )

    # then
    assert response.json() == [_availability("2025-12-31", 0, 0, "0.000", "0.000")]


def test_availability_defaults_to_31_days_from_today(narvik, client_for, member):
    # given
    today = timezone.localdate()

    # when
    response = client_for(member).get(f"{API}/pools/{narvik.pool.pk}/availability/")

    # then
    assert response.status_code == 200
    assert [row["day"] for row in response.json()] == [
        (today + timedelta(days=offset)).isoformat() for offset in range(31)
    ]


def test_availability_of_a_window_of_exactly_3660_days_is_given(narvik, client_for, member):
    # when
    response = client_for(member).get(
        f"{API}/pools/{narvik.pool.pk}/availability/",
        {"start": "2026-01-01", "end": (date(2026, 1, 1) + timedelta(days=3659)).isoformat()},
    )

    # then
    assert response.status_code == 200
    assert len(response.json()) == 3660


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            {"start": "2026-12-02", "end": "2026-12-01"},
            {"end": [("before_start", "The end comes on or after the start.")]},
        ),
        (
            {"start": "2026-01-01", "end": (date(2026, 1, 1) + timedelta(days=3660)).isoformat()},
            {"end": [("window_too_long", "Ask for at most 3660 days at a time.")]},
        ),
        (
            {"start": "1 December", "end": "2026-13-01"},
            {
                "start": [
                    (
                        "invalid",
                        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                    )
                ],
                "end": [
                    (
                        "invalid",
                        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                    )
                ],
            },
        ),
    ],
    ids=["end before start", "3661 days", "malformed"],
)
def test_an_invalid_availability_window_is_refused(query, fields, narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/pools/{narvik.pool.pk}/availability/", query)

    # then
    assert response.status_code == 400
    assert response.json() == invalid(fields)


def test_the_availability_of_an_unknown_pool_is_not_found(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/pools/{narvik.site.pk}/availability/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_availability_costs_three_queries_for_any_window(
    narvik, client_for, member, django_assert_num_queries
):
    # given
    client = client_for(member)

    # then: the pool with its site and accelerator, its events, its site's phases
    for end in ("2026-01-01", "2035-12-31"):
        with django_assert_num_queries(3):
            response = client.get(
                f"{API}/pools/{narvik.pool.pk}/availability/", {"start": "2026-01-01", "end": end}
            )
        assert response.status_code == 200


# --- capacity events ----------------------------------------------------------------------


def test_a_member_lists_a_pools_capacity_events_by_day(narvik, client_for, member):
    # given: the restore entered before the drop; an event of another pool
    restore = CapacityEventFactory(
        pool=narvik.pool, effective_from=date(2026, 12, 13), gpus_in_service=100_000
    )
    drop = CapacityEventFactory(
        pool=narvik.pool, effective_from=date(2026, 12, 10), gpus_in_service=90_000
    )
    CapacityEventFactory(pool=PoolFactory(site=narvik.site, accelerator=narvik.gb300))

    # when
    response = client_for(member).get(f"{API}/pools/{narvik.pool.pk}/capacity-events/")

    # then
    assert response.status_code == 200
    assert response.json() == page(
        [
            capacity_event_body(narvik.installation),
            capacity_event_body(drop),
            capacity_event_body(restore),
        ]
    )


def test_the_capacity_events_of_an_unknown_pool_are_not_found(narvik, client_for, member):
    # when
    response = client_for(member).get(f"{API}/pools/{narvik.site.pk}/capacity-events/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_enters_a_maintenance_window_as_two_events_and_availability_shows_it(
    narvik, client_for, operator
):
    # given
    client = client_for(operator)
    url = f"{API}/pools/{narvik.pool.pk}/capacity-events/"

    # when
    drop = client.post(
        url,
        {"effective_from": "2026-12-10", "gpus_in_service": 90_000, "note": "rack swap"},
        format="json",
    )
    restore = client.post(
        url, {"effective_from": "2026-12-12", "gpus_in_service": 100_000}, format="json"
    )

    # then
    dropped = CapacityEvent.objects.get(effective_from=date(2026, 12, 10))
    restored = CapacityEvent.objects.get(effective_from=date(2026, 12, 12))
    assert (drop.status_code, restore.status_code) == (201, 201)
    assert drop.json() == capacity_event_body(dropped)
    assert restore.json() == capacity_event_body(restored)
    assert audit_rows() == [
        {
            "verb": "capacityevent.create",
            "actor": operator.pk,
            "target": ("capacityevent", dropped.pk),
            "before": {},
            "after": {
                "pool_id": str(narvik.pool.pk),
                "effective_from": "2026-12-10",
                "gpus_in_service": 90_000,
                "note": "rack swap",
            },
        },
        {
            "verb": "capacityevent.create",
            "actor": operator.pk,
            "target": ("capacityevent", restored.pk),
            "before": {},
            "after": {
                "pool_id": str(narvik.pool.pk),
                "effective_from": "2026-12-12",
                "gpus_in_service": 100_000,
                "note": "",
            },
        },
    ]
    availability = client.get(
        f"{API}/pools/{narvik.pool.pk}/availability/", {"start": "2026-12-09", "end": "2026-12-12"}
    )
    assert [row["gpus_in_service"] for row in availability.json()] == [
        100_000,
        90_000,
        90_000,
        100_000,
    ]


def test_a_capacity_event_on_a_day_the_pool_already_has_one_is_refused(
    narvik, client_for, operator, state
):
    # given: the installation is on 2026-01-01
    before = state()

    # when
    response = client_for(operator).post(
        f"{API}/pools/{narvik.pool.pk}/capacity-events/",
        {"effective_from": "2026-01-01", "gpus_in_service": 5},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"effective_from": [("unique", "The pool already has a capacity event on this day.")]}
    )
    assert state() == before


def test_another_pool_may_have_an_event_on_the_same_day(narvik, client_for, operator):
    # given
    other = PoolFactory(site=narvik.site, accelerator=narvik.gb300)

    # when
    response = client_for(operator).post(
        f"{API}/pools/{other.pk}/capacity-events/",
        {"effective_from": "2026-01-01", "gpus_in_service": 5},
        format="json",
    )

    # then
    assert response.status_code == 201
    assert response.json() == capacity_event_body(CapacityEvent.objects.get(pool=other))


def test_a_capacity_event_with_negative_gpus_is_refused(narvik, client_for, operator, state):
    # given
    before = state()

    # when
    response = client_for(operator).post(
        f"{API}/pools/{narvik.pool.pk}/capacity-events/",
        {"effective_from": "2026-12-10", "gpus_in_service": -1},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"gpus_in_service": [("min_value", "Ensure this value is greater than or equal to 0.")]}
    )
    assert state() == before


def test_a_member_reads_one_capacity_event(narvik, client_for, member):
    # when
    response = client_for(member).get(
        f"{API}/pools/{narvik.pool.pk}/capacity-events/{narvik.installation.pk}/"
    )

    # then
    assert response.status_code == 200
    assert response.json() == capacity_event_body(narvik.installation)


def test_a_capacity_event_read_under_another_pool_is_not_found(narvik, client_for, operator):
    # given
    other = PoolFactory(site=narvik.site, accelerator=narvik.gb300)

    # when
    response = client_for(operator).get(
        f"{API}/pools/{other.pk}/capacity-events/{narvik.installation.pk}/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_operator_corrects_a_capacity_event_and_the_change_is_audited(
    narvik, client_for, operator
):
    # when: same day (its own), fewer GPUs
    response = client_for(operator).patch(
        f"{API}/pools/{narvik.pool.pk}/capacity-events/{narvik.installation.pk}/",
        {"effective_from": "2026-01-01", "gpus_in_service": 99_500},
        format="json",
    )

    # then
    assert response.status_code == 200
    assert response.json() == capacity_event_body(narvik.installation)
    assert response.json()["gpus_in_service"] == 99_500
    assert audit_rows() == [
        {
            "verb": "capacityevent.update",
            "actor": operator.pk,
            "target": ("capacityevent", narvik.installation.pk),
            "before": {"gpus_in_service": 100_000},
            "after": {"gpus_in_service": 99_500},
        }
    ]


def test_a_capacity_event_cannot_be_moved_onto_another_events_day(
    narvik, client_for, operator, state
):
    # given
    later = CapacityEventFactory(pool=narvik.pool, effective_from=date(2027, 1, 1))
    before = state()

    # when
    response = client_for(operator).patch(
        f"{API}/pools/{narvik.pool.pk}/capacity-events/{later.pk}/",
        {"effective_from": "2026-01-01"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"effective_from": [("unique", "The pool already has a capacity event on this day.")]}
    )
    assert state() == before


def test_an_operator_deletes_a_capacity_event_and_the_deletion_is_audited(
    narvik, client_for, operator
):
    # given
    event = CapacityEventFactory(pool=narvik.pool, effective_from=date(2026, 12, 10), note="x")

    # when
    response = client_for(operator).delete(
        f"{API}/pools/{narvik.pool.pk}/capacity-events/{event.pk}/"
    )

    # then
    assert response.status_code == 204
    assert list(CapacityEvent.objects.all()) == [narvik.installation]
    assert audit_rows() == [
        {
            "verb": "capacityevent.delete",
            "actor": operator.pk,
            "target": ("capacityevent", event.pk),
            "before": {
                "pool_id": str(narvik.pool.pk),
                "effective_from": "2026-12-10",
                "gpus_in_service": 1000,
                "note": "x",
            },
            "after": {},
        }
    ]


def test_deleting_a_capacity_event_under_another_pool_is_not_found_and_deletes_nothing(
    narvik, client_for, operator, state
):
    # given
    other = PoolFactory(site=narvik.site, accelerator=narvik.gb300)
    before = state()

    # when
    response = client_for(operator).delete(
        f"{API}/pools/{other.pk}/capacity-events/{narvik.installation.pk}/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert state() == before
