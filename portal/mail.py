"""Mail for people: composed in each reader's language, and logged where no SMTP server is
configured.

Each mail is a template per language, `<app>/email/<name>.<language>.txt`, whose first line
is the subject: a mail reads better written whole in each language than assembled from
translated pieces. `compose` makes one mail per language among the recipients; it renders
each under that language, so lazy texts in the context (a decision's reasons) come out in it.

Where no SMTP server is configured (the embedded default), `LoggingEmailBackend` writes each
message to the log at INFO, its subject and body as people read them, not as encoded MIME.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from smtplib import SMTPException
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation

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


def languages() -> list[str]:
    return [code for code, _ in getattr(settings, "LANGUAGES", [(settings.LANGUAGE_CODE, "")])]


def language_of(user: Any) -> str:
    """The user's own language setting when it names a language the portal speaks, else the
    site's default."""
    chosen = str(getattr(user, "language", "") or "")
    known = languages()
    if chosen in known:
        return chosen
    base = chosen.split("-")[0]
    if base in known:
        return base
    return "nb" if base in ("no", "nn") and "nb" in known else settings.LANGUAGE_CODE


def absolute(path: str) -> str:
    """A link people can follow from a mail: the path on the portal's public address."""
    return f"{settings.PORTAL_PUBLIC_URL}{path}"


def page_link(name: str, fallback: str, **kwargs: Any) -> str:
    """The page `name` for people, or `fallback` (an API path) where the pages are not
    installed."""
    try:
        return absolute(reverse(name, kwargs=kwargs or None))
    except NoReverseMatch:
        return absolute(fallback)


def render(template: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of `template` in `language` (English where it has no such file)."""
    with translation.override(language):
        text = render_to_string(
            [f"{template}.{language}.txt", f"{template}.en.txt"],
            {**context, "language": language},
        )
    subject, _, body = text.partition("\n")
    return " ".join(subject.split()), body.strip() + "\n"


def compose(template: str, users: Iterable[Any], context: dict[str, Any]) -> list[EmailMessage]:
    """One mail per language among the recipients, each to those who read it."""
    groups: dict[str, set[str]] = defaultdict(set)
    for user in users:
        groups[language_of(user)].add(user.email)
    messages = []
    for language, recipients in sorted(groups.items()):
        subject, body = render(template, language, context)
        messages.append(
            EmailMessage(
                subject=subject,
                body=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=sorted(recipients),
            )
        )
    return messages


def compose_for_all(template: str, address: str, context: dict[str, Any]) -> EmailMessage:
    """One mail in every language the portal speaks, the site's default first: for an
    address with no account, and so no language of its own."""
    ordered = sorted(languages(), key=lambda code: code != settings.LANGUAGE_CODE)
    parts = [render(template, language, context) for language in ordered]
    return EmailMessage(
        subject=" / ".join(subject for subject, _ in parts),
        body="\n\n".join(body for _, body in parts),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )


def send(messages: list[EmailMessage]) -> int:
    """Send the composed mails (one per language among the recipients); how many went."""
    if not messages:
        return 0
    return get_connection().send_messages(messages) or 0


def mail_task(function: Callable[..., int]) -> Any:
    """A task that sends mail as an outbox effect: claimed by delivery, and retried with
    backoff (up to 8 times, at most 10 minutes apart) while the mail server refuses or is
    away. The function composes and sends its mails, and answers how many went."""
    from celery import shared_task

    from outbox.tasks import EffectTask

    return shared_task(
        base=EffectTask,
        autoretry_for=(SMTPException, ConnectionError),
        retry_backoff=True,
        retry_backoff_max=600,
        max_retries=8,
    )(function)
