"""The REST API's error messages in the reader's language (issue 18): the token user's own
language, else their account's; before a token is known (401) the browser's Accept-Language.
The status and the JSON shape, the codes, never change."""

from __future__ import annotations

from domain.languages import set_user_language
from storage.models import User
from tests.test_api import api_as


def _error(response, status: int) -> str:
    body = response.get_json()
    assert response.status_code == status and body["status"] == status, body
    return body["error"]


def test_a_german_token_user_reads_german_messages_with_the_same_codes(web):
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    german, english = api_as(web, "member"), api_as(web, "admin")
    assert _error(german.get("/entries/999999"), 404) == "Eintrag nicht gefunden"
    assert _error(english.get("/entries/999999"), 404) == "entry not found"
    wrong = {"query_string": {"colour": "red"}}
    assert _error(german.get("/entries", **wrong), 400).startswith(
        "Unbekannter Abfrageparameter 'colour' (hier bekannt: "
    )
    assert _error(english.get("/entries", **wrong), 400).startswith(
        "unknown query parameter 'colour' (known here: "
    )
    search = {"query_string": {"q": '"unclosed'}}
    assert "Anführungszeichen ist nicht geschlossen" in _error(
        german.get("/entries", **search), 400
    )
    assert "a quote is not closed" in _error(english.get("/entries", **search), 400)
    assert _error(german.post("/projects", data="[1]"), 400) == (
        "Der Body der Anfrage muss ein JSON-Objekt sein"
    )
    assert _error(english.post("/projects", data="[1]"), 400) == (
        "the request body must be a JSON object"
    )


def test_a_401_follows_accept_language(web):
    anonymous = api_as(web, None)
    german = anonymous.get("/entries", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert _error(german, 401) == "Sende ein gültiges API-Token: Authorization: Bearer <token>"
    assert german.headers["WWW-Authenticate"] == 'Bearer realm="postroom"'
    english = anonymous.get("/entries", headers={"Accept-Language": "en"})
    assert _error(english, 401) == "send a valid API token: Authorization: Bearer <token>"
