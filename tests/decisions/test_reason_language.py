"""Decision reasons and refusals in the reader's language, figures included.

A decision is made in a worker, with no reader; each reader then sees its reasons in their
own language (the API's `Accept-Language` or the user's setting, the pages, the admin), with
the same stable code and the same figures."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from accounts.services import token_create
from allocations import reasons
from allocations.models import Application, ApplicationStatus
from allocations.services import applications as services
from portal import translations


def test_a_reason_is_stored_in_english_with_its_key_and_figures(too_big: Application) -> None:
    [stored] = too_big.reasons
    assert stored["code"] == "capacity_pool"
    assert stored["message_key"] == "capacity_pool"
    assert stored["params"] == {"day": stored["day"], "free": 2280, "needs": 3000}
    assert stored["message"] == (
        f"On {stored['day']} the pool has 2280 GPU-hours free; the request needs 3000."
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nb", "har poolen 2280 ledige GPU-timer; søknaden trenger 3000."),
        ("en", "the pool has 2280 GPU-hours free; the request needs 3000."),
    ],
)
def test_the_api_gives_the_reason_in_the_language_asked_for(
    too_big: Application, founder: Any, api: Any, language: str, expected: str
) -> None:
    # given: a bearer token, as client tools call
    issued = token_create(user=founder, name="laptop")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # when
    answer = api.get(f"/api/v1/applications/{too_big.pk}/", HTTP_ACCEPT_LANGUAGE=language)

    # then: the same code and day, the message in that language
    assert answer.status_code == 200, answer.content
    [given] = answer.json()["reasons"]
    assert given["code"] == "capacity_pool"
    assert given["day"] == too_big.reasons[0]["day"]
    assert expected in given["message"]
    assert set(given) == {"code", "message", "day"}


def test_a_users_language_setting_chooses_the_language_of_reasons_in_lists(
    too_big: Application, founder: Any, api: Any
) -> None:
    founder.language = "nb"
    founder.save(update_fields=["language"])
    issued = token_create(user=founder, name="laptop")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    answer = api.get("/api/v1/applications/", HTTP_ACCEPT_LANGUAGE="en")

    assert answer.status_code == 200
    [row] = [row for row in answer.json()["results"] if row["id"] == str(too_big.pk)]
    assert "ledige GPU-timer" in row["reasons"][0]["message"]


def test_a_draft_refused_before_submit_says_why_in_norwegian_with_the_figures(
    founder: Any, startup: Any, fast_lane: Any, pool: Any, today: Any, api: Any
) -> None:
    issued = token_create(user=founder, name="laptop")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    body = {
        "organization": str(startup.pk),
        "program": str(fast_lane.pk),
        "pool": str(pool.pk),
        "title": "Far too big",
        "gpu_hours": fast_lane.max_gpu_hours + 1,
        "start_date": today.isoformat(),
        "end_date": today.isoformat(),
    }

    answer = api.post("/api/v1/applications/", body, format="json", HTTP_ACCEPT_LANGUAGE="nb")

    assert answer.status_code == 400, answer.content
    [error] = answer.json()["fields"]["gpu_hours"]
    assert error["code"] == "out_of_bounds"
    assert error["message"] == (
        f"{fast_lane.name} tar {fast_lane.min_gpu_hours} til {fast_lane.max_gpu_hours} "
        "GPU-timer per søknad."
    )
    assert not Application.objects.filter(title="Far too big").exists()


def test_the_applicants_page_shows_the_reason_in_norwegian(
    too_big: Application, founder: Any
) -> None:
    founder.language = "nb"
    founder.save(update_fields=["language"])
    browser = Client()
    browser.force_login(founder)

    page = browser.get(f"/applications/{too_big.pk}/")

    assert page.status_code == 200
    assert "har poolen 2280 ledige GPU-timer" in page.content.decode()


def test_a_reviewers_own_note_and_a_reason_stored_without_a_key_read_as_written(
    draft: Any, decide: Any, window: Any, reviewer: Any
) -> None:
    # given: an application in review, rejected with a note in the reviewer's words
    application = decide(draft(title="Review me", gpu_hours=12_000, **window(2, 10)))
    assert application.status == ApplicationStatus.IN_REVIEW
    rejected = services.application_reject(
        application=application, actor=reviewer, note="Please split it in two."
    )

    # then: under Norwegian the note is as written; a legacy entry reads as stored
    with translation.override("nb"):
        assert reasons.translated(rejected.reasons)[0]["message"] == "Please split it in two."
        legacy = {"code": "capacity_pool", "message": "On 2026-01-01 the pool is full."}
        assert reasons.message_of(legacy) == "On 2026-01-01 the pool is full."
        broken = {**legacy, "message_key": "capacity_pool", "params": {"day": "x"}}
        assert reasons.message_of(broken) == "On 2026-01-01 the pool is full."


def test_every_reason_message_has_a_norwegian_translation_with_the_same_figures() -> None:
    catalog = {
        msgid: forms[0]
        for (context, msgid), forms in translations.entries(
            translations.BASE_DIR / "allocations/locale/nb/LC_MESSAGES/django.po"
        ).items()
    }
    for key, message in reasons.MESSAGES.items():
        assert message in catalog, key
        figures = sorted(re.findall(r"%\((\w+)\)s", message))
        assert sorted(re.findall(r"%\((\w+)\)s", catalog[message])) == figures, key


def test_a_refused_transition_keeps_its_code_and_speaks_norwegian(
    draft: Any, decide: Any, founder: Any, api: Any
) -> None:
    # given: an approved application
    approved = decide(draft(title="Approved"))
    assert approved.status == ApplicationStatus.APPROVED
    issued = token_create(user=founder, name="laptop")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # when: withdrawing it, in Norwegian
    answer = api.post(f"/api/v1/applications/{approved.pk}/withdraw/", HTTP_ACCEPT_LANGUAGE="nb")

    # then
    assert answer.status_code == 409, answer.content
    assert answer.json() == {
        "code": "invalid_transition",
        "message": "Søknaden er «approved»: den kan ikke trekkes.",
    }
