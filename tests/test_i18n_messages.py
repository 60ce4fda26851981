"""Issue 18: the message-to-customer form, the mail templates (list and edit), the follow
button and the notification labels of the profile in the reader's language: a German member
reads German (the seed's words: Nachricht an Kunden, Vorlagen verwalten, In Vorlagen
suchen), an English colleague the same pages in English; the queued-mail flash follows the
sender's language.
"""

from __future__ import annotations

import pytest
from markupsafe import escape

from domain.languages import set_user_language
from postroom.jobs import notify
from postroom.mail_templates import VARIABLES
from storage.models import User
from storage.outbound import save_template
from tests.mail import message
from tests.test_notifications import bakery_followed_by, settings, sink  # noqa: F401
from tests.test_ui_unassigned import receive
from tests.web import post

GERMAN = {
    "message": [
        "Nachricht an Kunden",
        "Mit einer Vorlage beginnen",
        "In Vorlagen suchen",
        "Vorlagen verwalten",
        "Antworten landen wieder in diesem Protokoll",
        "Senden",
    ],
    "templates": ["E-Mail-Vorlagen", "In Vorlagen suchen", "+ Neue Vorlage", "Kopieren"],
    "edit": ["Vorlage bearbeiten", "Variablen", "Vorschau", "Als neue Vorlage kopieren"],
    "new": ["Neue Vorlage", "Variablen", "Zurück zur Liste"],
    "protocol": ["Folgen", "Von Kunden-E-Mails und Änderungen in diesem Projekt erfahren"],
    "profile": ["Kunden-E-Mails in Projekten, denen ich folge", "Jemand erwähnt mich"],
}
ENGLISH = {
    "message": [
        "Message to the customer",
        "Start from a template",
        "Search templates",
        "Manage templates",
        "Replies come back into this protocol",
        "Send",
    ],
    "templates": ["Mail templates", "Search templates", "+ New template", "Copy"],
    "edit": ["Edit template", "Variables", "Preview", "Copy as a new template"],
    "new": ["New template", "Variables", "Back to the list"],
    "protocol": ["Follow", "Hear of customer mail and changes in this project"],
    "profile": ["Customer mail on projects I follow", "Someone mentions me in a note"],
}


@pytest.fixture
def pages(web, bakery):
    template = save_template(web.account.id, "Welcome", "Hello {{ website_name }}", "Hi there")
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    return {
        "message": f"/projects/{bakery.id}/messages/new",
        "templates": "/templates",
        "edit": f"/templates/{template.id}/edit",
        "new": "/templates/new",
        "protocol": f"/projects/{bakery.id}/protocol",
        "profile": "/profile",
    }


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_a_german_member_reads_these_pages_in_german_an_english_colleague_in_english(web, pages):
    german, english = web.client("member"), web.client("admin")
    for _round in range(2):  # twice: words set in an imported template are not cached
        for name, path in pages.items():
            page = _page(german, path)
            for words in GERMAN[name]:
                assert words in page, (path, words)
            for words in ENGLISH[name][:2]:
                assert words not in page, (path, words)
            page = _page(english, path)
            for words in ENGLISH[name]:
                assert words in page, (path, words)
            for words in GERMAN[name][:2]:
                assert words not in page, (path, words)


def test_the_queued_mail_flash_is_in_the_senders_language(web, bakery):
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    german = web.client("member")
    path = f"/projects/{bakery.id}/messages/new"
    form = {"to": "anna@bakery.example", "to_other": "", "subject": "Fotos", "body": "Hallo"}
    response = post(german, path, form, token_from=path)
    assert response.status_code == 302
    protocol = _page(german, response.headers["Location"])
    assert "E-Mail an anna@bakery.example in der Warteschlange" in protocol


def test_notification_labels_follow_each_readers_language(web, settings):  # noqa: F811
    """The labels come from a template imported with context: a German reader first does not
    leave them German for the English reader after (Jinja caches imports without context)."""
    bakery_followed_by(web, "member", "admin")
    receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    notify.process_events(settings)
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    for _round in range(2):
        german = _page(web.client("member"), "/notifications")
        english = _page(web.client("admin"), "/notifications")
        assert "Kunden-E-Mail" in german and "Customer mail" not in german
        assert "Customer mail" in english and "Kunden-E-Mail" not in english


def test_the_variables_help_is_in_the_readers_language(web, pages):
    """Each variable's meaning (postroom.mail_templates.VARIABLES) in the reader's language."""
    german = _page(web.client("member"), pages["edit"])
    assert "der Name des Projekts (der Website)" in german and "deine E-Mail-Adresse" in german
    english = _page(web.client("admin"), pages["edit"])
    for meaning in VARIABLES.values():  # the same English as postroom's
        assert str(escape(meaning)) in english, meaning
