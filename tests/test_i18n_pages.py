"""The UI in the reader's language (issue 18): a user who chose German reads Tickets, Nicht
zugeordnet, the protocol and an entry in German while an English colleague reads the same
project in English (acceptance 3, first half); before login the browser's Accept-Language
decides; dates are Babel's in the reader's locale (acceptance 5); the language is chosen in
the profile, in Settings (owners) and first on the setup page; migration 0020.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from domain import entries as domain_entries
from domain.languages import UNKNOWN_LANGUAGE, effective_language, set_user_language
from domain.time_zones import set_user_time_zone
from domain.tokens import setup_token
from postroom.config import load_settings
from storage.db import _runner, native_sql, open_database
from storage.models import Account, User
from tests.filing import receive
from tests.mail import message
from tests.web import csrf_token, post

BERLIN_LATE = dt.datetime(2026, 12, 4, 23, 30)  # 2026-12-05 00:30 in Berlin (CET, UTC+1)

# What each page shows in each language (the seed's words where it has them).
GERMAN = {
    "/": ["Tickets", "Nicht zugeordnet", "Abmelden", "Offene Einträge aller Projekte"],
    "/unassigned": [
        "Nicht zugeordnet",
        "Deine Eingangsadresse",
        "Als Spam verwerfen",
        "Warum sie hier ist: unbekannter Absender fremd@elsewhere.test",
    ],
    "protocol": ["Protokoll", "+ Neu", "Nachricht an Kunden", "Filter anwenden", "Kundenadressen:"],
    "entry": ["Wie sie hierher kam", "Aktivität", "Betreff", "Nachricht vom Kunden (Anruf"],
    "new": ["Neuer Eintrag", "Interne Notiz", "Nachricht vom Kunden", "Zum Protokoll hinzufügen"],
    "files": ["Dateien", "Noch keine Dateien"],
    "/spam": ["Kein Spam.", "Sperrregeln stehen unter"],
}
ENGLISH = {
    "/": ["Tickets", "Unassigned", "Log out", "Open entries of all projects"],
    "/unassigned": [
        "Unassigned",
        "Your inbox address",
        "Discard as spam",
        "Why it is here: unknown sender fremd@elsewhere.test",
    ],
    "protocol": [
        "Protocol",
        "+ New",
        "Message to customer",
        "Apply filters",
        "Customer addresses:",
    ],
    "entry": ["How it got here", "Activity", "From customer (call, SMS, talk)"],
    "new": ["New entry", "Internal note", "Message from the customer", "Add to protocol"],
    "files": ["Files", "No files yet"],
    "/spam": ["No spam.", "Block rules are listed under"],
}


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


@pytest.fixture
def bakery_pages(web, bakery):
    """The bakery's protocol with a call and one unassigned mail; the member reads German."""
    call = domain_entries.add_manual_entry(
        bakery, web.users["owner"], kind="call", text="Anna rief an", occurred_at=BERLIN_LATE
    )
    receive(web.account.id, message("Angebot", sender="Fremd <fremd@elsewhere.test>"))
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    return {
        "/": "/",
        "/unassigned": "/unassigned",
        "protocol": f"/projects/{bakery.id}/protocol",
        "entry": f"/entries/{call.id}",
        "new": f"/projects/{bakery.id}/entries/new",
        "files": f"/projects/{bakery.id}/files",
        "/spam": "/spam",
    }


def test_a_german_member_reads_german_while_an_english_colleague_reads_english(web, bakery_pages):
    german, english = web.client("member"), web.client("admin")
    for name, path in bakery_pages.items():
        page = _page(german, path)
        assert '<html lang="de">' in page
        for words in GERMAN[name]:
            assert words in page, (path, words)
        for words in ("Log out", "Unassigned", "Open entries", "Discard as spam", "Activity"):
            assert words not in page, (path, words)
        page = _page(english, path)
        assert '<html lang="en">' in page
        for words in ENGLISH[name]:
            assert words in page, (path, words)
        assert "Abmelden" not in page and "Nicht zugeordnet" not in page, path


