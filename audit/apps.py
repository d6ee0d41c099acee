from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: an append-only record of every state change, written by every app in
    the transaction of its change."""

    name = "audit"
    verbose_name = "Audit trail"
