"""The scheduler account of an allocation: intent from the portal's state, carried out by
each backend call, compared and mended by `scheduler_reconcile`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from allocations.backends import account_name
from allocations.models import Allocation, BackendCall, SchedulerCheck
from allocations.services.scheduler import backend_call_run, scheduler_spec
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _run_pending(allocation: Allocation) -> None:
    for call in BackendCall.objects.filter(allocation=allocation).order_by("created_at"):
        backend_call_run(call_id=call.pk)


def _qos(allocation: Allocation) -> str:
    return f"{account_name(allocation.pk)}-qos"


def test_active_members_with_a_scheduler_user_name_are_the_accounts_users(
    allocation, founder, startup
):
    # given
    founder.scheduler_username = "kari"
    founder.save(update_fields=["scheduler_username"])
    MembershipFactory(organization=startup, user=UserFactory(scheduler_username="ola"))
    MembershipFactory(organization=startup, user=UserFactory())  # no user name on the cluster
    MembershipFactory(
        organization=startup, user=UserFactory(scheduler_username="gone", is_active=False)
    )
    MembershipFactory(
        organization=OrganizationFactory(), user=UserFactory(scheduler_username="stranger")
    )

    # when
    spec = scheduler_spec(allocation=allocation)

    # then
    assert spec.users == ("kari", "ola")
    assert (spec.gpu_minutes, spec.runnable) == (1_000 * 60, True)


def test_approval_creates_the_account_with_its_members_as_users(allocation, founder, fake_slurm):
    # given
    founder.scheduler_username = "kari"
    founder.save(update_fields=["scheduler_username"])

    # when
    _run_pending(allocation)

    # then
    account = fake_slurm.accounts[account_name(allocation.pk)]
    assert set(account["users"]) == {"kari"}
    assert fake_slurm.qos[_qos(allocation)]["mins"] == 60_000


def test_an_operator_suspension_stops_new_gpu_jobs_and_resume_lets_them_run(
    allocation, operator, fake_slurm
):
    from allocations.services.allocations import allocation_resume, allocation_suspend

    # given
    _run_pending(allocation)

    # when
    allocation_suspend(allocation=allocation, actor=operator)
    _run_pending(allocation)
    cap_suspended = fake_slurm.qos[_qos(allocation)]["cap"]
    allocation_resume(allocation=allocation, actor=operator)
    _run_pending(allocation)

    # then
    assert cap_suspended == 0
    assert fake_slurm.qos[_qos(allocation)]["cap"] is None


def test_a_late_suspend_call_does_not_undo_a_newer_resume(allocation, operator, fake_slurm):
    from allocations.services.allocations import allocation_resume, allocation_suspend

    # given: the suspend call failed and is retried after the allocation was resumed
    _run_pending(allocation)
    allocation_suspend(allocation=allocation, actor=operator)
    allocation_resume(allocation=allocation, actor=operator)
    late = BackendCall.objects.get(allocation=allocation, action="suspend")

    # when
    backend_call_run(call_id=late.pk)

    # then
    assert fake_slurm.qos[_qos(allocation)]["cap"] is None


def test_expiry_stops_new_gpu_jobs(allocation, fake_slurm):
    from allocations.services.allocations import allocation_advance

    # given
    _run_pending(allocation)

    # when
    allocation_advance(today=allocation.end_date + timedelta(days=1))
    _run_pending(allocation)

    # then
    assert Allocation.objects.get(pk=allocation.pk).status == "expired"
    assert fake_slurm.qos[_qos(allocation)]["cap"] == 0


def test_a_scheduled_allocation_may_run_jobs_from_its_first_day(draft, decide, today, fake_slurm):
    from allocations.services.allocations import allocation_advance

    # given
    application = decide(
        draft(
            gpu_hours=1_000,
            start_date=today + timedelta(days=2),
            end_date=today + timedelta(days=9),
        )
    )
    allocation = Allocation.objects.get(application=application)
    _run_pending(allocation)
    cap_before = fake_slurm.qos[_qos(allocation)]["cap"]

    # when
    allocation_advance(today=today + timedelta(days=2))
    _run_pending(allocation)

    # then
    assert cap_before == 0
    assert fake_slurm.qos[_qos(allocation)]["cap"] is None


def test_reconcile_reports_a_limit_changed_by_hand_and_changes_nothing(allocation, fake_slurm):
    # given
    _run_pending(allocation)
    fake_slurm.qos[_qos(allocation)]["mins"] = 1
    fake_slurm.writes.clear()
    out = StringIO()

    # when
    with pytest.raises(SystemExit) as exit_code:
        call_command("scheduler_reconcile", stdout=out)

    # then
    assert exit_code.value.code == 1
    assert f"{account_name(allocation.pk)} gpu_minutes: intended 60000, held 1" in out.getvalue()
    assert fake_slurm.writes == []
    assert SchedulerCheck.objects.get().drifted_accounts == 1


def test_reconcile_with_apply_mends_the_drift_and_leaves_unknown_accounts_alone(
    allocation, founder, fake_slurm
):
    # given: a limit changed, a user removed by hand, and an account the portal never made
    _run_pending(allocation)
    founder.scheduler_username = "kari"
    founder.save(update_fields=["scheduler_username"])
    fake_slurm.qos[_qos(allocation)]["mins"] = 1
    fake_slurm.qos["pap-ffffffffffffffff-qos"] = {"flags": set(), "mins": 5, "cap": None}
    out = StringIO()

    # when
    with pytest.raises(SystemExit):
        call_command("scheduler_reconcile", "--apply", stdout=out)
    again = StringIO()
    with pytest.raises(SystemExit):
        call_command("scheduler_reconcile", stdout=again)

    # then
    assert f"{account_name(allocation.pk)}: mended" in out.getvalue()
    assert fake_slurm.qos[_qos(allocation)]["mins"] == 60_000
    assert set(fake_slurm.accounts[account_name(allocation.pk)]["users"]) == {"kari"}
    assert fake_slurm.qos["pap-ffffffffffffffff-qos"]["mins"] == 5
    assert again.getvalue().splitlines() == [
        'pap-ffffffffffffffff account: intended null, held "unknown to the portal"',
        "1 account(s) drifted; run with --apply to mend them.",
    ]


def test_reconcile_without_drift_says_so(allocation, fake_slurm):
    # given
    _run_pending(allocation)
    out = StringIO()

    # when
    call_command("scheduler_reconcile", stdout=out)

    # then
    assert out.getvalue() == "No drift.\n"


def test_the_beat_checks_the_scheduler_and_metrics_show_the_drift(
    allocation, fake_slurm, client, settings
):
    from allocations.tasks import check_scheduler

    # given
    _run_pending(allocation)
    fake_slurm.qos[_qos(allocation)]["cap"] = 0  # stopped by hand
    fake_slurm.writes.clear()
    settings.PORTAL_METRICS_TOKEN = "scrape-me"

    # when
    drifted = check_scheduler()
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()

    # then
    assert drifted == 1
    assert fake_slurm.writes == []
    assert "portal_scheduler_drifted_accounts 1.0" in metrics
    assert "portal_scheduler_checked_timestamp_seconds" in metrics


def test_the_recording_backend_is_the_default_and_reconciles_nothing(settings):
    from django.core.management.base import CommandError

    # given: the embedded default, as `.env.example` leaves it
    example = (Path(__file__).parents[2] / ".env.example").read_text()

    # when / then
    assert settings.PORTAL_SCHEDULER_BACKEND.endswith("RecordingBackend")
    assert "PORTAL_SCHEDULER_BACKEND=allocations.backends.recording.RecordingBackend\n" in example
    with pytest.raises(CommandError, match="holds no cluster") as refused:
        call_command("scheduler_reconcile")
    assert refused.value.returncode == 2


def test_members_who_join_or_leave_join_or_leave_the_account(allocation, founder, fake_slurm):
    from accounts.models import Membership
    from accounts.services import invitation_accept, invitation_create, membership_remove

    # given
    founder.scheduler_username = "kari"
    founder.save(update_fields=["scheduler_username"])
    ola = UserFactory(email="ola@fjord.example", scheduler_username="ola")
    _run_pending(allocation)

    # when
    invitation = invitation_create(
        organization=allocation.organization,
        email="ola@fjord.example",
        role="member",
        actor=founder,
    )
    invitation_accept(invitation=invitation, actor=ola)
    _run_pending(allocation)
    joined = set(fake_slurm.accounts[account_name(allocation.pk)]["users"])
    membership_remove(
        membership=Membership.objects.get(user__email="ola@fjord.example"), actor=founder
    )
    _run_pending(allocation)

    # then
    assert joined == {"kari", "ola"}
    assert set(fake_slurm.accounts[account_name(allocation.pk)]["users"]) == {"kari"}


def test_an_operator_who_sets_a_scheduler_user_name_in_the_admin_adds_it_to_the_accounts(
    allocation, founder, fake_slurm, client
):
    from tests.factories import OperatorFactory

    # given
    _run_pending(allocation)
    admin = OperatorFactory(is_superuser=True)
    client.force_login(admin)
    page = client.get(f"/admin/accounts/user/{founder.pk}/change/")
    form = page.context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None}
    data.update(
        email=founder.email,
        full_name=founder.full_name,
        scheduler_username="kari",
        is_active="on",
        date_joined_0=founder.date_joined.date().isoformat(),
        date_joined_1="00:00:00",
    )
    for key in ("groups", "user_permissions", "password", "last_login"):
        data.pop(key, None)
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update(
            {f"{management.prefix}-{name}": value for name, value in management.initial.items()}
        )

    # when
    response = client.post(f"/admin/accounts/user/{founder.pk}/change/", data)
    _run_pending(allocation)

    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(fake_slurm.accounts[account_name(allocation.pk)]["users"]) == {"kari"}
