"""Queues by kind on a real broker: each message lands on its own queue only."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from allocations import effects, tasks
from outbox import queues
from outbox.services import effects_publish
from portal.celery import app as celery_app

pytestmark = [pytest.mark.broker, pytest.mark.django_db]


def _sizes() -> dict[str, int]:
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        sizes = {}
        for name in queues.ALL:
            try:
                sizes[name] = channel.queue_declare(queue=name, passive=True)[1]
            except Exception:
                sizes[name] = 0
        return sizes


def test_each_kind_of_effect_lands_on_its_own_queue_only(real_broker: str, monkeypatch: Any):
    # given: no publication at commit, so that the relay's pass publishes all
    from outbox import services

    monkeypatch.setattr(services, "_broker_quiet_until", float("inf"))
    with transaction.atomic():
        effects.decide(application_id="a" * 32, submission=1)
        effects.recheck_waitlist(pool_id="b" * 32)
        effects.run_backend_call(call_id="c" * 32)
        effects.notify_application_decided(application_id="a" * 32, status="approved")

    # when: the relay publishes them, and the beat queues a periodic task
    published = effects_publish()
    tasks.advance_allocations.delay()

    # then
    assert published == 4
    assert _sizes() == {"decisions": 2, "scheduler": 1, "mail": 1, "celery": 1}
