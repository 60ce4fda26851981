"""Notification mail in the recipient's language (issue 18, acceptance 4): a German user's mail
is German, an English colleague's English, about the same news; dates in each one's locale and
time zone. The real worker jobs send through a real SMTP sink; the German words come from the
compiled catalog the UI uses."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.languages import set_account_language, set_user_language
from domain.time_zones import set_user_time_zone
from postroom.jobs import digest, notify
from storage import notifications as store
from storage.models import Notification
from tests.mail import message
from tests.test_notify_outbound import bakery_followed_by_member, config, sink_server
from tests.test_ui_unassigned import receive

AT = dt.datetime(2026, 12, 4, 23, 30)  # stored UTC: 05.12.2026, 00:30 in Europe/Berlin


@pytest.fixture
def default_sink():
    """The [outbound] server: a real SMTP sink."""
    with sink_server() as keeper:
        yield keeper


def _body(mail) -> str:
    return mail.get_body(("plain",)).get_content().replace("\r\n", "\n")


def _customer_mail_to_both(web, settings):
    bakery = bakery_followed_by_member(web)
    store.set_following(bakery.id, web.users["admin"].id, True)
    receive(web.account.id, message("Opening hours", sender="Anna Miller <anna@bakery.test>"))
    notify.process_events(settings)
    Notification.update(created_at=AT).execute()
    notify.send_immediate(settings)


def test_a_german_user_gets_german_mail_and_an_english_colleague_english(
    web, tmp_path, default_sink
):
    settings = config(tmp_path, default_sink)
    set_user_language(web.users["member"], "de")
    set_user_time_zone(web.users["member"], "Europe/Berlin")
    set_user_language(web.users["admin"], "en")
    _customer_mail_to_both(web, settings)

    [german] = default_sink.to("member@agency.test")
    [english] = default_sink.to("admin@agency.test")
    assert german["Subject"] == "Bakery Miller: neue E-Mail von Anna Miller"
    assert english["Subject"] == "Bakery Miller: new mail from Anna Miller"
    text = _body(german)
    assert text.startswith("Hallo Member,\n\nEs gibt Neuigkeiten in postroom:\n")
    assert "* E-Mail von Anna Miller in Bakery Miller: Opening hours" in text
    assert "  05.12.2026, 00:30 · " in text
    assert "postroom hat diese E-Mail automatisch gesendet; Antworten werden nicht gelesen." in text
    for english_words in ("Hello", "There is news", "Mail from", "replies are not read"):
        assert english_words not in text
    text = _body(english)
    assert text.startswith("Hello Admin,\n\nThere is news in postroom:\n")
    assert "* Mail from Anna Miller in Bakery Miller: Opening hours" in text
    assert "  2026-12-04 23:30 · " in text  # the account's zone: UTC
    assert "postroom sent this automatically; replies are not read." in text


def test_a_user_without_a_language_of_their_own_gets_the_accounts(web, tmp_path, default_sink):
    settings = config(tmp_path, default_sink)
    set_account_language(web.account.id, "de")
    set_user_language(web.users["admin"], "en")  # their own choice wins over the account's
    _customer_mail_to_both(web, settings)

    [german] = default_sink.to("member@agency.test")
    [english] = default_sink.to("admin@agency.test")
    assert german["Subject"] == "Bakery Miller: neue E-Mail von Anna Miller"
    assert "  04.12.2026, 23:30 · " in _body(german)  # the account's zone: UTC
    assert english["Subject"] == "Bakery Miller: new mail from Anna Miller"


def test_the_daily_digest_speaks_each_readers_language(web, tmp_path, default_sink):
    settings = config(tmp_path, default_sink)
    set_user_language(web.users["member"], "de")
    receive(web.account.id, message("Who is this?", sender="stranger@example.org"))
    notify.process_events(settings)
    digest.send_digests(settings)  # unassigned mail is a digest item by default

    [german] = default_sink.to("member@agency.test")
    [english] = default_sink.to("owner@agency.test")
    assert german["Subject"] == (
        "Deine tägliche postroom-Zusammenfassung: 1 Neuigkeit in Nicht zugeordnet"
    )
    text = _body(german)
    assert "Das ist in postroom seit deiner letzten Zusammenfassung passiert:" in text
    assert "* Nicht zugeordnete E-Mail von stranger@example.org: Who is this?" in text
    assert english["Subject"] == "Your daily postroom digest: 1 update in Unassigned"
    assert "* Unassigned mail from stranger@example.org: Who is this?" in _body(english)


def test_the_bell_shows_each_notification_in_the_readers_language(web, tmp_path, default_sink):
    settings = config(tmp_path, default_sink)
    set_user_language(web.users["member"], "de")
    bakery = bakery_followed_by_member(web)
    store.set_following(bakery.id, web.users["admin"].id, True)
    receive(web.account.id, message("Opening hours", sender="Anna Miller <anna@bakery.test>"))
    notify.process_events(settings)

    german = web.client("member").get("/notifications").get_data(as_text=True)
    english = web.client("admin").get("/notifications").get_data(as_text=True)
    assert "E-Mail von Anna Miller in Bakery Miller: Opening hours" in german
    assert "Mail from Anna Miller in Bakery Miller: Opening hours" not in german
    assert "Mail from Anna Miller in Bakery Miller: Opening hours" in english
    # and the page around them too
    assert "Alle als gelesen markieren" in german and "Mark all read" not in german
    assert "Öffnen und als gelesen markieren" in german
    assert "Mark all read" in english
    # what is stored stays the English line (the mail and the bell say it anew)
    assert {n.text for n in Notification.select()} == {
        "Mail from Anna Miller in Bakery Miller: Opening hours"
    }


def test_a_status_change_subject_names_the_status_in_the_readers_words(web, tmp_path, default_sink):
    from domain import projects as domain_projects
    from postroom.mail_language import words_for
    from postroom.notify_subjects import subject_of

    settings = config(tmp_path, default_sink)
    set_user_language(web.users["member"], "de")
    bakery = bakery_followed_by_member(web)
    store.set_following(bakery.id, web.users["admin"].id, True)
    domain_projects.update_project(bakery, web.users["owner"].id, status="live")
    notify.process_events(settings)

    member, admin = web.users["member"], web.users["admin"]
    [german] = Notification.select().where(Notification.user == member.id)
    [english] = Notification.select().where(Notification.user == admin.id)
    assert (
        subject_of([german], words=words_for(member)) == "Bakery Miller: Status geändert auf online"
    )
    assert subject_of([english], words=words_for(admin)) == "Bakery Miller: status changed to live"
