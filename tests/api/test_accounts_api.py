"""Every accounts endpoint: the happy path, a denial and a validation error, exactly."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccessToken, AuditEvent, Membership, Organization
from accounts.services import token_create
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _token_body(token: AccessToken) -> dict:
    return {
        "id": str(token.pk),
        "name": token.name,
        "prefix": token.prefix,
        "scope": token.scope,
        "created_at": token.created_at.astimezone().isoformat(),
        "expires_at": token.expires_at.astimezone().isoformat(),
        "last_used_at": None,
        "revoked_at": token.revoked_at.astimezone().isoformat() if token.revoked_at else None,
        "is_active": token.is_active,
    }


def _organization_body(organization: Organization) -> dict:
    return {
        "id": str(organization.pk),
        "name": organization.name,
        "kind": organization.kind,
        "country": str(organization.country),
        "registry_number": organization.registry_number,
        "is_verified": organization.is_verified,
        "verified_at": organization.verified_at.astimezone().isoformat()
        if organization.verified_at
        else None,
        "created_at": organization.created_at.astimezone().isoformat(),
    }


# --- auth/token/ -------------------------------------------------------------------------


def test_token_is_issued_once_and_only_its_digest_is_stored(api, member):
    # when
    response = api.post(
        "/api/v1/auth/token/",
        {"email": member.email, "password": PASSWORD, "name": "laptop", "expires_in_days": 7},
        format="json",
    )

    # then
    assert response.status_code == 201
    token = AccessToken.objects.get()
    secret = response.json()["token"]
    assert response.json() == {**_token_body(token), "token": secret}
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(AccessToken.objects.values().get())
    assert token.expires_at - token.created_at == timedelta(days=7)


def test_wrong_password_gets_no_token(api, member):
    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": member.email, "password": "wrong"}, format="json"
    )

    # then
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "No active user has this email and password.",
    }
    assert AccessToken.objects.count() == 0


def test_token_request_without_password_is_a_field_error(api):
    # when
    response = api.post("/api/v1/auth/token/", {"email": "not-an-email"}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "fields": {
            "email": [{"code": "invalid", "message": "Enter a valid email address."}],
            "password": [{"code": "required", "message": "This field is required."}],
        },
    }


def test_malformed_json_is_refused_and_writes_nothing(api):
    # when
    response = api.post("/api/v1/auth/token/", "{", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert AccessToken.objects.count() == 0


# --- bearer tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"revoked_at": timezone.now()}, "token_revoked", "The token was revoked."),
        ({"created_at": timezone.now() - timedelta(days=2),
          "expires_at": timezone.now() - timedelta(seconds=1)}, "token_expired",
         "The token has expired."),
    ],
)  # fmt: skip
def test_revoked_and_expired_tokens_answer_401(api, member, change, code, message):
    # given
    issued = token_create(user=member, name="old")
    AccessToken.objects.filter(pk=issued.token.pk).update(**change)

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 401
    assert response.json() == {"code": code, "message": message}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_unknown_token_answers_401(api):
    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer pap_nothing")

    # then
    assert response.status_code == 401
    assert response.json() == {"code": "token_invalid", "message": "The token is not valid."}


def test_a_usage_write_token_cannot_read_me_or_make_tokens(api, scheduler_account):
    # given
    issued = token_create(user=scheduler_account, name="slurm", scope="usage:write")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    # when
    me = api.get("/api/v1/me/", **auth)
    tokens = api.post("/api/v1/tokens/", {"name": "escalate"}, format="json", **auth)

    # then
    for response in (me, tokens):
        assert response.status_code == 403
        assert response.json() == {
            "code": "token_scope",
            "message": "This token's scope does not allow this request.",
        }
    assert AccessToken.objects.count() == 1


# --- me/ -----------------------------------------------------------------------------------


def test_me_lists_memberships(client_for, member, organization):
    # when
    response = client_for(member).get("/api/v1/me/")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": str(member.pk),
        "email": member.email,
        "full_name": member.full_name,
        "is_operator": False,
        "memberships": [{"organization": _organization_body(organization), "role": "member"}],
    }


# --- tokens/ -------------------------------------------------------------------------------


def test_tokens_are_listed_created_and_revoked(client_for, member, django_assert_num_queries):
    # given
    client = client_for(member)
    issued = token_create(user=member, name="laptop")

    # when
    with django_assert_num_queries(2):
        listed = client.get("/api/v1/tokens/")
    created = client.post("/api/v1/tokens/", {"name": "ci", "scope": "full"}, format="json")
    revoked = client.delete(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert listed.status_code == 200
    assert listed.json()["results"] == [_token_body(issued.token)]
    assert created.status_code == 201
    assert created.json()["scope"] == "full"
    assert created.json()["token"].startswith("pap_")
    assert revoked.status_code == 204
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert AuditEvent.objects.filter(verb="token.revoke").count() == 1


def test_token_list_costs_the_same_queries_for_one_or_five(
    client_for, member, django_assert_num_queries
):
    # given
    client = client_for(member)
    for index in range(5):
        token_create(user=member, name=f"t{index}")

    # then
    with django_assert_num_queries(2):
        assert len(client.get("/api/v1/tokens/").json()["results"]) == 5


def test_another_users_token_is_404_and_stays_active(client_for, member, outsider):
    # given
    issued = token_create(user=outsider, name="theirs")

    # when
    response = client_for(member).delete(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_token_expiry_past_the_maximum_is_a_field_error(client_for, member):
    # when
    response = client_for(member).post(
        "/api/v1/tokens/", {"name": "forever", "expires_in_days": 10_000}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "expires_in_days": [
            {"code": "max_value", "message": "Ensure this value is less than or equal to 366."}
        ]
    }
    assert AccessToken.objects.count() == 0


# --- organizations/ ------------------------------------------------------------------------


def test_creating_an_organization_makes_the_creator_its_admin(client_for, outsider):
    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/",
        {
            "name": "Nordlys AS",
            "kind": "startup",
            "country": "NO",
            "registry_number": "931 860 917",
        },
        format="json",
    )

    # then
    assert response.status_code == 201
    organization = Organization.objects.get(name="Nordlys AS")
    assert response.json() == _organization_body(organization)
    assert organization.registry_number == "931860917"
    assert Membership.objects.get(organization=organization).role == "admin"
    assert AuditEvent.objects.filter(verb="organization.create").count() == 1


def test_a_norwegian_organization_number_must_pass_its_check_digit(client_for, outsider):
    # when
    response = client_for(outsider).post(
        "/api/v1/organizations/",
        {"name": "Typo AS", "kind": "startup", "country": "NO", "registry_number": "923609017"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "registry_number": [
            {
                "code": "invalid_registry_number",
                "message": "This Norwegian organization number fails its check digit.",
            }
        ]
    }
    assert not Organization.objects.filter(name="Typo AS").exists()


def test_organizations_list_only_yours_with_constant_queries(
    client_for, member, organization, django_assert_num_queries
):
    # given
    OrganizationFactory(name="Someone else's")
    client = client_for(member)

    # when
    with django_assert_num_queries(2):
        one = client.get("/api/v1/organizations/")
    for index in range(4):
        MembershipFactory(user=member, organization=OrganizationFactory(name=f"Org {index}"))
    with django_assert_num_queries(2):
        five = client.get("/api/v1/organizations/")

    # then
    assert one.json()["results"] == [_organization_body(organization)]
    assert five.json()["count"] == 5


def test_another_organization_is_404(client_for, outsider, organization):
    # when
    response = client_for(outsider).get(f"/api/v1/organizations/{organization.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}


# --- organizations/{id}/verify/ ----------------------------------------------------------------


def test_an_operator_verifies_and_the_admins_are_told_after_commit(
    client_for, operator, org_admin, organization, django_capture_on_commit_callbacks, mailoutbox
):
    from accounts.tasks import notify_organization_verified

    # given
    Organization.objects.filter(pk=organization.pk).update(verified_at=None)

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(operator).post(f"/api/v1/organizations/{organization.pk}/verify/")
    notify_organization_verified(str(organization.pk))

    # then
    assert response.status_code == 200
    assert response.json()["is_verified"] is True
    assert len(callbacks) == 1
    assert mailoutbox[0].to == [org_admin.email]
    assert mailoutbox[0].subject == f"{organization.name} is verified"


def test_a_member_may_not_verify(client_for, member, organization):
    # given
    Organization.objects.filter(pk=organization.pk).update(verified_at=None)

    # when
    response = client_for(member).post(f"/api/v1/organizations/{organization.pk}/verify/")

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Only operators may do this.",
    }
    organization.refresh_from_db()
    assert organization.verified_at is None


# --- organizations/{id}/members/ -----------------------------------------------------------


def test_an_admin_invites_the_invitee_accepts_and_the_admin_removes_them(
    client_for, org_admin, organization, outsider
):
    # given
    client = client_for(org_admin)
    url = f"/api/v1/organizations/{organization.pk}/members/"

    # when
    invited = client.post(
        f"/api/v1/organizations/{organization.pk}/invitations/",
        {"email": outsider.email.upper()},
        format="json",
    )
    accepted = client_for(outsider).post(f"/api/v1/invitations/{invited.json()['id']}/accept/")
    listed = client.get(url)
    removed = client.delete(f"{url}{outsider.pk}/")

    # then
    assert invited.status_code == 201
    assert accepted.status_code == 200
    assert accepted.json()["role"] == "member"
    assert outsider.email in [row["email"] for row in listed.json()["results"]]
    assert removed.status_code == 204
    assert not Membership.objects.filter(user=outsider).exists()
    verbs = list(
        AuditEvent.objects.filter(verb__startswith="membership").values_list("verb", flat=True)
    )
    assert sorted(verbs) == ["membership.add", "membership.remove"]


def test_a_plain_member_may_not_invite_members(client_for, member, organization, outsider):
    # when
    response = client_for(member).post(
        f"/api/v1/organizations/{organization.pk}/invitations/",
        {"email": outsider.email},
        format="json",
    )

    # then
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "Only the organization's admins may do this.",
    }
    assert not Membership.objects.filter(user=outsider).exists()


def test_the_last_admin_cannot_leave(client_for, org_admin, organization):
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
    assert Membership.objects.filter(user=org_admin).exists()


def test_member_list_costs_constant_queries(
    client_for, org_admin, organization, django_assert_num_queries
):
    # given
    client = client_for(org_admin)
    url = f"/api/v1/organizations/{organization.pk}/members/"
    with django_assert_num_queries(4):
        client.get(url)
    for _ in range(4):
        MembershipFactory(user=UserFactory(), organization=organization)

    # then
    with django_assert_num_queries(4):
        assert client.get(url).json()["count"] == 5
