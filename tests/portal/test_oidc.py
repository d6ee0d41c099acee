"""OpenID Connect sign-in: off by default, on by environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
def test_the_backend_finds_people_by_verified_email_and_grants_nothing(member):
    from accounts.oidc import PortalOIDCBackend

    # given
    backend = PortalOIDCBackend()

    # when
    known = backend.filter_users_by_claims({"email": member.email.upper()})
    created = backend.create_user({"email": "New.Person@UiT.no", "name": "New Person"})

    # then
    assert list(known) == [member]
    assert created.email == "new.person@uit.no"
    assert created.full_name == "New Person"
    assert not created.is_staff
    assert not created.has_usable_password()
    assert not backend.verify_claims({"email": "x@uit.no", "email_verified": False})
