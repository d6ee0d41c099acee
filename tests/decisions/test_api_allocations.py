"""The allocations API: list, one, early release by the organization's admins, and
revocation by an operator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allocations.models import Allocation, BackendCall
from allocations.services import allocations as allocation_services
from tests.bodies import NOT_AN_OPERATOR, NOT_AUTHENTICATED, NOT_FOUND, invalid, keyset_page
from tests.decisions.bodies import NOT_AN_ADMIN, allocation_body
from tests.decisions.support import queued_tasks

pytestmark = pytest.mark.django_db

LIST = "/api/v1/allocations/"
SPOT_CHECKED = (
    "start_date",
    "end_date",
    "granted_gpu_hours",
    "used_gpu_hours",
    "remaining_gpu_hours",
    "energy_estimate_mwh",
    "energy_measured_mwh",
    "status",
    "at_risk",
    "released_from",
)


@pytest.fixture
def granted(draft, decide, window) -> Allocation:
    """1,000 GPU-hours over days 1..10."""
    return Allocation.objects.get(application=decide(draft(gpu_hours=1_000, **window(1, 10))))


def test_members_list_their_organizations_allocations_newest_first(
    draft, decide, window, client_for, researcher, granted, today
):
    # given
    newer = Allocation.objects.get(application=decide(draft(gpu_hours=500, **window(20, 24))))

    # when
    response = client_for(researcher).get(LIST)

    # then
    assert response.status_code == 200
    assert response.json() == keyset_page([allocation_body(newer), allocation_body(granted)])
    # the numbers themselves, not only as the rows say
    listed = response.json()["results"][1]
    assert {name: listed[name] for name in SPOT_CHECKED} == {
        "start_date": str(today + timedelta(days=1)),
        "end_date": str(today + timedelta(days=10)),
        "granted_gpu_hours": 1_000,
        "used_gpu_hours": "0.00",
        "remaining_gpu_hours": "1000.00",
        "energy_estimate_mwh": "2.090",
        "energy_measured_mwh": "0.000",
        "status": "scheduled",
        "at_risk": False,
        "released_from": None,
    }


def test_outsiders_and_reviewers_see_no_allocations(client_for, outsider, reviewer, granted):
    # when
    responses = [client_for(user).get(LIST) for user in (outsider, reviewer)]

    # then
    assert [(r.status_code, r.json()) for r in responses] == [(200, keyset_page([]))] * 2


def test_listing_allocations_needs_a_signed_in_user(api, granted):
    # when
    response = api.get(LIST)

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_the_allocation_list_filters_at_risk_ones(
    client_for, founder, granted, draft, decide, window
):
    # given
    decide(draft(gpu_hours=500, **window(20, 24)))
    Allocation.objects.filter(pk=granted.pk).update(at_risk=True)

    # when
    response = client_for(founder).get(LIST, {"at_risk": "true"})

    # then
    assert response.json() == keyset_page([allocation_body(granted)])


def test_an_unknown_status_filter_for_allocations_is_a_field_error(client_for, founder):
    # when
    response = client_for(founder).get(LIST, {"status": "lost"})

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "status": [
                (
                    "invalid_choice",
                    "Select a valid choice. lost is not one of the available choices.",
                )
            ]
        }
    )


@pytest.mark.parametrize("rows", [1, 5])
def test_the_allocation_list_costs_the_same_queries_for_one_or_five_rows(
    draft, decide, window, client_for, founder, django_assert_num_queries, rows
):
    # given
    for index in range(rows):
        decide(draft(gpu_hours=100, **window(1 + index, 1 + index)))
    client = client_for(founder)

    # when / then: the page with pools, sites and accelerators (no count)
    with django_assert_num_queries(1):
        response = client.get(LIST)
    assert len(response.json()["results"]) == rows


def test_a_member_reads_an_allocation(client_for, researcher, granted):
    # when
    response = client_for(researcher).get(f"{LIST}{granted.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == allocation_body(granted)


def test_an_outsider_gets_a_404_for_an_allocation(client_for, outsider, granted):
    # when
    response = client_for(outsider).get(f"{LIST}{granted.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- release -------------------------------------------------------------------------------------


def test_an_org_admin_releases_an_allocation_and_the_waitlist_is_queued(
    client_for, founder, granted, today, totals, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(founder).post(f"{LIST}{granted.pk}/release/")

    # then
    assert response.status_code == 200
    assert response.json() == allocation_body(granted)
    body = response.json()
    assert (body["status"], body["granted_gpu_hours"], body["released_from"]) == (
        "released",
        0,
        str(today + timedelta(days=1)),
    )
    assert totals()["pool"] == (0, 0)
    stop = BackendCall.objects.get(allocation=granted, action="suspend")
    assert queued_tasks(callbacks) == [
        ("run_backend_call", (str(stop.pk),)),  # released before its first day: jobs stop
        ("recheck_waitlist", (str(granted.pool_id),)),
    ]


def test_a_member_who_is_no_admin_may_not_release(
    client_for, researcher, granted, snapshot, django_capture_on_commit_callbacks
):
    # given
    before = snapshot()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(researcher).post(f"{LIST}{granted.pk}/release/")

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN
    assert snapshot() == before
    assert callbacks == []


def test_an_outsider_gets_a_404_for_a_release(client_for, outsider, granted, snapshot):
    # given
    before = snapshot()

    # when
    response = client_for(outsider).post(f"{LIST}{granted.pk}/release/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert snapshot() == before


def test_a_second_release_is_a_409(client_for, founder, granted, snapshot):
    # given
    allocation_services.allocation_release(allocation=granted, actor=founder)
    before = snapshot()

    # when
    response = client_for(founder).post(f"{LIST}{granted.pk}/release/")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "The allocation is released: it cannot be released.",
    }
    assert snapshot() == before


def test_a_release_with_a_malformed_id_is_a_404(client_for, founder):
    # when
    response = client_for(founder).post(f"{LIST}12345/release/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- revocation by an operator -------------------------------------------------------------------


def test_an_operator_revokes_an_allocation_with_a_reason(
    client_for, operator, granted, totals, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(operator).post(
            f"{LIST}{granted.pk}/revoke/", {"reason": "Eligibility withdrawn."}, format="json"
        )

    # then
    assert response.status_code == 200
    assert response.json() == allocation_body(granted)
    assert (response.json()["status"], response.json()["granted_gpu_hours"]) == ("revoked", 0)
    assert totals() == {"pool": (0, 0), "program": (0, 0), "site_wh": (0, 0), "quota": 0}
    stop = BackendCall.objects.get(allocation=granted, action="suspend")
    assert queued_tasks(callbacks) == [
        ("run_backend_call", (str(stop.pk),)),
        ("recheck_waitlist", (str(granted.pool_id),)),
    ]


def test_a_member_may_not_revoke_even_with_a_malformed_body(client_for, founder, granted, snapshot):
    # given
    before = snapshot()

    # when: the permission is checked before the body is read
    response = client_for(founder).post(
        f"{LIST}{granted.pk}/revoke/", {"reason": ["not", "text"]}, format="json"
    )

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_OPERATOR
    assert snapshot() == before


def test_a_revocation_with_an_unknown_field_or_a_long_reason_is_a_400(
    client_for, operator, granted, snapshot
):
    # given
    before = snapshot()
    client = client_for(operator)

    # when
    unknown = client.post(f"{LIST}{granted.pk}/revoke/", {"note": "x"}, format="json")
    long = client.post(f"{LIST}{granted.pk}/revoke/", {"reason": "x" * 2001}, format="json")

    # then
    assert unknown.status_code == 400
    assert unknown.json()["fields"] == {
        "note": [{"code": "unknown_field", "message": "This field is not one the request accepts."}]
    }
    assert long.status_code == 400
    assert long.json() == invalid(
        {"reason": [("max_length", "Ensure this field has no more than 2000 characters.")]}
    )
    assert snapshot() == before
    assert Allocation.objects.get(pk=granted.pk).status == "scheduled"


def test_a_second_revocation_is_a_409(client_for, operator, granted, snapshot):
    # given
    client = client_for(operator)
    client.post(f"{LIST}{granted.pk}/revoke/")
    before = snapshot()

    # when
    response = client.post(f"{LIST}{granted.pk}/revoke/")

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "The allocation is revoked: it cannot become revoked.",
    }
    assert snapshot() == before
