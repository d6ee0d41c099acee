"""`me/`: the signed-in user with memberships."""

from __future__ import annotations

import pytest

from accounts.models import MembershipRole
from tests.accounts.bodies import me_body, organization_body
from tests.bodies import BEARER_CHALLENGE, NOT_AUTHENTICATED, TOKEN_SCOPE
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_me_answers_the_user_with_each_membership_and_role(client_for, member, organization):
    # given
    other = OrganizationFactory(name="Aurora Labs AS", verified_at=None)
    MembershipFactory(user=member, organization=other, role=MembershipRole.ADMIN)

    # when
    response = client_for(member).get("/api/v1/me/")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": str(member.pk),
        "email": "researcher@fjord.example",
        "full_name": member.full_name,
        "is_operator": False,
        "memberships": [
            {"organization": organization_body(other), "role": "admin"},
            {"organization": organization_body(organization), "role": "member"},
        ],
    }
    assert response.json() == me_body(member)


def test_me_shows_an_operator_as_one_with_no_memberships(client_for, operator):
    # when
    response = client_for(operator).get("/api/v1/me/")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": str(operator.pk),
        "email": "operator@example.org",
        "full_name": operator.full_name,
        "is_operator": True,
        "memberships": [],
    }


def test_me_answers_the_same_through_a_full_token(api, client_for, member, bearer):
    # when
    through_token = api.get("/api/v1/me/", **bearer(member))

    # then
    assert through_token.status_code == 200
    assert through_token.json() == client_for(member).get("/api/v1/me/").json()


def test_me_costs_the_same_queries_for_one_membership_or_five(
    client_for, member, django_assert_num_queries
):
    # given
    client = client_for(member)

    # when
    with django_assert_num_queries(3):
        one = client.get("/api/v1/me/")
    for index in range(4):
        MembershipFactory(user=member, organization=OrganizationFactory(name=f"Org {index}"))
    with django_assert_num_queries(3):
        five = client.get("/api/v1/me/")

    # then
    assert (len(one.json()["memberships"]), len(five.json()["memberships"])) == (1, 5)


def test_me_asks_anonymous_callers_to_authenticate(api):
    # when
    response = api.get("/api/v1/me/")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


def test_a_usage_write_token_may_not_read_me(api, member, bearer, scheduler_account):
    # when
    response = api.get("/api/v1/me/", **bearer(scheduler_account, scope="usage:write"))

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE


def test_me_takes_no_input_and_refuses_writes_with_405(client_for, member, counts):
    # given: me/ has no fields to validate; a write is the only bad request it can get
    before = counts()

    # when
    response = client_for(member).patch("/api/v1/me/", {"email": "new@x.example"}, format="json")

    # then
    assert response.status_code == 405
    assert response.json() == {
        "code": "method_not_allowed",
        "message": 'Method "PATCH" not allowed.',
    }
    member.refresh_from_db()
    assert member.email == "researcher@fjord.example"
    assert counts() == before
