"""Usage comes from the scheduler only: a person can neither mint a `usage:write` token nor,
with one they held before, make the scheduler's real record of a job count as a duplicate."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.authz import SYSTEM
from accounts.models import AccessToken, User
from accounts.services import (
    invitation_accept,
    invitation_create,
    scheduler_account_create,
    scheduler_token_issue,
    token_create,
    token_digest,
)
from allocations.models import Allocation, UsageRecord
from audit.models import AuditEvent
from portal.errors import NotVisible, ScopeNotAllowed

pytestmark = pytest.mark.django_db


def test_a_member_cannot_mint_a_usage_write_token(api, founder, client_for):
    # given
    before = (AccessToken.objects.count(), AuditEvent.objects.count())

    # when
    response = client_for(founder).post(
        "/api/v1/tokens/", {"name": "slurm", "scope": "usage:write"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "scope_not_allowed"
    assert (AccessToken.objects.count(), AuditEvent.objects.count()) == before


def test_a_member_cannot_obtain_a_usage_write_token_with_a_password(api, founder):
    # given
    from tests.factories import PASSWORD

    before = (AccessToken.objects.count(), AuditEvent.objects.count())

    # when
    response = api.post(
        "/api/v1/auth/token/",
        {"email": founder.email, "password": PASSWORD, "name": "slurm", "scope": "usage:write"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "scope_not_allowed"
    assert (AccessToken.objects.count(), AuditEvent.objects.count()) == before


def test_an_operator_cannot_mint_a_usage_write_token_for_themselves(api, operator, client_for):
    # given
    before = (AccessToken.objects.count(), AuditEvent.objects.count())

    # when
    response = client_for(operator).post(
        "/api/v1/tokens/", {"name": "slurm", "scope": "usage:write"}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.json()["code"] == "scope_not_allowed"
    assert (AccessToken.objects.count(), AuditEvent.objects.count()) == before


def test_a_members_forged_record_cannot_make_the_schedulers_real_record_a_duplicate(
    api, founder, scheduler_client, record, allocation
):
    # given: the member holds a usage:write token issued before only schedulers could hold one
    secret = "pap_forged-" + "x" * 40
    AccessToken.objects.create(
        user=founder,
        name="legacy",
        prefix=secret[:12],
        digest=token_digest(secret),
        scope="usage:write",
        expires_at=timezone.now() + timedelta(days=30),
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    # when: the member posts job 90001 with one GPU-second, then the scheduler the real one
    forged = api.post(
        "/api/v1/usage/",
        {"records": [record(0, external_id="90001", gpu_seconds=1)]},
        format="json",
    )
    real = scheduler_client.post(
        "/api/v1/usage/",
        {"records": [record(0, external_id="90001", gpu_seconds=8 * 3_600)]},
        format="json",
    )

    # then
    assert (forged.status_code, real.json()) == (
        403,
        {"accepted": 1, "duplicates": 0, "rejected": []},
    )
    assert forged.json()["code"] == "token_scope"
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 8 * 3_600
    assert UsageRecord.objects.get().gpu_seconds == 8 * 3_600


def test_another_clusters_scheduler_cannot_post_records_of_this_source(
    scheduler_client, scheduler_token, record, allocation
):
    # given: the service account of another cluster
    other = scheduler_token(scheduler_account_create(source="slurm-bergen", actor=SYSTEM))

    # when: it posts job 90001 as `slurm-narvik`, then the Narvik scheduler the real one
    forged = other.post(
        "/api/v1/usage/",
        {"records": [record(0, external_id="90001", gpu_seconds=1)]},
        format="json",
    )
    real = scheduler_client.post(
        "/api/v1/usage/", {"records": [record(0, external_id="90001")]}, format="json"
    )

    # then
    assert forged.json() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [
            {
                "index": 0,
                "code": "wrong_source",
                "message": "This scheduler reports for `slurm-bergen`, not `slurm-narvik`.",
            }
        ],
    }
    assert real.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert UsageRecord.objects.get().source == "slurm-narvik"


def test_a_known_job_reposted_with_other_content_is_a_conflict_and_changes_nothing(
    scheduler_client, record, allocation
):
    # given
    scheduler_client.post("/api/v1/usage/", {"records": [record(1)]}, format="json")
    used = Allocation.objects.get(pk=allocation.pk).used_gpu_seconds
    changes = [
        {"gpu_seconds": 1},
        {"energy_kwh": "12.500"},
        {"ended_at": record(1)["started_at"]},
    ]

    # when
    response = scheduler_client.post(
        "/api/v1/usage/",
        {"records": [record(1), *(record(1, **change) for change in changes)]},
        format="json",
    )

    # then
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (0, 1)
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "conflicting_record"),
        (2, "conflicting_record"),
        (3, "conflicting_record"),
    ]
    assert Allocation.objects.get(pk=allocation.pk).used_gpu_seconds == used
    assert UsageRecord.objects.get().gpu_seconds == 8 * 3_600


def test_a_job_reported_for_another_allocation_is_a_conflict(
    scheduler_client, record, allocation, draft, decide, today
):
    # given: a second allocation, and job 1 stored against the first
    second = Allocation.objects.get(
        application=decide(
            draft(gpu_hours=100, start_date=today, end_date=today + timedelta(days=9), title="b")
        )
    )
    scheduler_client.post("/api/v1/usage/", {"records": [record(1)]}, format="json")

    # when
    response = scheduler_client.post(
        "/api/v1/usage/", {"records": [record(1, allocation=str(second.pk))]}, format="json"
    )

    # then
    assert [r["code"] for r in response.json()["rejected"]] == ["conflicting_record"]
    second.refresh_from_db()
    assert second.used_gpu_seconds == 0


def test_one_job_twice_in_a_batch_with_other_content_counts_the_first_only(
    scheduler_client, record, allocation
):
    # when
    response = scheduler_client.post(
        "/api/v1/usage/",
        {"records": [record(1), record(1), record(1, gpu_seconds=5)]},
        format="json",
    )

    # then
    assert response.json() == {
        "accepted": 1,
        "duplicates": 1,
        "rejected": [
            {
                "index": 2,
                "code": "conflicting_record",
                "message": "Job slurm-narvik/job-1 was reported before with other content "
                "(allocation, GPU-seconds, times or energy); the first report stands.",
            }
        ],
    }
    assert Allocation.objects.get(pk=allocation.pk).used_gpu_seconds == 8 * 3_600


def test_the_scheduler_posts_for_any_organizations_allocation_and_reads_their_limits(
    scheduler_client, record, allocation
):
    # given: the allocation belongs to an organization the scheduler is no member of
    assert not allocation.organization.memberships.filter(user__scheduler_source__isnull=False)

    # when
    posted = scheduler_client.post("/api/v1/usage/", {"records": [record(1)]}, format="json")
    listed = scheduler_client.get("/api/v1/allocations/")
    detail = scheduler_client.get(f"/api/v1/allocations/{allocation.pk}/")

    # then
    assert posted.json()["accepted"] == 1
    assert [item["id"] for item in listed.json()["results"]] == [str(allocation.pk)]
    assert detail.json()["granted_gpu_hours"] == 1_000


@pytest.mark.parametrize(
    "path",
    ["/api/v1/me/", "/api/v1/organizations/", "/api/v1/applications/", "/api/v1/tokens/",
     "/api/v1/scheduler-accounts/", "/api/v1/reports/capacity/"],
)  # fmt: skip
def test_the_scheduler_reads_nothing_but_allocations(scheduler_client, path):
    # when
    response = scheduler_client.get(path)

    # then
    assert response.status_code == 403
    assert response.json()["code"] == "token_scope"


def test_a_scheduler_account_has_no_password_membership_or_staff(api, scheduler, startup, founder):
    # when: someone tries its email with any password, and an admin invites it (the answer
    # to an invitation tells nothing about accounts) and it tries to accept
    obtained = api.post(
        "/api/v1/auth/token/",
        {"email": scheduler.email, "password": "", "name": "x"},
        format="json",
    )
    invitation = invitation_create(
        organization=startup, email=scheduler.email, role="member", actor=founder
    )
    added_error = None
    try:
        invitation_accept(invitation=invitation, actor=scheduler)
    except NotVisible as error:
        added_error = error

    # then
    assert not scheduler.has_usable_password()
    assert obtained.status_code == 400
    assert added_error is not None
    assert not scheduler.memberships.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=scheduler.pk).update(is_staff=True)


def test_a_scheduler_account_holds_no_full_token(scheduler):
    # when / then
    with pytest.raises(ScopeNotAllowed):
        token_create(user=scheduler, name="x", scope="full")
    assert not AccessToken.objects.filter(user=scheduler).exists()


def test_the_migration_revokes_the_usage_write_tokens_people_hold(founder, scheduler):
    # given
    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0004_scheduler_accounts")
    person = AccessToken.objects.create(
        user=founder, name="legacy", prefix="pap_legacy", digest="a" * 64, scope="usage:write",
        expires_at=timezone.now() + timedelta(days=30),
    )  # fmt: skip
    full = token_create(user=founder, name="laptop").token
    scheduler_token = scheduler_token_issue(account=scheduler, actor=SYSTEM, name="slurm").token

    # when
    migration.revoke_human_usage_tokens(apps, None)

    # then
    revoked = set(AccessToken.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True))
    assert revoked == {person.pk}
    assert {full.pk, scheduler_token.pk}.isdisjoint(revoked)
