"""Scheduler service accounts: operators create them for one usage source and issue their
`usage:write` tokens, through the API, the admin or a management command."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.authz import SYSTEM
from accounts.models import AccessToken, SchedulerAccount, User
from accounts.services import scheduler_account_create, token_digest
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/scheduler-accounts/"


def test_an_operator_creates_a_scheduler_account_and_issues_its_token(api, operator, bearer):
    # given
    auth = bearer(operator)

    # when
    created = api.post(
        URL, {"source": "slurm-narvik", "name": "Narvik Slurm"}, format="json", **auth
    )
    account_id = created.json()["id"]
    issued = api.post(f"{URL}{account_id}/tokens/", {"name": "exporter"}, format="json", **auth)
    listed = api.get(URL, **auth)

    # then
    assert created.status_code == 201
    account = User.objects.get(pk=account_id)
    assert created.json() == {
        "id": account_id,
        "source": "slurm-narvik",
        "name": "Narvik Slurm",
        "email": "slurm-narvik@scheduler.invalid",
        "is_active": True,
        "created_at": created.json()["created_at"],
    }
    assert (account.is_staff, account.has_usable_password(), account.memberships.count()) == (
        False,
        False,
        0,
    )
    assert issued.status_code == 201
    assert "no-store" in issued["Cache-Control"]
    token = AccessToken.objects.get(user=account)
    assert (token.scope, token.name) == ("usage:write", "exporter")
    assert token.digest == token_digest(issued.json()["token"])
    assert [item["source"] for item in listed.json()["results"]] == ["slurm-narvik"]
    events = AuditEvent.objects.filter(verb__in=["scheduler_account.create", "token.create"])
    assert {(event.verb, event.actor_id) for event in events} == {
        ("scheduler_account.create", operator.pk),
        ("token.create", operator.pk),
    }


def test_the_issued_token_posts_usage(api, operator, bearer):
    # given
    auth = bearer(operator)
    account_id = api.post(URL, {"source": "slurm-narvik"}, format="json", **auth).json()["id"]
    secret = api.post(f"{URL}{account_id}/tokens/", {}, format="json", **auth).json()["token"]

    # when: an empty-for-its-source batch (one record of an unknown allocation)
    response = api.post(
        "/api/v1/usage/",
        {"records": [{"source": "slurm-narvik", "external_id": "1",
                      "allocation": "00000000-0000-0000-0000-000000000000", "gpu_seconds": 1,
                      "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:01:00Z"}]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )  # fmt: skip

    # then
    assert response.status_code == 200
    assert response.json()["rejected"][0]["code"] == "unknown_allocation"


def test_a_second_account_for_one_source_is_refused_and_changes_nothing(api, operator, bearer):
    # given
    auth = bearer(operator)
    api.post(URL, {"source": "slurm-narvik"}, format="json", **auth)
    before = (User.objects.count(), AuditEvent.objects.count())

    # when
    response = api.post(URL, {"source": "slurm-narvik"}, format="json", **auth)

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "source_taken"
    assert (User.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize("source", ["", "Slurm Narvik", "-x", "a" * 65, "slurm/narvik"])
def test_a_malformed_source_is_a_field_error(api, operator, bearer, source):
    # when
    response = api.post(URL, {"source": source}, format="json", **bearer(operator))

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "source" in response.json()["fields"]
    assert not User.objects.filter(scheduler_source__isnull=False).exists()


def test_people_who_are_not_operators_may_not_create_or_issue(
    api, member, bearer, scheduler_account
):
    # given
    auth = bearer(member)
    before = (User.objects.count(), AccessToken.objects.count())

    # when
    created = api.post(URL, {"source": "slurm-x"}, format="json", **auth)
    listed = api.get(URL, **auth)
    issued = api.post(f"{URL}{scheduler_account.pk}/tokens/", {}, format="json", **auth)

    # then
    for response in (created, listed, issued):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert (User.objects.count(), AccessToken.objects.count()) == before


def test_a_deactivated_scheduler_account_is_issued_no_token(
    api, operator, bearer, scheduler_account
):
    # given
    User.objects.filter(pk=scheduler_account.pk).update(is_active=False)
    before = (AccessToken.objects.count() + 1, AuditEvent.objects.count() + 1)  # the operator's

    # when
    response = api.post(
        f"{URL}{scheduler_account.pk}/tokens/", {}, format="json", **bearer(operator)
    )

    # then
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "The scheduler account is deactivated: activate it first.",
    }
    assert (AccessToken.objects.count(), AuditEvent.objects.count()) == before


def test_a_persons_account_is_not_a_scheduler_account(api, operator, member, bearer):
    # when
    response = api.post(f"{URL}{member.pk}/tokens/", {}, format="json", **bearer(operator))

    # then
    assert response.status_code == 404
    assert not AccessToken.objects.filter(user=member).exists()


def test_a_scheduler_token_may_not_create_scheduler_accounts(api, bearer, scheduler_account):
    # when
    response = api.post(
        URL, {"source": "slurm-x"}, format="json", **bearer(scheduler_account, "usage:write")
    )

    # then
    assert response.status_code == 403
    assert response.json()["code"] == "token_scope"


# --- the admin ---------------------------------------------------------------------------------


@pytest.fixture
def browser(operator):
    from django.test import Client

    operator.is_superuser = True
    operator.save(update_fields=["is_superuser"])
    client = Client()
    client.force_login(operator)
    return client


def test_the_admin_creates_a_scheduler_account_through_the_service(browser, operator):
    # when
    response = browser.post(
        "/admin/accounts/scheduleraccount/add/", {"source": "slurm-narvik", "full_name": "Narvik"}
    )

    # then
    assert response.status_code == 302
    account = SchedulerAccount.objects.get()
    assert (account.scheduler_source, account.full_name) == ("slurm-narvik", "Narvik")
    assert not account.has_usable_password()
    assert AuditEvent.objects.get(verb="scheduler_account.create").actor == operator


def test_the_admin_refuses_a_second_account_for_one_source(browser):
    # given
    scheduler_account_create(source="slurm-narvik", actor=SYSTEM)

    # when
    response = browser.post("/admin/accounts/scheduleraccount/add/", {"source": "slurm-narvik"})

    # then
    assert response.status_code == 200
    assert "reports for this source" in response.content.decode()
    assert SchedulerAccount.objects.count() == 1


def test_the_admin_action_issues_a_token_shown_once(browser, scheduler_account):
    # when
    response = browser.post(
        "/admin/accounts/scheduleraccount/",
        {"action": "issue_scheduler_tokens", "_selected_action": [str(scheduler_account.pk)]},
    )

    # then
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = AccessToken.objects.get(user=scheduler_account)
    secret = response.context["issued"][0][1].secret
    assert token.digest == token_digest(secret)
    assert secret in response.content.decode()
    assert token.scope == "usage:write"


def test_the_admin_switches_an_account_off_through_the_service(
    browser, operator, scheduler_account
):
    # when
    response = browser.post(
        f"/admin/accounts/scheduleraccount/{scheduler_account.pk}/change/",
        {"full_name": "Narvik Slurm"},  # `active` unticked
    )

    # then
    assert response.status_code == 302
    scheduler_account.refresh_from_db()
    assert (scheduler_account.full_name, scheduler_account.is_active) == ("Narvik Slurm", False)
    event = AuditEvent.objects.get(verb="scheduler_account.update")
    assert (event.actor, event.after["is_active"]) == (operator, False)


def test_scheduler_accounts_are_not_listed_among_people(browser, scheduler_account, operator):
    # when
    response = browser.get("/admin/accounts/user/")

    # then
    assert scheduler_account.email not in response.content.decode()
    assert operator.email in response.content.decode()


# --- the management command ----------------------------------------------------------------


def test_the_command_creates_the_account_once_and_prints_only_the_secret():
    # given
    out, err = io.StringIO(), io.StringIO()

    # when
    call_command("scheduler_account", "slurm-narvik", "--issue-token", stdout=out, stderr=err)
    call_command("scheduler_account", "slurm-narvik", stdout=io.StringIO(), stderr=err)

    # then
    account = SchedulerAccount.objects.get()
    secret = out.getvalue().strip()
    assert AccessToken.objects.get(user=account).digest == token_digest(secret)
    assert "Created" in err.getvalue()
    assert "exists" in err.getvalue()


def test_the_command_refuses_a_malformed_source():
    # when / then
    with pytest.raises(CommandError):
        call_command("scheduler_account", "Slurm Narvik", stdout=io.StringIO())
    assert not SchedulerAccount.objects.exists()
