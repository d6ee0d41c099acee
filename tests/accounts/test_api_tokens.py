"""`auth/token/`, `tokens/`, `tokens/{id}/` and the bearer authentication they issue for."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AccessToken
from accounts.services import token_create
from audit.models import AuditEvent
from tests.accounts.bodies import audit_rows, token_body
from tests.bodies import (
    BEARER_CHALLENGE,
    INVALID_PAGE,
    MALFORMED_JSON,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    TOKEN_SCOPE,
    audit_when,
    invalid,
    page,
)
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_INVALID = {"code": "token_invalid", "message": "The token is not valid."}
TOKEN_EXPIRED = {"code": "token_expired", "message": "The token has expired."}
TOKEN_REVOKED = {"code": "token_revoked", "message": "The token was revoked."}
BAD_HEADER = {
    "code": "token_invalid",
    "message": "The Authorization header must be `Bearer <token>`.",
}
WRONG_CREDENTIALS = {
    "code": "invalid_credentials",
    "message": "No active user has this email and password.",
}


def _login_rate() -> tuple[int, int]:
    """The login rate limit: requests, and the seconds of its window (as DRF reads it)."""
    requests, period = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")
    return int(requests), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def _stored_text() -> str:
    """Every value of every token row and audit event, as one text to search."""
    rows = [*AccessToken.objects.values(), *AuditEvent.objects.values()]
    return repr(rows)


# --- POST auth/token/ ------------------------------------------------------------------------


def test_obtaining_a_token_answers_its_secret_once_and_stores_only_the_digest(api, member):
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
    assert response.json() == {**token_body(token), "token": secret}
    assert secret.startswith("pap_")
    assert token.prefix == secret[:12]
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in _stored_text()
    assert (token.user, token.name, token.scope) == (member, "laptop", "full")
    assert token.expires_at - token.created_at == timedelta(days=7)


def test_obtaining_a_token_records_who_made_it(api, member):
    # when
    api.post("/api/v1/auth/token/", {"email": member.email, "password": PASSWORD}, format="json")

    # then
    token = AccessToken.objects.get()
    assert audit_rows() == [
        {
            "verb": "token.create",
            "actor": member.pk,
            "target": ("accesstoken", token.pk),
            "target_repr": f"api ({token.prefix}…)",
            "before": {},
            "after": {
                "name": "api",
                "scope": "full",
                "prefix": token.prefix,
                "expires_at": audit_when(token.expires_at),
            },
            "reasons": [],
        }
    ]


def test_a_token_obtained_without_options_is_named_api_full_and_lasts_the_default(api, member):
    # when
    response = api.post(
        "/api/v1/auth/token/",
        {"email": member.email.upper(), "password": PASSWORD},
        format="json",
    )

    # then
    assert response.status_code == 201
    token = AccessToken.objects.get()
    assert (token.name, token.scope) == ("api", "full")
    assert token.expires_at - token.created_at == timedelta(days=settings.PORTAL_TOKEN_DEFAULT_DAYS)


def test_the_obtained_secret_authenticates_as_its_user(api, member):
    # given
    secret = api.post(
        "/api/v1/auth/token/", {"email": member.email, "password": PASSWORD}, format="json"
    ).json()["token"]

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    # then
    assert response.status_code == 200
    assert response.json()["id"] == str(member.pk)


def test_a_wrong_password_answers_401_and_writes_nothing(api, member, counts):
    # given
    before = counts()

    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": member.email, "password": "wrong"}, format="json"
    )

    # then
    assert response.status_code == 401
    assert response.json() == WRONG_CREDENTIALS
    assert counts() == before


def test_an_unknown_email_is_refused_like_a_wrong_password(api, counts):
    # given
    before = counts()

    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": "nobody@example.org", "password": PASSWORD}, format="json"
    )

    # then
    assert response.status_code == 401
    assert response.json() == WRONG_CREDENTIALS
    assert counts() == before


def test_a_deactivated_user_gets_no_token_with_the_right_password(api, counts):
    # given
    user = UserFactory(email="left@fjord.example", is_active=False)
    before = counts()

    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json"
    )

    # then
    assert response.status_code == 401
    assert response.json() == WRONG_CREDENTIALS
    assert counts() == before


def test_logins_past_the_rate_limit_answer_429_even_with_the_right_password(
    api, member, counts, monkeypatch
):
    # given: a clock that stands still, so the wait is exactly the window
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda _self: 1_000_000.0)
    limit, window = _login_rate()
    for _ in range(limit):
        api.post("/api/v1/auth/token/", {"email": member.email, "password": "x"}, format="json")
    before = counts()

    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": member.email, "password": PASSWORD}, format="json"
    )

    # then
    assert response.status_code == 429
    assert response.json() == {
        "code": "throttled",
        "message": f"Request was throttled. Expected available in {window} seconds.",
    }
    assert response["Retry-After"] == str(window)
    assert counts() == before


def test_a_stale_bearer_header_does_not_stop_a_password_login(api, member):
    # when
    response = api.post(
        "/api/v1/auth/token/",
        {"email": member.email, "password": PASSWORD},
        format="json",
        HTTP_AUTHORIZATION="Bearer pap_long_gone",
    )

    # then
    assert response.status_code == 201


def test_obtaining_a_token_with_invalid_fields_answers_each_field(api, counts):
    # given
    before = counts()

    # when
    response = api.post(
        "/api/v1/auth/token/",
        {"email": "not-an-email", "scope": "admin", "expires_in_days": 0},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "email": [("invalid", "Enter a valid email address.")],
            "password": [("required", "This field is required.")],
            "scope": [("invalid_choice", '"admin" is not a valid choice.')],
            "expires_in_days": [("min_value", "Ensure this value is greater than or equal to 1.")],
        }
    )
    assert counts() == before


def test_obtaining_a_token_with_malformed_json_answers_400_and_writes_nothing(api, counts):
    # given
    before = counts()

    # when
    response = api.post("/api/v1/auth/token/", "{", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON
    assert counts() == before


# --- bearer authentication ---------------------------------------------------------------------


def test_a_valid_bearer_token_authenticates_and_notes_its_use(api, member):
    # given
    issued = token_create(user=member, name="laptop")

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 200
    assert response.json()["email"] == member.email
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


def test_the_bearer_keyword_is_case_insensitive(api, member):
    # given
    issued = token_create(user=member, name="laptop")

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"bearer {issued.secret}")

    # then
    assert response.status_code == 200


def test_an_unknown_token_answers_401_token_invalid_with_a_challenge(api, member):
    # given: a real token exists, but the one presented is not it
    token_create(user=member, name="laptop")

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer pap_not_a_real_secret")

    # then
    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


def test_an_expired_token_answers_401_token_expired_and_is_not_touched(api, member):
    # given
    issued = token_create(user=member, name="old")
    AccessToken.objects.filter(pk=issued.token.pk).update(
        created_at=timezone.now() - timedelta(days=2),
        expires_at=timezone.now() - timedelta(seconds=1),
    )

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 401
    assert response.json() == TOKEN_EXPIRED
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is None


def test_a_revoked_token_answers_401_token_revoked(api, member):
    # given
    issued = token_create(user=member, name="old")
    AccessToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now())

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 401
    assert response.json() == TOKEN_REVOKED
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


def test_a_deactivated_users_token_answers_401_token_invalid(api, member):
    # given
    issued = token_create(user=member, name="laptop")
    member.is_active = False
    member.save(update_fields=["is_active"])

    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # then
    assert response.status_code == 401
    assert response.json() == TOKEN_INVALID
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


@pytest.mark.parametrize("header", ["Bearer", "Bearer two words"])
def test_a_malformed_authorization_header_answers_401_token_invalid(api, header):
    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=header)

    # then
    assert response.status_code == 401
    assert response.json() == BAD_HEADER
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


def test_another_authorization_scheme_is_not_authentication(api):
    # when
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


# --- GET tokens/ -------------------------------------------------------------------------------


def test_the_token_list_shows_only_your_tokens_newest_first_without_secrets(
    client_for, member, outsider
):
    # given
    older = token_create(user=member, name="laptop")
    newer = token_create(user=member, name="ci")
    token_create(user=outsider, name="theirs")
    AccessToken.objects.filter(pk=older.token.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )

    # when
    response = client_for(member).get("/api/v1/tokens/")

    # then
    assert response.status_code == 200
    assert response.json() == page([token_body(newer.token), token_body(older.token)])


def test_the_token_list_shows_revoked_and_expired_tokens_as_inactive(client_for, member):
    # given
    revoked = token_create(user=member, name="revoked")
    AccessToken.objects.filter(pk=revoked.token.pk).update(revoked_at=timezone.now())

    # when
    response = client_for(member).get("/api/v1/tokens/")

    # then
    assert response.status_code == 200
    assert response.json() == page([token_body(revoked.token)])
    assert response.json()["results"][0]["is_active"] is False


def test_the_token_list_costs_two_queries_for_one_token_or_five(
    client_for, member, django_assert_num_queries
):
    # given
    client = client_for(member)
    token_create(user=member, name="t0")

    # when
    with django_assert_num_queries(2):
        one = client.get("/api/v1/tokens/")
    for index in range(1, 5):
        token_create(user=member, name=f"t{index}")
    with django_assert_num_queries(2):
        five = client.get("/api/v1/tokens/")

    # then
    assert (one.json()["count"], five.json()["count"]) == (1, 5)


def test_the_token_list_asks_anonymous_callers_to_authenticate(api):
    # when
    response = api.get("/api/v1/tokens/")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE


def test_a_usage_write_token_may_not_list_tokens(api, member, bearer, scheduler_account):
    # when
    response = api.get("/api/v1/tokens/", **bearer(scheduler_account, scope="usage:write"))

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE


def test_a_token_list_page_past_the_end_answers_404(client_for, member):
    # given
    token_create(user=member, name="laptop")

    # when
    response = client_for(member).get("/api/v1/tokens/", {"page": 2})

    # then
    assert response.status_code == 404
    assert response.json() == INVALID_PAGE


# --- POST tokens/ ------------------------------------------------------------------------------


def test_creating_a_token_answers_the_secret_once_and_records_it(client_for, member):
    # when
    response = client_for(member).post(
        "/api/v1/tokens/",
        {"name": "laptop", "scope": "full", "expires_in_days": 30},
        format="json",
    )

    # then
    assert response.status_code == 201
    token = AccessToken.objects.get()
    secret = response.json()["token"]
    assert response.json() == {**token_body(token), "token": secret}
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in _stored_text()
    assert (token.user, token.scope) == (member, "full")
    assert token.expires_at - token.created_at == timedelta(days=30)
    assert audit_rows() == [
        {
            "verb": "token.create",
            "actor": member.pk,
            "target": ("accesstoken", token.pk),
            "target_repr": f"laptop ({token.prefix}…)",
            "before": {},
            "after": {
                "name": "laptop",
                "scope": "full",
                "prefix": token.prefix,
                "expires_at": audit_when(token.expires_at),
            },
            "reasons": [],
        }
    ]


def test_a_created_tokens_secret_is_not_shown_again(client_for, member):
    # given
    client = client_for(member)
    created = client.post("/api/v1/tokens/", {"name": "laptop"}, format="json").json()

    # when
    detail = client.get(f"/api/v1/tokens/{created['id']}/")
    listed = client.get("/api/v1/tokens/")

    # then
    assert "token" not in detail.json()
    assert "token" not in listed.json()["results"][0]
    assert created["token"] not in detail.content.decode() + listed.content.decode()


def test_a_full_token_may_create_another_token(api, member, bearer):
    # given
    auth = bearer(member)

    # when
    response = api.post("/api/v1/tokens/", {"name": "second"}, format="json", **auth)

    # then
    assert response.status_code == 201
    assert AccessToken.objects.filter(user=member).count() == 2


def test_a_usage_write_token_may_not_create_tokens(api, member, bearer, counts, scheduler_account):
    # given
    auth = bearer(scheduler_account, scope="usage:write")
    before = counts()

    # when
    response = api.post("/api/v1/tokens/", {"name": "escalate"}, format="json", **auth)

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE
    assert counts() == before


def test_creating_a_token_anonymously_answers_401_and_writes_nothing(api, counts):
    # given
    before = counts()

    # when
    response = api.post("/api/v1/tokens/", {"name": "laptop"}, format="json")

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert counts() == before


def test_creating_a_token_with_invalid_fields_answers_each_field_and_writes_nothing(
    client_for, member, counts
):
    # given
    before = counts()

    # when
    response = client_for(member).post(
        "/api/v1/tokens/",
        {"name": "", "scope": "admin", "expires_in_days": settings.PORTAL_TOKEN_MAX_DAYS + 1},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "name": [("blank", "This field may not be blank.")],
            "scope": [("invalid_choice", '"admin" is not a valid choice.')],
            "expires_in_days": [
                (
                    "max_value",
                    f"Ensure this value is less than or equal to {settings.PORTAL_TOKEN_MAX_DAYS}.",
                )
            ],
        }
    )
    assert counts() == before


def test_creating_a_token_without_a_name_is_a_field_error(client_for, member, counts):
    # given
    before = counts()

    # when
    response = client_for(member).post("/api/v1/tokens/", {}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"name": [("required", "This field is required.")]})
    assert counts() == before


def test_creating_a_token_with_malformed_json_answers_400_and_writes_nothing(
    client_for, member, counts
):
    # given
    before = counts()

    # when
    response = client_for(member).post("/api/v1/tokens/", "{", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json() == MALFORMED_JSON
    assert counts() == before


# --- GET tokens/{id}/ --------------------------------------------------------------------------


def test_reading_your_token_answers_it_without_the_secret(client_for, member):
    # given
    issued = token_create(user=member, name="laptop")

    # when
    response = client_for(member).get(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert response.status_code == 200
    assert response.json() == token_body(issued.token)


def test_another_users_token_reads_as_404(client_for, member, outsider):
    # given
    issued = token_create(user=outsider, name="theirs")

    # when
    response = client_for(member).get(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_a_usage_write_token_may_not_read_a_token(api, member, bearer, scheduler_account):
    # given
    auth = bearer(scheduler_account, scope="usage:write")
    token = AccessToken.objects.get()

    # when
    response = api.get(f"/api/v1/tokens/{token.pk}/", **auth)

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE


@pytest.mark.parametrize("token_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_malformed_or_unknown_token_id_answers_404(client_for, member, token_id):
    # when
    response = client_for(member).get(f"/api/v1/tokens/{token_id}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- DELETE tokens/{id}/ -----------------------------------------------------------------------


def test_revoking_your_token_answers_204_and_records_it(client_for, member):
    # given
    issued = token_create(user=member, name="laptop")
    AuditEvent.objects.all().delete()

    # when
    response = client_for(member).delete(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert response.status_code == 204
    assert response.content == b""
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert AccessToken.objects.count() == 1  # revoked, not deleted
    assert audit_rows() == [
        {
            "verb": "token.revoke",
            "actor": member.pk,
            "target": ("accesstoken", issued.token.pk),
            "target_repr": f"laptop ({issued.token.prefix}…)",
            "before": {},
            "after": {},
            "reasons": [],
        }
    ]


def test_a_token_revoked_through_itself_stops_working_at_once(api, member):
    # given
    issued = token_create(user=member, name="leaked")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    # when
    revoked = api.delete(f"/api/v1/tokens/{issued.token.pk}/", **auth)
    after = api.get("/api/v1/me/", **auth)

    # then
    assert revoked.status_code == 204
    assert after.status_code == 401
    assert after.json() == TOKEN_REVOKED


def test_revoking_a_revoked_token_again_changes_nothing(client_for, member, counts):
    # given
    issued = token_create(user=member, name="laptop")
    client = client_for(member)
    client.delete(f"/api/v1/tokens/{issued.token.pk}/")
    issued.token.refresh_from_db()
    revoked_at, before = issued.token.revoked_at, counts()

    # when
    response = client.delete(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert response.status_code == 204
    issued.token.refresh_from_db()
    assert issued.token.revoked_at == revoked_at
    assert counts() == before


def test_revoking_another_users_token_answers_404_and_leaves_it_active(
    client_for, member, outsider, counts
):
    # given
    issued = token_create(user=outsider, name="theirs")
    before = counts()

    # when
    response = client_for(member).delete(f"/api/v1/tokens/{issued.token.pk}/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None
    assert counts() == before


def test_a_usage_write_token_may_not_revoke_tokens(api, member, bearer, counts, scheduler_account):
    # given
    auth = bearer(scheduler_account, scope="usage:write")
    token = AccessToken.objects.get()
    before = counts()

    # when
    response = api.delete(f"/api/v1/tokens/{token.pk}/", **auth)

    # then
    assert response.status_code == 403
    assert response.json() == TOKEN_SCOPE
    assert counts() == before


def test_revoking_with_a_malformed_id_answers_404_and_changes_nothing(client_for, member, counts):
    # given
    token_create(user=member, name="laptop")
    before = counts()

    # when
    response = client_for(member).delete("/api/v1/tokens/not-a-uuid/")

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert counts() == before


def test_an_obtained_token_is_answered_with_no_store(api, member):
    # when
    response = api.post(
        "/api/v1/auth/token/", {"email": member.email, "password": PASSWORD}, format="json"
    )

    # then
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"


def test_a_created_token_is_answered_with_no_store(client_for, member):
    # when
    response = client_for(member).post("/api/v1/tokens/", {"name": "ci"}, format="json")

    # then
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
