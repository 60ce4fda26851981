"""Refusals the domain fills in with values (a limit, an address, a project) reach a German
reader in German and an English reader in the same English as before (issue 18): the domain
keeps the message id and the values (domain.translatable.Message), admin_ui translates."""

from __future__ import annotations

from domain import accounts
from domain.languages import set_user_language
from domain.translatable import Message
from storage.models import User
from tests.web import post

BAD_SMTP = {
    "host": "not a host!",
    "port": "99999",
    "security": "carrier pigeon",
    "username": "x" * 300,
    "password": "",
    "from_address": "nobody",
    "from_name": "y" * 300,
}


def _german_owner_english_admin(web):
    set_user_language(User.get_by_id(web.users["owner"].id), "de")
    return web.client("owner"), web.client("admin")


def test_a_message_is_its_english_text_and_keeps_its_id_and_values():
    message = Message("at most %(limit)d characters", limit=5)
    assert message == "at most 5 characters"
    assert (message.message_id, message.values) == ("at most %(limit)d characters", {"limit": 5})


def test_mail_server_refusals_in_the_readers_language(web):
    german, english = _german_owner_english_admin(web)
    page = post(german, "/settings/smtp", BAD_SMTP, token_from="/settings")
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    for words in (
        "Der Server muss ein Hostname oder eine IP-Adresse sein.",
        "Der Port muss eine Zahl von 1 bis 65535 sein.",
        "Wähle, wie die Verbindung gesichert wird.",
        "Die Absenderadresse muss eine E-Mail-Adresse sein.",
        "Der Benutzername ist zu lang.",
        "Der Absendername ist zu lang.",
    ):
        assert words in text, words
    assert "The port must be a number" not in text
    page = post(english, "/settings/smtp", BAD_SMTP, token_from="/settings")
    text = page.get_data(as_text=True)
    for words in (
        "The server must be a host name or an IP address.",
        "The port must be a number from 1 to 65535.",
        "The user name is too long.",
        "The sender name is too long.",
    ):
        assert words in text, words


def test_a_too_long_signature_is_refused_in_the_readers_language(web):
    german, english = _german_owner_english_admin(web)
    long = {"signature": "s" * (accounts.MAX_SIGNATURE_CHARS + 1)}
    page = post(german, "/settings/signature", long, token_from="/settings")
    assert page.status_code == 400
    assert "Die Signatur darf höchstens 5000 Zeichen haben." in page.get_data(as_text=True)
    page = post(english, "/settings/signature", long, token_from="/settings")
    assert "The signature may have at most 5000 characters." in page.get_data(as_text=True)


def _new_project(client, addresses: str):
    form = {"name": "Shop", "domain": "", "status": "lead", "contact_name": ""}
    return post(
        client, "/projects/new", {**form, "addresses": addresses}, token_from="/projects/new"
    )


def test_customer_address_refusals_in_the_readers_language(web, bakery):
    german, english = _german_owner_english_admin(web)
    page = _new_project(german, "anna@bakery.example\nnobody")
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "anna@bakery.example ist schon eine Kundenadresse von Bakery Miller" in text
    assert "keine gültige E-Mail-Adresse: &#39;nobody&#39;" in text
    page = _new_project(english, "anna@bakery.example\nnobody")
    text = page.get_data(as_text=True)
    assert "anna@bakery.example is already a customer address of Bakery Miller" in text
    assert "not a valid email address: &#39;nobody&#39;" in text

    path = f"/projects/{bakery.id}/addresses"
    form = {"address": "anna@bakery.example", "kind": "customer"}
    page = post(german, path, form, token_from=f"/projects/{bakery.id}/edit")
    assert page.status_code == 400
    assert "ist schon eine Kundenadresse dieses Projekts" in page.get_data(as_text=True)
    page = post(english, path, form, token_from=f"/projects/{bakery.id}/edit")
    assert "is already a customer address of this project" in page.get_data(as_text=True)


def test_team_refusals_in_the_readers_language(web):
    german, english = _german_owner_english_admin(web)
    cases = [
        ({"email": "member@agency.test"}, "member@agency.test ist schon Mitglied dieser Agentur"),
        ({"email": "x@agency.test", "password": "short"}, "braucht mindestens 10 Zeichen"),
        ({"email": "y@agency.test", "role": "boss"}, "die Rolle muss eine von owner, admin"),
    ]
    for form, words in cases:
        sent = {"name": "", "role": "member", "password": "a good long password", **form}
        page = post(german, "/team/members", sent, token_from="/team")
        assert page.status_code == 400
        assert words in page.get_data(as_text=True), words
    page = post(
        english,
        "/team/members",
        {"email": "member@agency.test", "name": "", "role": "member", "password": "long enough 1"},
        token_from="/team",
    )
    assert "member@agency.test is already a member of this account" in page.get_data(as_text=True)