def test_a_flash_message_is_in_the_actors_language(web, bakery_pages):
    set_user_language(User.get_by_id(web.users["owner"].id), "de")
    german = web.client("owner")
    [entry_id] = re.findall(
        r'<article class="unassigned" id="entry-(\d+)"', _page(german, "/unassigned")
    )
    response = post(german, f"/unassigned/{entry_id}/delete", token_from="/unassigned")
    assert response.status_code == 302
    assert "„Angebot“ gelöscht." in _page(german, response.location)


def test_the_date_is_german_for_a_german_user_in_berlin(web, bakery_pages):
    """Acceptance 5: 2026-12-04T23:30Z shows as 05.12.2026, 00:30 for a German user in Berlin;
    an English user in Berlin keeps the format every page had."""
    member = User.get_by_id(web.users["member"].id)
    set_user_time_zone(member, "Europe/Berlin")
    set_user_time_zone(User.get_by_id(web.users["admin"].id), "Europe/Berlin")
    for path in (bakery_pages["entry"], bakery_pages["protocol"]):
        german = _page(web.client("member"), path)
        assert ">05.12.2026, 00:30</time>" in german, path
        assert 'datetime="2026-12-04T23:30:00Z"' in german
        english = _page(web.client("admin"), path)
        assert ">2026-12-05 00:30</time>" in english, path


def test_before_login_the_browsers_accept_language_decides(web):
    client = web.app.test_client()
    german = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    text = german.get_data(as_text=True)
    assert '<html lang="de">' in text and "Anmelden" in text and "Passwort" in text
    assert "Log in" not in text and "Password" not in text
    assert "Log in" in client.get("/login").get_data(as_text=True)  # no header: English
    french = client.get("/login", headers={"Accept-Language": "fr-FR, fr"})
    assert '<html lang="en">' in french.get_data(as_text=True)
    wrong = client.post(
        "/login",
        data={"email": "nobody@x.test", "password": "x", "csrf_token": csrf_token(client)},
        headers={"Accept-Language": "de"},
    )
    assert "E-Mail-Adresse oder Passwort ist falsch." in wrong.get_data(as_text=True)


def test_the_users_language_beats_the_accounts_and_the_browsers(web):
    member = User.get_by_id(web.users["member"].id)
    assert effective_language(member) == "en"  # the account's default
    client = web.client("member")
    assert "Log out" in _page(client, "/")  # signed in: the browser no longer decides
    assert "Log out" in client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    saved = post(client, "/profile/language", {"language": "de"}, token_from="/profile")
    assert saved.status_code == 302 and saved.location.endswith("#language")
    assert User.get_by_id(member.id).language == "de"
    assert "Deine Sprache ist gespeichert." in _page(client, saved.location)
    refused = post(client, "/profile/language", {"language": "xx"}, token_from="/profile")
    assert refused.status_code == 400
    assert "Wähle eine Sprache aus der Liste." in refused.get_data(as_text=True)
    assert User.get_by_id(member.id).language == "de"
    back = post(client, "/profile/language", {"language": ""}, token_from="/profile")
    assert back.status_code == 302 and User.get_by_id(member.id).language is None
    assert "Log out" in _page(client, "/")


def test_owners_set_the_accounts_language_in_settings_others_cannot(web):
    owner, admin = web.client("owner"), web.client("admin")
    assert (
        post(admin, "/settings/language", {"language": "de"}, token_from="/settings").status_code
        == 403
    )
    saved = post(owner, "/settings/language", {"language": "de"}, token_from="/settings")
    assert saved.status_code == 302
    assert Account.get_by_id(web.account.id).language == "de"
    # every member without a language of their own now reads German
    assert "Abmelden" in _page(admin, "/")
    assert "Die Sprache der Agentur ist Deutsch" in _page(admin, "/settings")
    set_user_language(User.get_by_id(web.users["member"].id), "en")
    assert "Log out" in _page(web.client("member"), "/")
    refused = post(owner, "/settings/language", {"language": "klingon"}, token_from="/settings")
    assert refused.status_code == 400 and Account.get_by_id(web.account.id).language == "de"


