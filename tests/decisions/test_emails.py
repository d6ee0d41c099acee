"""Mails a person can act on: a plain subject, the next step, the program's decision time,
when a waitlisted application is checked again, a link to its page, in the reader's
language; and, without SMTP, each mail in the log at INFO as people read it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.mail import EmailMessage, get_connection

from accounts.models import MembershipRole
from allocations import notifications, tasks
from allocations.models import Application
from portal import mail
from tests.factories import MembershipFactory, UserFactory


def test_a_waitlisted_mail_says_when_it_is_checked_again_and_what_to_do(
    too_big: Application, mailoutbox: list[EmailMessage]
) -> None:
    # when
    tasks.notify_application_decided(str(too_big.pk), "waitlisted")

    # then
    [mail] = mailoutbox
    assert mail.subject == 'Application "Too big" is waitlisted'
    assert (
        "It is checked again whenever capacity frees in narvik-test, and at least every 10 "
        "minutes, in program priority and then submission order"
    ) in mail.body
    assert f"when its window starts on {too_big.start_date}, it is rejected" in mail.body
    assert notifications.application_link(too_big) in mail.body


def test_the_recheck_interval_is_the_beats(settings: Any) -> None:
    from datetime import timedelta

    settings.CELERY_BEAT_SCHEDULE = {
        **settings.CELERY_BEAT_SCHEDULE,
        "recheck-all-waitlists": {"task": "x", "schedule": timedelta(minutes=30)},
    }
    assert notifications.waitlist_recheck_minutes() == 30


def test_each_reader_gets_the_mail_in_their_language(
    too_big: Application, founder: Any, settings: Any, mailoutbox: list[EmailMessage]
) -> None:
    settings.LANGUAGES = [("en", "English"), ("nb", "Norsk bokmål")]
    # given: the applicant chose Norwegian in their settings (stored), and another admin of
    # the organization chose English
    founder.language = "nb"
    founder.save(update_fields=["language"])
    english = UserFactory(email="john@fjord.example", language="en")
    MembershipFactory(user=english, organization=too_big.organization, role=MembershipRole.ADMIN)

    # when: the task reads the recipients from the database
    tasks.notify_application_decided(str(too_big.pk), "waitlisted")

    # then: one mail per language, each with its reasons in that language
    by_reader = {tuple(message.to): message for message in mailoutbox}
    assert set(by_reader) == {("founder@fjord.example",), ("john@fjord.example",)}
    norwegian = by_reader[("founder@fjord.example",)]
    assert norwegian.subject == "Søknaden «Too big» står på venteliste"
    assert "minst hvert 10. minutt" in norwegian.body
    assert "har poolen 2280 ledige GPU-timer; søknaden trenger 3000." in norwegian.body
    assert "GPU-hours free" not in norwegian.body
    english_mail = by_reader[("john@fjord.example",)]
    assert english_mail.subject == 'Application "Too big" is waitlisted'
    assert "the pool has 2280 GPU-hours free; the request needs 3000." in english_mail.body


@pytest.mark.parametrize(
    ("setting", "expected"), [("nb", "nb"), ("no", "nb"), ("en-gb", "en"), ("", "en"), ("xx", "en")]
)
def test_a_users_language_setting_is_read_leniently(
    setting: str, expected: str, settings: Any
) -> None:
    settings.LANGUAGES = [("en", "English"), ("nb", "Norsk bokmål")]
    user = UserFactory.build(email="someone@example.org")
    user.language = setting
    assert mail.language_of(user) == expected


def test_without_smtp_a_mail_is_logged_at_info_with_its_plain_subject(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given: the embedded default's backend
    settings.EMAIL_BACKEND = "portal.mail.LoggingEmailBackend"
    mail = EmailMessage(
        subject="Søknaden «Norsk språkmodell» er godkjent",
        body="Neste steg: ingenting å gjøre.\n",
        to=["kari@fjord.example"],
    )

    # when
    with caplog.at_level(logging.INFO, logger="portal.mail"):
        sent = get_connection().send_messages([mail])

    # then
    assert sent == 1
    [record] = [r for r in caplog.records if r.name == "portal.mail"]
    assert record.levelno == logging.INFO
    assert "Subject: Søknaden «Norsk språkmodell» er godkjent" in record.getMessage()
    assert "=?utf-8?" not in record.getMessage()
    assert "Neste steg: ingenting å gjøre." in record.getMessage()
