"""`organizations/`, `organizations/{id}/`, its `verify/` and its `members/` (people join by
invitation: see test_api_invitations.py)."""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts.models import Membership, MembershipRole, Organization
from accounts.tasks import notify_organization_verified
from tests.accounts.bodies import NOT_AN_ADMIN, audit_rows, member_body, organization_body
from tests.bodies import (
    MALFORMED_JSON,
    NOT_AN_OPERATOR,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    TOKEN_SCOPE,
    audit_when,
    invalid,
    page,
)
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

NORDLYS = {"name": "Nordlys AS", "kind": "startup", "country": "NO", "registry_number": "923609016"}


def _queued(callbacks: list) -> list[tuple[str, tuple]]:
    """The tasks whose outbox rows the captured on-commit callbacks publish."""
    from outbox.models import Effect

    effects = [Effect.objects.get(pk=callback.args[0]) for callback in callbacks]
    return [(effect.task, tuple(effect.args)) for effect in effects]


@pytest.fixture
def elsewhere(db: None) -> Organization:
    """An organization nobody in these tests belongs to."""
    return OrganizationFactory(name="Elsewhere AB", country="SE", registry_number="5560360793")


# --- GET organizations/ ------------------------------------------------------------------------


def test_a_member_lists_only_their_organizations(client_for, member, organization, elsewhere):
    # when
    response = client_for(member).get("/api/v1/organizations/")

    # then
    assert response.status_code == 200
    assert response.json() == page([organization_body(organization)])


def test_an_operator_lists_every_organization_by_name(
    client_for, operator, organization, elsewhere
):
    # when
    response = client_for(operator).get("/api/v1/organizations/")

    # then
    assert response.status_code == 200
    assert response.json() == page([organization_body(elsewhere), organization_body(organization)])


def test_the_organization_list_filters_by_kind_and_country(client_for, operator, organization):
    # given
    university = OrganizationFactory(name="NTNU", kind="university", registry_number="974767880")
    OrganizationFactory(name="Lund", kind="university", country="SE", registry_number="1")

    # when
    response = client_for(operator).get(
        "/api/v1/organizations/", {"kind": "university", "country": "NO"}
    )

    # then
    assert response.status_code == 200
    assert response.json() == page([organization_body(university)])


def test_the_organization_list_costs_two_queries_for_one_or_five(
    client_for, member, organization, django_assert_num_queries
):
    # given
    client = client_for(member)

    # when
    with django_assert_num_queries(2):
        one = client.get("/api/v1/organizations/")
    for index in range(4):
        MembershipFactory(user=member, organization=OrganizationFactory(name=f"Org {index}"))
    with django_assert_num_queries(2):
        five = client.get("/api/v1/organizations/")

    # then
    assert (one.json()["count"], five.json()["count"]) == (1, 5)


def test_the_organization_list_asks_anonymous_callers_to_authenticate(api, organization):
    # when
    response = api.get("/api/v1/organizations/")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_a_usage_write_token_may_not_list_organizations(api, member, bearer, scheduler_account):
    # when
    response = api.get("/api/v1/organizations/", **bearer(scheduler_account, scope="usage:write"))

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE


def test_an_unknown_filter_value_is_a_field_error(client_for, member):
    # when
    response = client_for(member).get("/api/v1/organizations/", {"kind": "guild", "country": "XX"})

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "kind": [
                (
                    "invalid_choice",
                    "Select a valid choice. guild is not one of the available choices.",
                )
            ],
            "country": [
                ("invalid_choice", "Select a valid choice. XX is not one of the available choices.")
            ],
        }
    )


# --- POST organizations/ -----------------------------------------------------------------------


def test_creating_an_organization_makes_the_creator_its_only_admin(client_for, outsider):
    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/", {**NORDLYS, "registry_number": "923 609 016"}, format="json"
    )

    # then
    assert response.status_code == 201
    organization = Organization.objects.get()
    assert response.json() == organization_body(organization)
    assert response.json()["is_verified"] is False
    assert organization.registry_number == "923609016"
    assert list(Membership.objects.values_list("organization", "user", "role")) == [
        (organization.pk, outsider.pk, "admin")
    ]