def test_setup_offers_the_language_first_from_the_browser_and_the_account_takes_it(
    storage_db, tmp_path
):
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text("")
    client = create_app(load_settings(config), testing=True).test_client()
    page = f"/setup?token={setup_token()}"
    german = client.get(page, headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert "Willkommen bei postroom" in german and '<html lang="de">' in german
    form = german[german.index("<form") :]
    assert form.index('name="language"') < form.index('name="agency"')  # offered first
    assert '<option value="de" lang="de" selected>Deutsch</option>' in german
    english = client.get(page).get_data(as_text=True)
    assert "Welcome to postroom" in english
    assert '<option value="en" lang="en" selected>English</option>' in english
    # a refusal re-renders in the language chosen on the page
    owner = {"agency": "Pixel", "email": "owner@pixel.test", "language": "de"}
    short = client.post(
        page, data={**owner, "password": "short", "csrf_token": csrf_token(client, page)}
    )
    assert '<html lang="de">' in short.get_data(as_text=True)
    done = client.post(
        page,
        data={**owner, "password": "long enough password", "csrf_token": csrf_token(client, page)},
    )
    assert done.status_code == 302
    assert Account.get().language == "de" and User.get().language is None
    assert "Abmelden" in client.get("/").get_data(as_text=True)


def test_migration_0020_gives_existing_accounts_english_and_users_no_override(db_url):
    db = open_database(db_url)
    runner = _runner(db)
    runner.up("0018_open_defaults")
    db.execute_sql(
        native_sql(
            "INSERT INTO account (name, inbox_token, created_at, signature) VALUES (?, ?, ?, ?)"
        ),
        ["Old agency", "tok", dt.datetime(2026, 1, 5, 9, 30), ""],
    )
    assert runner.up("0020_languages") == ["0020_languages"]
    assert db.execute_sql("SELECT language FROM account").fetchall() == [("en",)]
    assert "language" in {c.name for c in db.get_columns("user")}
    runner.up("0020_languages")  # nothing left to do
    db.close()


def test_language_codes_are_checked():
    from domain.errors import Invalid
    from domain.languages import check_language

    assert check_language(" DE ") == "de"
    with pytest.raises(Invalid) as refused:
        check_language("fr")
    assert str(refused.value) == UNKNOWN_LANGUAGE


def test_the_routing_reason_in_english_is_explains_own_words(web):
    """The pages' words for a routing decision (admin_ui.route_words) are, in English, the
    words the API and the CLI answer with (domain.routing.explain), for every rule."""
    from admin_ui.route_words import route_words
    from domain.routing import Decision, Rule, explain

    with web.app.test_request_context("/"):
        for rule in Rule:
            decision = Decision(rule, "anna@bakery.test", None, (1, 2))
            for listed in (False, True):
                assert route_words(decision, unassigned_list=listed) == explain(
                    decision, unassigned_list=listed
                ), rule


def test_a_refusal_from_the_domain_is_shown_in_the_readers_language(web):
    """Domain code marks its messages with N_; the profile shows them translated."""
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    client = web.client("member")
    refused = post(client, "/profile/time-zone", {"time_zone": "Moon/Base"}, token_from="/profile")
    assert refused.status_code == 400
    assert "Wähle eine Zeitzone aus der Liste" in refused.get_data(as_text=True)
    wrong = post(
        client,
        "/profile/password",
        {
            "current_password": "not it at all",
            "new_password": "another long password",
            "new_password_repeat": "another long password",
        },
        token_from="/profile",
    )
    assert wrong.status_code == 400
    assert "das aktuelle Passwort ist falsch" in wrong.get_data(as_text=True)
