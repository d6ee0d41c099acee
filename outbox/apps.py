from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The transactional outbox: side effects written with their cause, published by a relay."""

    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        # The relay thread and the worker heartbeat start with each Celery worker.
        from outbox import relay  # noqa: F401
