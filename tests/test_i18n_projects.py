"""The project pages in the reader's language (issue 18): the list, New project with its field
errors, a project's Edit page with its customer addresses and its reply address. A German
reader sees German, an English colleague the same pages in English."""

from __future__ import annotations

from domain.languages import set_user_language
from storage.models import User
from tests.web import post

GERMAN = {
    "list": [
        "Projekte",
        "Neues Projekt",
        "Offene Einträge",
        "Projekt nach Name oder Domain suchen",
    ],
    "new": ["Neues Projekt", "Ansprechperson", "Kundenadressen, eine pro Zeile", "Projekt anlegen"],
    "edit": [
        "Kundenadressen",
        "Adresse hinzufügen",
        "<td>Kunde</td>",
        "anna@bakery.example aus diesem Projekt entfernen?",
        "Antwortadresse ersetzen",
        "Die jetzige Adresse nimmt noch",
        "Eine Statusänderung wird als Systemeintrag ins Protokoll geschrieben.",
    ],
}
ENGLISH = {
    "list": ["Projects", "New project", "Open entries", "Find a project by name or domain"],
    "new": ["New project", "Contact person", "Customer addresses, one per line", "Create project"],
    "edit": [
        "Customer addresses",
        "Add address",
        "<td>customer</td>",
        "Remove anna@bakery.example from this project?",
        "Replace reply address",
        "The current address keeps taking mail for",
        "A status change is written to the protocol as a system entry.",
    ],
}


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_the_project_pages_in_german_and_in_english(web, bakery):
    set_user_language(User.get_by_id(web.users["admin"].id), "de")
    german, english = web.client("admin"), web.client("owner")
    paths = {"list": "/projects", "new": "/projects/new", "edit": f"/projects/{bakery.id}/edit"}
    for name, path in paths.items():
        page = _page(german, path)
        assert '<html lang="de">' in page
        for words in GERMAN[name]:
            assert words in page, (path, words)
        for words in ENGLISH[name]:
            assert words not in page, (path, words)
        page = _page(english, path)
        for words in ENGLISH[name]:
            assert words in page, (path, words)
    status = _page(german, "/projects")
    assert '<td class="status">in Arbeit</td>' in status  # status_word, the seed's word


def test_a_refused_new_project_and_a_notice_in_german(web, bakery):
    set_user_language(User.get_by_id(web.users["admin"].id), "de")
    german = web.client("admin")
    refused = post(
        german,
        "/projects/new",
        {"name": "", "domain": "", "status": "lead", "contact_name": "", "addresses": ""},
        token_from="/projects/new",
    )
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "Nichts wurde gespeichert." in text and "Gib dem Projekt einen Namen." in text
    saved = _page(german, f"/projects/{bakery.id}/edit?notice=saved")
    assert "Projekt gespeichert." in saved
    replaced = _page(german, f"/projects/{bakery.id}/edit?notice=reply-replaced")
    assert "Die Antwortadresse wurde ersetzt." in replaced
    english = _page(web.client("owner"), f"/projects/{bakery.id}/edit?notice=reply-replaced")
    assert "The reply address was replaced." in english
