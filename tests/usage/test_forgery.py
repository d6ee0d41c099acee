"""Usage comes from the scheduler only: a person can neither mint a `usage:write` token nor,
with one they held before, make the scheduler's real record of a job count as a duplicate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccessToken, AuditEvent
from accounts.services import token_digest
from allocations.models import UsageRecord

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
