"""Idempotency keys on the API's writes: one effect and the same answer per key."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessToken, IdempotencyKey
from accounts.services import idempotency_key_purge_expired, token_create
from allocations.models import Application, UsageRecord
from audit.models import AuditEvent
from portal import idempotency
from tests.workers.harness import database_url

KEY = "9b3c6a34-2a51-4d55-9b8f-6c1f0e0d4a11"


@pytest.fixture
def founder_api(founder) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=founder, name='t').secret}")
    return client


def _body(startup, fast_lane, pool, today, **overrides):
    return {
        "organization": str(startup.pk),
        "program": str(fast_lane.pk),
        "pool": str(pool.pk),
        "title": "Norwegian LLM fine-tune",
        "gpu_hours": 1_000,
        "start_date": (today + timedelta(days=1)).isoformat(),
        "end_date": (today + timedelta(days=10)).isoformat(),
        **overrides,
    }


def test_a_create_retried_with_its_key_replays_the_first_answer_and_creates_once(
    founder_api, startup, fast_lane, pool, today
):
    # given
    body = _body(startup, fast_lane, pool, today)
    first = founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)

    # when
    again = founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)

    # then
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Application.objects.count() == 1


def test_a_key_sent_with_another_body_is_refused_and_changes_nothing(
    founder_api, startup, fast_lane, pool, today
):
    # given
    founder_api.post(
        "/api/v1/applications/", _body(startup, fast_lane, pool, today), HTTP_IDEMPOTENCY_KEY=KEY
    )

    # when
    other = founder_api.post(
        "/api/v1/applications/",
        _body(startup, fast_lane, pool, today, gpu_hours=2_000),
        HTTP_IDEMPOTENCY_KEY=KEY,
    )

    # then
    assert other.status_code == 422
    assert other.json() == {
        "code": "idempotency_key_reused",
        "message": (
            "This Idempotency-Key was used for another request (another path or body); use a "
            "new key for a new request."
        ),
    }
    assert Application.objects.count() == 1


def test_the_same_key_on_another_path_is_refused(founder_api, draft):
    # given
    first, second = draft(), draft()
    founder_api.post(f"/api/v1/applications/{first.pk}/submit/", HTTP_IDEMPOTENCY_KEY=KEY)

    # when
    answer = founder_api.post(f"/api/v1/applications/{second.pk}/submit/", HTTP_IDEMPOTENCY_KEY=KEY)

    # then
    assert answer.status_code == 422
    assert answer.json()["code"] == "idempotency_key_reused"
    second.refresh_from_db()
    assert second.status == "draft"


def test_keys_are_per_user(founder_api, founder, startup, fast_lane, pool, today):
    # given: a colleague of the founder, using the same key
    from tests.factories import MembershipFactory, UserFactory

    colleague = UserFactory()
    MembershipFactory(user=colleague, organization=startup)
    colleague_api = APIClient()
    colleague_api.force_authenticate(colleague)
    body = _body(startup, fast_lane, pool, today)
    founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)

    # when
    theirs = colleague_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)

    # then: their own write, not a replay of the founder's
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert Application.objects.count() == 2


def test_a_submit_retried_with_its_key_submits_and_queues_once(
    founder_api,
    draft,
    django_capture_on_commit_callbacks,
):
    # given
    application = draft()

    # when
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = founder_api.post(
            f"/api/v1/applications/{application.pk}/submit/", HTTP_IDEMPOTENCY_KEY=KEY
        )
        again = founder_api.post(
            f"/api/v1/applications/{application.pk}/submit/", HTTP_IDEMPOTENCY_KEY=KEY
        )

    # then: without the key the retry would be a 409 (`invalid_transition`)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert len(queued) == 1
    assert AuditEvent.objects.filter(verb="application.submit").count() == 1


def test_a_refused_write_keeps_no_key_and_its_retry_acts_afresh(founder_api):
    # given: a token refused for its body
    refused = founder_api.post(
        "/api/v1/tokens/", {"name": "ci", "scope": "usage:write"}, HTTP_IDEMPOTENCY_KEY=KEY
    )
    tokens_before = AccessToken.objects.count()

    # when: the same key with a body that passes
    made = founder_api.post("/api/v1/tokens/", {"name": "ci"}, HTTP_IDEMPOTENCY_KEY=KEY)

    # then
    assert refused.status_code == 400
    assert made.status_code == 201
    assert "Idempotent-Replayed" not in made
    assert AccessToken.objects.count() == tokens_before + 1


def test_a_token_replay_gives_the_same_secret_which_is_stored_only_encrypted(founder_api):
    # given
    first = founder_api.post("/api/v1/tokens/", {"name": "laptop"}, HTTP_IDEMPOTENCY_KEY=KEY)

    # when
    again = founder_api.post("/api/v1/tokens/", {"name": "laptop"}, HTTP_IDEMPOTENCY_KEY=KEY)

    # then
    secret = first.json()["token"]
    assert again.status_code == 201
    assert again.json()["token"] == secret
    assert "no-store" in again["Cache-Control"]
    assert AccessToken.objects.filter(name="laptop").count() == 1
    kept = IdempotencyKey.objects.get()
    assert secret.encode() not in bytes(kept.answer)
    assert kept.key_digest == hashlib.sha256(KEY.encode()).hexdigest()
    assert KEY.encode() not in bytes(kept.answer)


def test_a_usage_batch_retried_with_its_key_answers_as_the_first_time(
    scheduler_client,
    record,
    allocation,
):
    # given
    batch = {"records": [record(1), record(2)]}
    first = scheduler_client.post("/api/v1/usage/", batch, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    # when
    again = scheduler_client.post("/api/v1/usage/", batch, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    unkeyed = scheduler_client.post("/api/v1/usage/", batch, format="json")

    # then: the keyed retry says what the first answer said; without a key it is a duplicate
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["accepted"] == 2
    assert unkeyed.json()["duplicates"] == 2
    assert UsageRecord.objects.count() == 2
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == 2 * 3_600 * 8


def test_a_release_retried_with_its_key_answers_the_same(client_for, founder, allocation):
    # given
    api = client_for(founder)
    path = f"/api/v1/allocations/{allocation.pk}/release/"
    first = api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)

    # when
    again = api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)

    # then
    assert first.status_code == 200, first.json()
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert AuditEvent.objects.filter(verb="allocation.release").count() == 1


def test_an_expired_key_is_forgotten_and_purged(founder_api, startup, fast_lane, pool, today):
    # given: a key past its time
    body = _body(startup, fast_lane, pool, today)
    founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    # when
    again = founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)

    # then: acted again, under a fresh key
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert Application.objects.count() == 2
    kept = IdempotencyKey.objects.get()
    assert kept.expires_at > timezone.now() + timedelta(hours=23)

    # when: its time passes, the beat's purge deletes it
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_key_purge_expired() == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("key", ["", "a key with spaces", "x" * 256, "ключ"])
def test_a_malformed_key_is_refused(founder_api, startup, fast_lane, pool, today, key):
    # when
    answer = founder_api.post(
        "/api/v1/applications/", _body(startup, fast_lane, pool, today), HTTP_IDEMPOTENCY_KEY=key
    )

    # then
    assert answer.status_code == 400
    assert answer.json()["code"] == "idempotency_key_invalid"
    assert not Application.objects.exists()


def test_a_key_in_flight_answers_409_with_retry_after(
    postgres, founder, founder_api, startup, fast_lane, pool, today
):
    # given: another request holds the key (its advisory lock), from another connection
    number = idempotency.lock_number(
        user_id=str(founder.pk), digest=hashlib.sha256(KEY.encode()).hexdigest()
    )
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [number])

        # when
        answer = founder_api.post(
            "/api/v1/applications/",
            _body(startup, fast_lane, pool, today),
            HTTP_IDEMPOTENCY_KEY=KEY,
        )

    # then
    assert answer.status_code == 409
    assert answer.json()["code"] == "idempotency_key_in_use"
    assert answer["Retry-After"] == "1"
    assert not Application.objects.exists()


def test_without_a_key_nothing_is_kept(founder_api, startup, fast_lane, pool, today):
    # when
    answer = founder_api.post("/api/v1/applications/", _body(startup, fast_lane, pool, today))

    # then
    assert answer.status_code == 201
    assert not IdempotencyKey.objects.exists()


def test_keyed_create_pins_its_query_count(
    founder_api, startup, fast_lane, pool, today, django_assert_max_num_queries
):
    # given
    body = _body(startup, fast_lane, pool, today)
    founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)

    # when / then: a replay reads the key and answers, nothing more
    with django_assert_max_num_queries(8):
        founder_api.post("/api/v1/applications/", body, HTTP_IDEMPOTENCY_KEY=KEY)
