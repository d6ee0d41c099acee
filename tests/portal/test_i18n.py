"""Norwegian bokmål and English: by Accept-Language, or by the person's own setting, for the
pages and the API's messages (the codes stay the same); the committed catalogs are current."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import token_create
from portal import translations
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_compiled_catalogs_are_current():
    # then: every .po has its .mo, saying the same (`make messages` compiles them)
    assert translations.catalogs(), "no message catalog found"
    assert translations.stale() == []


def test_a_page_answers_in_the_language_the_browser_asks_for():
    # when
    norwegian = Client().get("/", HTTP_ACCEPT_LANGUAGE="nb-NO,nb;q=0.9,en;q=0.5")
    english = Client().get("/", HTTP_ACCEPT_LANGUAGE="en-GB")

    # then
    assert norwegian["Content-Language"] == "nb"
    assert "Hvem kan søke" in norwegian.content.decode()
    assert english["Content-Language"] == "en"
    assert "Who may apply" in english.content.decode()


@pytest.mark.parametrize("header", ["no", "no-NO,en;q=0.5", "nn-NO", "NO"])
def test_norwegian_asked_for_as_no_or_nynorsk_gets_bokmal(header):
    # when
    response = Client().get("/", HTTP_ACCEPT_LANGUAGE=header)

    # then
    assert response["Content-Language"] == "nb"


def test_the_persons_setting_wins_over_the_browser():
    # given
    user = UserFactory(language="nb")
    client = Client()
    client.force_login(user)

    # when
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    # then
    assert response["Content-Language"] == "nb"


def test_api_errors_keep_their_code_and_speak_the_callers_language(api):
    # when
    answer = api.get("/api/v1/no-such-thing/", HTTP_ACCEPT_LANGUAGE="nb")

    # then
    assert answer.status_code == 404
    assert answer.json() == {"code": "not_found", "message": "Ikke funnet."}


def test_a_token_users_setting_chooses_the_language_of_api_messages(api):
    # given: a person who chose Norwegian, calling with a token and an English browser
    user = UserFactory(language="nb")
    issued = token_create(user=user, name="laptop")
    client = api
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    # when
    answer = client.post("/api/v1/applications/", {}, format="json", HTTP_ACCEPT_LANGUAGE="en")

    # then: the code is the same, the message Norwegian
    body = answer.json()
    assert answer.status_code == 400
    assert body["code"] == "validation_error"
    assert body["message"] == "Forespørselen har ugyldige felt."


def test_the_settings_page_stores_the_language(client):
    # given
    user = UserFactory()
    client.force_login(user)

    # when
    response = client.post("/settings/", {"full_name": "Kari", "language": "nb"})

    # then
    user.refresh_from_db()
    assert response.status_code == 302
    assert user.language == "nb"
    assert response.cookies["django_language"].value == "nb"
