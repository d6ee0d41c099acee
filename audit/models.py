"""The audit trail's one model: every app writes it, through `audit.services`."""

from __future__ import annotations

import uuid

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Append-only record of a state change: who, what, before and after, why."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=64)
    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    target_id = models.UUIDField()
    target_repr = models.CharField(max_length=300)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list, blank=True)

    class Meta:
        # The table and its index keep the names they had when the model lived in
        # `accounts`: moving it renamed nothing in the database.
        db_table = "accounts_auditevent"
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["target_type", "target_id", "created_at"],
                name="accounts_au_target__e7ff0e_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.verb} {self.target_repr}"
