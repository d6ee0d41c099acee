"""Mail where no SMTP server is configured (the embedded default): each message is written
to the log at INFO, its subject and body as people read them, not as encoded MIME."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("portal.mail")


class LoggingEmailBackend(BaseEmailBackend):
    """Logs every message instead of sending it. A worker's log then shows the mail in full
    at INFO, where the console backend printed encoded headers to standard output (which a
    Celery worker logs as WARNING)."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            logger.info(
                "Mail to %s\nSubject: %s\n\n%s",
                ", ".join(message.recipients()),
                message.subject,
                message.body,
            )
        return len(email_messages)