def test_creating_an_organization_is_recorded_with_all_its_values(client_for, outsider):
    # when
    client_for(outsider).post("/api/v1/organizations/", NORDLYS, format="json")

    # then
    organization = Organization.objects.get()
    assert audit_rows() == [
        {
            "verb": "organization.create",
            "actor": outsider.pk,
            "target": ("organization", organization.pk),
            "target_repr": "Nordlys AS (NO)",
            "before": {},
            "after": {
                "name": "Nordlys AS",
                "kind": "startup",
                "country": "NO",
                "registry_number": "923609016",
                "verified_at": None,
                "verified_by_id": None,
                "created_at": audit_when(organization.created_at),
            },
            "reasons": [],
        }
    ]


def test_a_foreign_organization_needs_no_registry_number(client_for, outsider):
    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/",
        {"name": "Chalmers", "kind": "university", "country": "SE"},
        format="json",
    )

    # then
    assert response.status_code == 201
    assert response.json() == organization_body(Organization.objects.get())
    assert response.json()["registry_number"] == ""


def test_a_norwegian_number_failing_its_check_digit_is_refused_and_nothing_is_created(
    client_for, outsider, counts
):
    # given
    before = counts()

    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/", {**NORDLYS, "registry_number": "923609017"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "registry_number": [
                (
                    "invalid_registry_number",
                    "This Norwegian organization number fails its check digit.",
                )
            ]
        }
    )
    assert counts() == before


@pytest.mark.parametrize(
    ("registry_number", "code", "message"),
    [
        ("", "required", "Norwegian organizations give their organization number."),
        ("92360901", "invalid_registry_number", "A Norwegian organization number has nine digits."),
        (
            "92360901X",
            "invalid_registry_number",
            "A Norwegian organization number has nine digits.",
        ),
        (
            "923609130",
            "invalid_registry_number",
            "This Norwegian organization number fails its check digit.",
        ),
    ],
)
def test_a_norwegian_organization_needs_a_valid_number(
    client_for, outsider, counts, registry_number, code, message
):
    # given
    before = counts()

    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/", {**NORDLYS, "registry_number": registry_number}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"registry_number": [(code, message)]})
    assert counts() == before


def test_a_registry_number_already_registered_in_the_country_is_refused(
    client_for, outsider, organization, counts
):
    # given: the shared organization holds 923609016 in Norway
    before = counts()

    # when
    response = client_for(outsider).post("/api/v1/organizations/", NORDLYS, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"registry_number": [("unique", "An organization with this registry number exists.")]}
    )
    assert counts() == before


def test_creating_an_organization_with_invalid_fields_answers_each_field(
    client_for, outsider, counts
):
    # given
    before = counts()

    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/",
        {"name": "x" * 201, "kind": "guild", "country": "ZZ"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "name": [("max_length", "Ensure this field has no more than 200 characters.")],
            "kind": [("invalid_choice", '"guild" is not a valid choice.')],
            "country": [("invalid_choice", '"ZZ" is not a valid choice.')],
        }
    )
    assert counts() == before


