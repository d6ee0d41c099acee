"""The `portal` command against a live portal (the test server, with the demo data)."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from typer.testing import CliRunner

from portal.celery import app as celery_app
from portal_client import cli, config
from portal_client.cli import app, chart

runner = CliRunner()


@pytest.fixture
def portal(live_server, tmp_path, monkeypatch) -> Iterator[str]:
    """A live portal with the demo data; decisions run at once in the server's thread."""
    call_command("load_demo", stdout=io.StringIO())
    monkeypatch.setenv("PORTAL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(cli.out, "width", 200)  # a wide terminal: no folded cells
    monkeypatch.delenv("PORTAL_URL", raising=False)
    monkeypatch.delenv("PORTAL_TOKEN", raising=False)
    celery_app.conf.task_always_eager = True
    try:
        yield live_server.url
    finally:
        celery_app.conf.task_always_eager = False


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _login(url: str) -> None:
    code, output = _run("login", "--url", url, "--email", "founder@fjordai.example",
                        "--password", "fjord-applicant-demo")  # fmt: skip
    assert code == 0, output


@pytest.mark.django_db(transaction=True)
def test_login_keeps_the_token_readable_by_its_owner_only(portal):
    # when
    _login(portal)

    # then
    path = config.config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"].startswith("pap_")


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_exits_3_not_signed_in_with_the_portals_message(portal):
    # when
    code, output = _run("login", "--url", portal, "--email", "founder@fjordai.example",
                        "--password", "nope")  # fmt: skip

    # then
    assert code == 3
    assert "invalid_credentials" in output
    assert not config.config_path().exists()


@pytest.mark.django_db(transaction=True)
def test_apply_and_watch_the_decision_arrive(portal):
    # given
    _login(portal)
    today = timezone.localdate()

    # when
    code, output = _run(
        "apply", "--program", "no-startups-fast-lane", "--pool", "narvik-gb300-a",
        "--gpu-hours", "5000", "--start", str(today + timedelta(days=1)),
        "--end", str(today + timedelta(days=30)), "--title", "Norwegian LLM", "--watch", "--json",
    )  # fmt: skip

    # then
    assert code == 0, output
    decided = json.loads(output[output.index("{") :])
    assert decided["status"] == "approved"
    assert decided["reasons"][0]["code"] == "auto_approved"

    # and the allocation shows up, with its usage
    code, output = _run("allocations", "--json")
    # the demo's own allocation of Fjord AI is listed beside it
    (allocation,) = [row for row in json.loads(output) if row["id"] == decided["allocation"]]
    assert allocation["granted_gpu_hours"] == 5000
    code, output = _run("usage", allocation["id"])
    assert code == 0, output
    assert "energy estimate MWh" in output
    code, output = _run("release", allocation["id"], "--yes")
    assert code == 0
    assert "Released" in output


@pytest.mark.django_db(transaction=True)
def test_apply_from_a_yaml_file_goes_to_review_with_exit_8(portal, tmp_path):
    # given
    _login(portal)
    start = timezone.localdate() + timedelta(days=1)
    file = tmp_path / "application.yaml"
    file.write_text(
        "program: Norwegian startups fast lane\npool: narvik-gb300-a\ngpu_hours: 40000\n"
        f"start_date: {start}\nend_date: {start + timedelta(days=20)}\n"
        "title: Speech model\npurpose: Norwegian speech recognition\n"
    )

    # when: the dates unquoted (YAML reads them as dates), the program by its name
    code, output = _run("apply", "--file", str(file), "--watch", "--stop-at-review")

    # then
    assert code == 8, output
    assert "in_review" in output
    assert "above_auto_approve" in output


@pytest.mark.django_db(transaction=True)
def test_programs_capacity_and_tokens_print_tables(portal):
    # given
    _login(portal)

    # when
    programs = _run("programs")
    capacity = _run("capacity", "narvik-gb300-a", "--start", "2026-12-01", "--end", "2026-12-07")
    tokens = _run("tokens", "list", "--json")

    # then
    assert programs[0] == 0
    assert "no-startups-fast-lane" in programs[1]
    assert capacity[0] == 0
    assert "2,280,000" in capacity[1]
    assert "free of 2,280,000 GPU-hours a day" in capacity[1]
    assert [t["name"] for t in json.loads(tokens[1])] == ["portal-cli"]


@pytest.mark.django_db(transaction=True)
def test_the_invitee_lists_and_accepts_an_invitation(portal):
    from accounts.models import Organization, User
    from accounts.services import invitation_create

    # given: another organization invites the demo applicant
    operator = User.objects.get(email="operator@narvik.example")
    organization = Organization.objects.create(name="Aurora AS", kind="startup", country="NO")
    invitation = invitation_create(
        organization=organization, email="founder@fjordai.example", role="member", actor=operator
    )
    _login(portal)

    # when
    listed = _run("invitations", "list")
    accepted = _run("invitations", "accept", str(invitation.pk))
    again = _run("invitations", "accept", str(invitation.pk))

    # then
    assert listed[0] == 0
    assert "Aurora AS" in listed[1]
    assert accepted == (0, "You joined Aurora AS as member.\n")
    assert again[0] == 1
    assert organization.memberships.filter(user__email="founder@fjordai.example").exists()


@pytest.mark.django_db(transaction=True)
def test_unknown_names_and_ids_exit_4(portal):
    # given
    _login(portal)

    # then
    assert _run("capacity", "no-such-pool")[0] == 4
    assert _run("status", "00000000-0000-0000-0000-000000000000")[0] == 4


def test_without_login_the_command_says_so_and_exits_3(tmp_path, monkeypatch):
    # given
    monkeypatch.setenv("PORTAL_CONFIG_DIR", str(tmp_path))

    # when
    code, output = _run("allocations")

    # then
    assert code == 3
    assert "portal login" in output


def test_an_unreachable_portal_exits_5(tmp_path, monkeypatch):
    # given: nothing listens on port 9
    monkeypatch.setenv("PORTAL_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PORTAL_TOKEN", "pap_x")

    # then
    assert _run("allocations")[0] == 5


def test_the_chart_scales_free_capacity_to_its_height():
    # when
    drawn = chart([100, 50, 0], [100, 100, 100], height=2)

    # then
    assert drawn.splitlines() == ["│█  ", "│██ ", "└───  free of 100 GPU-hours a day"]


@pytest.mark.django_db(transaction=True)
def test_an_operator_creates_a_scheduler_account_whose_token_posts_usage(portal, tmp_path):
    # given: the demo operator signed in
    code, output = _run("login", "--url", portal, "--email", "operator@narvik.example",
                        "--password", "narvik-operator-demo")  # fmt: skip
    assert code == 0, output

    # when
    code, created = _run("scheduler", "create", "slurm-narvik", "--json")
    account = json.loads(created)
    code, issued = _run("scheduler", "token", account["id"], "--json")
    secret = json.loads(issued)["token"]
    records = tmp_path / "usage.json"
    records.write_text(json.dumps([{
        "source": "slurm-narvik", "external_id": "1",
        "allocation": "00000000-0000-0000-0000-000000000000", "gpu_seconds": 1,
        "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:01:00Z",
    }]))  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_TOKEN", secret)
        code, posted = _run("usage", "--post", str(records))

    # then: the scheduler's token reached the ingest (which knows no such allocation)
    assert account["source"] == "slurm-narvik"
    assert "record 0: unknown_allocation" in posted
    assert code == 1


def test_every_command_has_help():
    for command in ("login", "programs", "capacity", "apply", "status", "watch", "allocations",
                    "usage", "release", "tokens", "scheduler", "invitations", "applications",
                    "withdraw"):  # fmt: skip
        code, output = _run(command, "--help")
        assert code == 0, command
        assert "Usage" in output


@pytest.mark.django_db(transaction=True)
def test_applications_list_short_ids_that_status_and_withdraw_take(portal):
    # given: an application in review (larger than the fast lane's automatic limit)
    _login(portal)
    today = timezone.localdate()
    code, output = _run(
        "apply", "--program", "no-startups-fast-lane", "--pool", "narvik-gb300-a",
        "--gpu-hours", "40000", "--start", str(today + timedelta(days=1)),
        "--end", str(today + timedelta(days=20)), "--title", "Speech model", "--json",
    )  # fmt: skip
    assert code == 0, output
    full_id = json.loads(output[output.index("{") :])["id"]

    # when
    listed = _run("applications")
    shown = _run("status", full_id[:8])
    withdrawn = _run("withdraw", full_id[:8], "--yes")

    # then
    assert listed[0] == 0
    assert full_id[:8] in listed[1]
    assert "in_review" in listed[1]
    assert shown[0] == 0, shown[1]
    assert full_id in shown[1]
    assert "<" not in shown[1]
    assert withdrawn[0] == 0, withdrawn[1]
    assert "withdrawn" in withdrawn[1]


@pytest.mark.django_db(transaction=True)
def test_a_short_id_that_matches_nothing_is_not_found_not_html(portal):
    # given
    _login(portal)

    # when
    code, output = _run("status", "abcd1234")

    # then
    assert code == 4
    assert "<" not in output


class _Statuses:
    """A portal whose application moves through the given statuses, one per read."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def application(self, application_id: str) -> dict:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"id": application_id, "title": "t", "gpu_hours": 1, "start_date": "2026-12-01",
                "end_date": "2026-12-02", "status": status, "reasons": []}  # fmt: skip


@pytest.mark.parametrize(
    ("stop_at_review", "statuses", "exit_code"),
    [
        (False, ("submitted", "in_review", "waitlisted", "approved"), 0),
        (False, ("submitted", "in_review", "rejected"), 6),
        (True, ("submitted", "in_review", "approved"), 8),
        (True, ("submitted", "waitlisted", "approved"), 9),
    ],
)
def test_watch_follows_to_a_final_state_unless_told_to_stop_at_review(
    monkeypatch, stop_at_review, statuses, exit_code
):
    # given
    monkeypatch.setattr(cli.time, "sleep", lambda seconds: None)

    # when
    with pytest.raises(cli.typer.Exit) as stopped:
        cli._follow(_Statuses(*statuses), "a" * 36, timeout=0, stop_at_review=stop_at_review,
                    as_json=False)  # fmt: skip

    # then
    assert stopped.value.exit_code == exit_code


def test_numbers_are_printed_one_way():
    assert [cli.hours(v) for v in (5000, "5000.00", "1234.50", "0.00", "2280000")] == [
        "5,000", "5,000", "1,234.50", "0", "2,280,000",
    ]  # fmt: skip


def test_tables_keep_ids_and_slugs_whole_at_120_columns():
    from rich.console import Console

    # given
    identifier = "3f2b8c1e-6a4d-4e0f-9c7b-2d1e5f6a7b8c"
    table = cli._table(
        "Tokens",
        ["id", "slug", "name", "GPU-hours"],
        [[identifier, "no-startups-fast-lane", "A long name " * 12, cli.hours("1234.5")]],
    )
    console = Console(width=120, record=True)

    # when
    console.print(table)
    text = console.export_text()

    # then
    assert identifier in text
    assert "no-startups-fast-lane" in text
    assert max(len(line) for line in text.splitlines()) <= 120
