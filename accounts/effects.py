"""The side effects of the accounts app (mail), written to the outbox in the caller's
transaction (outbox/services.py)."""

from __future__ import annotations

from typing import Any

from outbox import queues
from outbox.services import effect_add


def notify_organization_verified(*, organization_id: Any) -> None:
    effect_add(
        task="accounts.tasks.notify_organization_verified",
        args=[str(organization_id)],
        queue=queues.MAIL,
    )


def send_invitation(*, invitation_id: Any) -> None:
    effect_add(task="accounts.tasks.send_invitation", args=[str(invitation_id)], queue=queues.MAIL)
