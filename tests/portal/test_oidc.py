"""OpenID Connect sign-in: off by default, on by environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import django, json
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
client = Client()
start = client.get("/oidc/authenticate/?next=/admin/")
login = client.get("/admin/login/")
print(json.dumps({"status": start.status_code, "location": start.get("Location", ""),
                  "login": "Sign in with Feide" in login.content.decode()}))
"""


@pytest.mark.django_db
def test_sign_in_is_off_by_default(client):
    # when
    login = client.get("/admin/login/")
    oidc = client.get("/oidc/authenticate/")

    # then
    assert "Sign in with" not in login.content.decode()
    assert oidc.status_code == 404


def test_switched_on_the_admin_offers_it_and_it_sends_people_to_the_provider(tmp_path):
    # given
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": "oidc-test",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'oidc.sqlite3'}",
        "PORTAL_VAR_DIR": str(tmp_path),
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "PORTAL_OIDC_ENABLED": "true",
        "OIDC_RP_CLIENT_ID": "portal",
        "OIDC_RP_CLIENT_SECRET": "secret",
        "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://auth.dataporten.no/oauth/authorization",
        "OIDC_OP_TOKEN_ENDPOINT": "https://auth.dataporten.no/oauth/token",
        "OIDC_OP_USER_ENDPOINT": "https://auth.dataporten.no/openid/userinfo",
        "OIDC_OP_JWKS_ENDPOINT": "https://auth.dataporten.no/openid/jwks",
    }

    # when
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip

    # then
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 302
    assert answer["location"].startswith("https://auth.dataporten.no/oauth/authorization?")
    assert "client_id=portal" in answer["location"]
    assert answer["login"] is True


@pytest.mark.django_db
@override_settings(
    OIDC_RP_CLIENT_ID="portal",
    OIDC_RP_CLIENT_SECRET="secret",
    OIDC_OP_TOKEN_ENDPOINT="https://idp.example/token",
    OIDC_OP_USER_ENDPOINT="https://idp.example/userinfo",
    OIDC_RP_SIGN_ALGO="HS256",
)
def test_the_backend_makes_people_with_no_rights_and_finds_no_one_by_email(member):
    from accounts.oidc import PortalOIDCBackend

    # given
    backend = PortalOIDCBackend()

    # when
    by_email = backend.filter_users_by_claims({"sub": "unknown", "email": member.email})
    created = backend.create_user({"email": "New.Person@UiT.no", "name": "New Person"})

    # then
    assert list(by_email) == []
    assert created.email == "new.person@uit.no"
    assert created.full_name == "New Person"
    assert not created.is_staff
    assert not created.has_usable_password()
    assert not backend.verify_claims({"sub": "s", "email": "x@uit.no", "email_verified": False})
    assert not backend.verify_claims({"sub": "s", "email": "x@uit.no"})
    assert backend.verify_claims({"sub": "s", "email": "x@uit.no", "email_verified": True})


# --- the sign-in itself, with the provider faked at its HTTP endpoints -----------------------

CLIENT_SECRET = "a-client-secret-of-the-portal-at-the-provider"
PROVIDER = override_settings(
    OIDC_RP_CLIENT_ID="portal",
    OIDC_RP_CLIENT_SECRET=CLIENT_SECRET,
    OIDC_RP_SIGN_ALGO="HS256",
    OIDC_OP_TOKEN_ENDPOINT="https://idp.example/token",
    OIDC_OP_USER_ENDPOINT="https://idp.example/userinfo",
    OIDC_AUTHENTICATION_CALLBACK_URL="admin:login",
)


class _Answer:
    def __init__(self, body: dict) -> None:
        self.status_code = 200
        self.headers = {"content-type": "application/json"}
        self.url = "https://idp.example/"
        self._body = body
        self.text = json.dumps(body)

    def json(self) -> dict:
        return self._body

    def raise_for_status(self) -> None:
        return None


class FakeProvider:
    """The provider's token and userinfo endpoints: an HS256 ID token signed with the
    client secret (verified for real by the backend), and the userinfo claims."""

    def __init__(self) -> None:
        self.userinfo: dict = {}
        self.token_subject: str | None = None

    def post(self, url: str, data: dict, **kwargs: object) -> _Answer:
        assert url == "https://idp.example/token"
        subject = self.token_subject or self.userinfo.get("sub", "")
        id_token = jwt.encode(
            {"iss": "https://idp.example", "sub": subject, "aud": "portal", "nonce": "n"},
            CLIENT_SECRET,
            algorithm="HS256",
        )
        return _Answer({"id_token": id_token, "access_token": "access", "token_type": "Bearer"})

    def get(self, url: str, headers: dict, **kwargs: object) -> _Answer:
        assert url == "https://idp.example/userinfo"
        assert headers == {"Authorization": "Bearer access"}
        return _Answer(self.userinfo)