def test_creating_an_organization_with_malformed_json_answers_400(client_for, outsider, counts):
    # given
    before = counts()

    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/", "{", content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON
    assert counts() == before


def test_creating_an_organization_anonymously_answers_401(api, counts):
    # given
    before = counts()

    # when
    response = api.post("/api/v1/organizations/", NORDLYS, format="json")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert counts() == before


def test_a_usage_write_token_may_not_create_organizations(
    api, outsider, bearer, counts, scheduler_account
):
    # given
    auth = bearer(scheduler_account, scope="usage:write")
    before = counts()

    # when
    response = api.post("/api/v1/organizations/", NORDLYS, format="json", **auth)

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE
    assert counts() == before


# --- GET organizations/{id}/ -------------------------------------------------------------------


def test_a_member_reads_their_organization(client_for, member, organization):
    # when
    response = client_for(member).get(f"/api/v1/organizations/{organization.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == organization_body(organization)


def test_an_operator_reads_any_organization(client_for, operator, elsewhere):
    # when
    response = client_for(operator).get(f"/api/v1/organizations/{elsewhere.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == organization_body(elsewhere)


def test_another_organization_answers_404_not_403(client_for, member, elsewhere):
    # when
    response = client_for(member).get(f"/api/v1/organizations/{elsewhere.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_a_usage_write_token_may_not_read_an_organization(
    api, member, organization, bearer, scheduler_account
):
    # when
    response = api.get(
        f"/api/v1/organizations/{organization.pk}/",
        **bearer(scheduler_account, scope="usage:write"),
    )

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE


@pytest.mark.parametrize("organization_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_malformed_or_unknown_organization_id_answers_404(client_for, operator, organization_id):
    # when
    response = client_for(operator).get(f"/api/v1/organizations/{organization_id}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- POST organizations/{id}/verify/ -----------------------------------------------------------


def test_an_operator_verifies_an_organization(client_for, operator, unverified):
    # when
    response = client_for(operator).post(f"/api/v1/organizations/{unverified.pk}/verify/")

    # then
    assert response.status_code == 200
    assert response.json() == organization_body(unverified)
    assert response.json()["is_verified"] is True
    assert unverified.verified_by == operator


def test_verifying_is_recorded_with_before_and_after(client_for, operator, unverified):
    # when
    client_for(operator).post(f"/api/v1/organizations/{unverified.pk}/verify/")

    # then
    unverified.refresh_from_db()
    assert audit_rows() == [
        {
            "verb": "organization.verify",
            "actor": operator.pk,
            "target": ("organization", unverified.pk),
            "target_repr": "Fjord AI AS (NO)",
            "before": {"verified_at": None, "verified_by_id": None},
            "after": {
                "verified_at": audit_when(unverified.verified_at),
                "verified_by_id": str(operator.pk),
            },
            "reasons": [],
        }
    ]


def test_verifying_queues_one_notification_for_after_the_commit(
    client_for, operator, org_admin, unverified, django_capture_on_commit_callbacks, mailoutbox
):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(operator).post(f"/api/v1/organizations/{unverified.pk}/verify/")

    # then: queued, not sent while the request runs
    assert response.status_code == 200
    assert len(callbacks) == 1
    assert _queued(callbacks) == [
        ("accounts.tasks.notify_organization_verified", (str(unverified.pk),))
    ]
    assert mailoutbox == []


def test_the_verification_mail_goes_to_the_admins_once_the_task_runs(
    client_for,
    operator,
    org_admin,
    member,
    unverified,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    # given: a second admin, and an admin who has left
    second = UserFactory(email="ceo@fjord.example")
    MembershipFactory(user=second, organization=unverified, role=MembershipRole.ADMIN)
    gone = UserFactory(email="former@fjord.example", is_active=False)
    MembershipFactory(user=gone, organization=unverified, role=MembershipRole.ADMIN)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client_for(operator).post(f"/api/v1/organizations/{unverified.pk}/verify/")
    assert len(callbacks) == 1
    assert mailoutbox == []  # the commit only enqueued it; a worker sends it

    # when: the worker runs the task
    sent = notify_organization_verified(str(unverified.pk))

    # then
    assert sent == 1
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["ceo@fjord.example", "cto@fjord.example"]
    assert mail.subject == "Fjord AI AS is verified"
    assert mail.body == (
        "Fjord AI AS has been verified by the site's operators. Its members can now apply for "
        "GPU-hours in the programs it is eligible for, and be granted them.\n\n"
        "Next step:\nSee what your programs can still take, and apply: "
        f"{settings.PORTAL_PUBLIC_URL}/programs/\n"
    )


def test_verifying_a_verified_organization_changes_nothing_and_queues_nothing(
    client_for, operator, organization, counts, django_capture_on_commit_callbacks
):
    # given
    verified_at, before = organization.verified_at, counts()

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(operator).post(f"/api/v1/organizations/{organization.pk}/verify/")

    # then
    assert response.status_code == 200
    assert response.json() == organization_body(organization)
    assert organization.verified_at == verified_at
    assert organization.verified_by is None
    assert callbacks == []
    assert counts() == before


@pytest.mark.parametrize(
    ("who", "status", "body"),
    [
        ("member", 403, NOT_AN_OPERATOR),
        ("org_admin", 403, NOT_AN_OPERATOR),
        # who may not see the organization is told it does not exist
        ("outsider", 404, {"code": "not_found", "message": "Not found."}),
    ],
)
def test_only_operators_may_verify(
    request, client_for, unverified, counts, django_capture_on_commit_callbacks, who, status, body
):
    # given
    user = request.getfixturevalue(who)
    before = counts()

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(user).post(f"/api/v1/organizations/{unverified.pk}/verify/")

    # then
    assert response.status_code == status
    assert response.json() == body
    unverified.refresh_from_db()
    assert unverified.verified_at is None
    assert callbacks == []
    assert counts() == before


def test_a_scheduler_token_may_not_verify(
    api, operator, unverified, bearer, counts, scheduler_account
):
    # given
    auth = bearer(scheduler_account, scope="usage:write")
    before = counts()

    # when
    response = api.post(f"/api/v1/organizations/{unverified.pk}/verify/", **auth)

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE
    assert counts() == before


def test_verifying_an_unknown_organization_answers_404(
    client_for, operator, counts, django_capture_on_commit_callbacks
):
    # given: verify/ takes no body, so an unknown id is its only invalid input
    before = counts()

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(operator).post(
            "/api/v1/organizations/00000000-0000-0000-0000-000000000000/verify/"
        )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert callbacks == []
    assert counts() == before


# --- GET organizations/{id}/members/ ----------------------------------------------------------


def test_an_admin_lists_the_members_by_email(client_for, org_admin, member, organization):
    # when
    response = client_for(org_admin).get(f"/api/v1/organizations/{organization.pk}/members/")

    # then
    assert response.status_code == 200
    assert response.json() == page(
        [
            member_body(Membership.objects.get(user=org_admin)),
            member_body(Membership.objects.get(user=member)),
        ]
    )
    assert [row["email"] for row in response.json()["results"]] == [
        "cto@fjord.example",
        "researcher@fjord.example",
    ]


def test_an_operator_lists_the_members_of_any_organization(
    client_for, operator, org_admin, organization
):
    # when
    response = client_for(operator).get(f"/api/v1/organizations/{organization.pk}/members/")

    # then
    assert response.status_code == 200
    assert response.json() == page([member_body(Membership.objects.get(user=org_admin))])


def test_the_member_list_costs_four_queries_for_one_member_or_five(
    client_for, org_admin, organization, django_assert_num_queries
):
    # given
    client = client_for(org_admin)
    url = f"/api/v1/organizations/{organization.pk}/members/"

    # when
    with django_assert_num_queries(4):
        one = client.get(url)
    for _ in range(4):
        MembershipFactory(user=UserFactory(), organization=organization)
    with django_assert_num_queries(4):
        five = client.get(url)

    # then
    assert (one.json()["count"], five.json()["count"]) == (1, 5)


def test_a_plain_member_may_not_list_members(client_for, member, organization):
    # when
    response = client_for(member).get(f"/api/v1/organizations/{organization.pk}/members/")

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN


def test_another_organizations_members_answer_404(client_for, org_admin, elsewhere):
    # when
    response = client_for(org_admin).get(f"/api/v1/organizations/{elsewhere.pk}/members/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_a_member_list_page_past_the_end_answers_404(client_for, org_admin, organization):
    # when
    response = client_for(org_admin).get(
        f"/api/v1/organizations/{organization.pk}/members/", {"page": 2}
    )

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Invalid page."}


# --- DELETE organizations/{id}/members/{user_id}/ ---------------------------------------------


def test_an_admin_removes_a_member_and_it_is_recorded(client_for, org_admin, member, organization):
    # when
    response = client_for(org_admin).delete(
        f"/api/v1/organizations/{organization.pk}/members/{member.pk}/"
    )

    # then
    assert response.status_code == 204
    assert response.content == b""
    assert not Membership.objects.filter(user=member).exists()
    assert audit_rows(verb__startswith="membership") == [
        {
            "verb": "membership.remove",
            "actor": org_admin.pk,
            "target": ("organization", organization.pk),
            "target_repr": "Fjord AI AS (NO)",
            "before": {"user": str(member.pk), "email": member.email, "role": "member"},
            "after": {},
            "reasons": [],
        }
    ]


def test_an_admin_may_leave_while_another_admin_stays(client_for, org_admin, organization):
    # given
    second = UserFactory(email="ceo@fjord.example")
    MembershipFactory(user=second, organization=organization, role=MembershipRole.ADMIN)

    # when
    response = client_for(org_admin).delete(
        f"/api/v1/organizations/{organization.pk}/members/{org_admin.pk}/"
    )

    # then
    assert response.status_code == 204
    assert list(Membership.objects.values_list("user", "role")) == [(second.pk, "admin")]


def test_the_last_admin_cannot_be_removed_and_nothing_changes(
    client_for, org_admin, member, organization, counts
):
    # given
    before = counts()

    # when
    response = client_for(org_admin).delete(
        f"/api/v1/organizations/{organization.pk}/members/{org_admin.pk}/"
    )

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "last_admin",
        "message": "An organization must keep at least one admin.",
    }
    assert Membership.objects.get(user=org_admin).role == "admin"
    assert counts() == before


def test_an_operator_cannot_remove_the_last_admin_either(
    client_for, operator, org_admin, organization, counts
):
    # given
    before = counts()

    # when
    response = client_for(operator).delete(
        f"/api/v1/organizations/{organization.pk}/members/{org_admin.pk}/"
    )

    # then
    assert response.status_code == 409
    assert response.json()["code"] == "last_admin"
    assert counts() == before


def test_a_plain_member_may_not_remove_members(client_for, org_admin, member, organization, counts):
    # given
    before = counts()

    # when
    response = client_for(member).delete(
        f"/api/v1/organizations/{organization.pk}/members/{org_admin.pk}/"
    )

    # then
    assert response.status_code == 403
    assert response.json() == NOT_AN_ADMIN
    assert counts() == before


def test_removing_from_another_organization_answers_404_and_changes_nothing(
    client_for, org_admin, elsewhere, counts
):
    # given
    theirs = UserFactory(email="admin@elsewhere.example")
    MembershipFactory(user=theirs, organization=elsewhere, role=MembershipRole.MEMBER)
    before = counts()

    # when
    response = client_for(org_admin).delete(
        f"/api/v1/organizations/{elsewhere.pk}/members/{theirs.pk}/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert counts() == before


def test_removing_someone_who_is_not_a_member_answers_404(
    client_for, org_admin, organization, elsewhere, counts
):
    # given: a member of another organization, not of this one
    theirs = UserFactory(email="admin@elsewhere.example")
    MembershipFactory(user=theirs, organization=elsewhere)
    before = counts()

    # when
    response = client_for(org_admin).delete(
        f"/api/v1/organizations/{organization.pk}/members/{theirs.pk}/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert Membership.objects.filter(user=theirs, organization=elsewhere).exists()
    assert counts() == before


def test_removing_with_a_malformed_user_id_answers_404(client_for, org_admin, organization, counts):
    # given
    before = counts()

    # when
    response = client_for(org_admin).delete(
        f"/api/v1/organizations/{organization.pk}/members/not-a-uuid/"
    )

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert counts() == before


def test_a_usage_write_token_may_not_remove_members(
    api, org_admin, member, organization, bearer, counts, scheduler_account
):
    # given
    auth = bearer(scheduler_account, scope="usage:write")
    before = counts()

    # when
    response = api.delete(f"/api/v1/organizations/{organization.pk}/members/{member.pk}/", **auth)

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE
    assert counts() == before
