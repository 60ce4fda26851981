"""Settings (time zone, outgoing mail server, signature, block rules, inbox address, what
starts open) and Team in the reader's language (issue 18): a German reader sees German, an
English colleague the same pages in English."""

from __future__ import annotations

from domain.languages import set_user_language
from storage.models import User
from tests.web import post

GERMAN = {
    "/settings": [
        "Einstellungen der Agentur",
        "Postausgangsserver",
        "Verschlüsselung",
        "Server speichern",
        "Signatur speichern",
        "Sperrregeln",
        "Keine Sperrregeln.",
        "Eingangsadresse ersetzen",
        "Dein Mailserver leitet die E-Mails für das Team an diese Adresse weiter:",
        "Was offen beginnt",
        "Interne Notizen",
    ],
    "/team": [
        "Letzte Anmeldung",
        "Mitglied hinzufügen",
        "Anfangspasswort",
        "Deaktivieren",
        "(du)",
        "Inhaber",
    ],
}
ENGLISH = {
    "/settings": [
        "Account settings",
        "Outgoing mail server",
        "Save server",
        "Save signature",
        "Block rules",
        "No block rules.",
        "Inbox address",
        "Your mail server forwards mail for the team to this address:",
        "What starts open",
        "Internal notes",
    ],
    "/team": ["Last login", "Add a member", "Initial password", "Deactivate", "(you)", "owner"],
}


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_settings_and_team_in_german_for_a_german_owner_in_english_for_an_english_admin(web):
    set_user_language(User.get_by_id(web.users["owner"].id), "de")
    german, english = web.client("owner"), web.client("admin")
    for path in GERMAN:
        page = _page(german, path)
        assert '<html lang="de">' in page
        for words in GERMAN[path]:
            assert words in page, (path, words)
        for words in ENGLISH[path][:4]:
            assert words not in page, (path, words)
        page = _page(english, path)
        assert '<html lang="en">' in page
        for words in ENGLISH[path]:
            assert words in page, (path, words)
        for words in GERMAN[path][:4]:
            assert words not in page, (path, words)


def test_a_settings_notice_is_in_the_readers_language(web):
    set_user_language(User.get_by_id(web.users["owner"].id), "de")
    german = web.client("owner")
    assert "Signatur gespeichert." in _page(german, "/settings?notice=signature-saved")
    assert "Signature saved." in _page(web.client("admin"), "/settings?notice=signature-saved")


def test_a_team_flash_names_the_member_in_a_whole_german_sentence(web):
    set_user_language(User.get_by_id(web.users["owner"].id), "de")
    german = web.client("owner")
    member = web.users["member"]
    response = post(german, f"/team/{member.id}/role", {"role": "admin"}, token_from="/team")
    assert response.status_code == 302
    page = _page(german, response.location)
    assert f"Rolle von {member.email} in Admin geändert." in page