@pytest.fixture
def provider(monkeypatch) -> FakeProvider:
    import mozilla_django_oidc.auth

    fake = FakeProvider()
    monkeypatch.setattr(mozilla_django_oidc.auth.requests, "post", fake.post)
    monkeypatch.setattr(mozilla_django_oidc.auth.requests, "get", fake.get)
    return fake


@pytest.fixture
def sign_in(provider, db):
    """Run the callback of the code flow with these userinfo claims: the user, or None."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from accounts.oidc import PortalOIDCBackend

    def run(**claims: object):
        provider.userinfo = claims
        request = RequestFactory().get("/oidc/callback/", {"code": "code", "state": "state"})
        request.session = SessionStore()
        with PROVIDER:
            return PortalOIDCBackend().authenticate(request, nonce="n")

    return run


def _users() -> list[tuple[str, bool]]:
    from accounts.models import User

    return list(User.objects.order_by("email").values_list("email", "is_staff"))


def test_a_new_person_with_a_verified_email_gets_an_account_tied_to_their_subject(sign_in):
    # when
    user = sign_in(sub="feide-1", email="New.Person@UiT.no", email_verified=True, name="New P")

    # then
    assert user is not None
    assert (user.email, user.full_name, user.is_staff) == ("new.person@uit.no", "New P", False)
    assert user.oidc_identity.subject == "feide-1"


@pytest.mark.parametrize("verified", [None, False, "false", "yes", 1])
def test_an_email_not_verified_in_so_many_words_refuses_sign_in(sign_in, verified):
    # given
    claims = {"sub": "feide-2", "email": "someone@uit.no"}
    if verified is not None:
        claims["email_verified"] = verified

    # when
    user = sign_in(**claims)

    # then
    assert user is None
    assert _users() == []


def test_sign_in_never_takes_over_a_staff_account_by_email(sign_in):
    # given
    from tests.factories import OperatorFactory

    operator = OperatorFactory(email="operator@narvik.example")

    # when
    user = sign_in(sub="attacker", email="OPERATOR@narvik.example", email_verified=True)

    # then
    assert user is None
    assert _users() == [("operator@narvik.example", True)]
    assert not hasattr(operator, "oidc_identity") or operator.oidc_identity is None


def test_sign_in_never_takes_over_a_scheduler_account_by_email(sign_in, scheduler_account):
    # given
    from accounts.models import OidcIdentity

    # when: a provider vouches for the scheduler account's address
    user = sign_in(sub="attacker", email=scheduler_account.email, email_verified=True)

    # then
    assert user is None
    assert not OidcIdentity.objects.exists()


def test_an_existing_account_is_linked_by_verified_email_once_and_then_found_by_subject(
    sign_in, member
):
    # when: the first sign-in links the account, the next ones find it by the subject alone
    first = sign_in(sub="feide-3", email=member.email, email_verified=True)
    renamed = sign_in(sub="feide-3", email="new.address@uit.no", email_verified=True)

    # then
    assert first == member
    assert renamed == member
    member.refresh_from_db()
    assert member.oidc_identity.subject == "feide-3"
    assert member.email == "researcher@fjord.example"


def test_a_second_subject_with_the_email_of_a_linked_account_is_refused(sign_in, member):
    # given
    sign_in(sub="feide-4", email=member.email, email_verified=True)

    # when: another identity at the provider claims the same email
    user = sign_in(sub="someone-else", email=member.email, email_verified=True)

    # then
    assert user is None
    member.refresh_from_db()
    assert member.oidc_identity.subject == "feide-4"


def test_a_userinfo_subject_other_than_the_id_tokens_is_refused(sign_in, provider):
    # given: the ID token speaks of one subject, the userinfo of another
    provider.token_subject = "feide-5"

    # when
    user = sign_in(sub="feide-6", email="someone@uit.no", email_verified=True)

    # then
    assert user is None
    assert _users() == []


def test_a_deactivated_account_does_not_sign_in(sign_in, member):
    # given
    sign_in(sub="feide-7", email=member.email, email_verified=True)
    member.is_active = False
    member.save(update_fields=["is_active"])

    # when
    user = sign_in(sub="feide-7", email=member.email, email_verified=True)

    # then
    assert user is None
