"""Which new entries start open follows the seed and the account's settings (issue 17):
customer mail and calls open, a note only with "needs action", auto-replies and system
entries done, bounces open; owners change the defaults in Settings."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from domain import entries as domain_entries
from domain import open_rules
from domain import projects as domain_projects
from domain.errors import Forbidden
from postroom.outbound_send import send_due
from storage.models import Account, Activity, Entry
from storage.timeline import open_ticket_count
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import csrf_token, post

CUSTOMER = "anna@bakery.test"


@pytest.fixture
def bakery(web):
    return domain_projects.create_project(
        web.account.id, "Bakery Miller", customer_addresses=[CUSTOMER]
    )


def _status(entry: Entry) -> str:
    return Entry.get_by_id(entry.id).status


def _set(web, **values) -> None:
    open_rules.set_defaults(web.users["owner"], replace(open_rules.OpenDefaults(), **values))


def test_customer_mail_starts_open_an_auto_reply_done_a_bounce_open(web, bakery, corpus_dir):
    mail = receive(web.account.id, message("Opening hours", sender=CUSTOMER))
    auto = receive(
        web.account.id,
        message("Out of office", sender=CUSTOMER, headers={"Auto-Submitted": "auto-replied"}),
    )
    dsn = (corpus_dir / "flanker" / "bounce" / "mailbox-full.eml").read_bytes()
    bounce = receive(web.account.id, dsn)
    assert bounce.is_bounce and auto.auto_submitted and auto.project_id == bakery.id
    assert [_status(e) for e in (mail, auto, bounce)] == ["open", "done", "open"]
    stored = Entry.get_by_id(auto.id)
    assert stored.done_at is not None and stored.done_by_id is None  # done by nobody, at filing


def test_the_accounts_settings_change_what_mail_starts_as(web, bakery, corpus_dir):
    _set(web, auto_replies=True, bounces=False)
    auto = receive(
        web.account.id,
        message("Out of office", sender=CUSTOMER, headers={"Auto-Submitted": "auto-replied"}),
    )
    dsn = (corpus_dir / "flanker" / "bounce" / "mailbox-full.eml").read_bytes()
    bounce = receive(web.account.id, dsn)
    mail = receive(web.account.id, message("Still open", sender=CUSTOMER))
    assert [_status(e) for e in (auto, bounce, mail)] == ["open", "done", "open"]


def test_a_note_starts_open_only_when_it_needs_action_a_call_always(web, bakery):
    author = web.users["member"]
    before = open_ticket_count(web.account.id)
    plain = domain_entries.add_manual_entry(bakery, author, kind="note", text="FYI: DNS moved")
    ticked = domain_entries.add_manual_entry(
        bakery, author, kind="note", text="Call her back", needs_action=True
    )
    call = domain_entries.add_manual_entry(bakery, author, kind="call", text="She called")
    assert [_status(e) for e in (plain, ticked, call)] == ["done", "open", "open"]
    assert Entry.get_by_id(plain.id).done_by_id == author.id
    assert open_ticket_count(web.account.id) == before + 2
    _set(web, notes=True)  # the box's default: a note without an answer starts open now
    later = domain_entries.add_manual_entry(bakery, author, kind="note", text="Check the logo")
    unticked = domain_entries.add_manual_entry(
        bakery, author, kind="note", text="Just so you know", needs_action=False
    )
    assert [_status(e) for e in (later, unticked)] == ["open", "done"]


def test_system_entries_start_done_unless_the_account_says_open(web, bakery):
    owner = web.users["owner"]
    domain_projects.update_project(bakery, owner.id, status="in progress")
    change = Entry.get(Entry.kind == "system")
    assert change.status == "done" and change.done_at is not None
    _set(web, system=True)
    event = domain_entries.record_project_event(bakery, "change_request", "New logo wanted")
    assert _status(event) == "open"


def test_the_new_entry_form_has_a_needs_action_box_off_by_default(web, bakery):
    client = web.client("member")
    form_url = f"/projects/{bakery.id}/entries/new"
    page = client.get(form_url).get_data(as_text=True)
    box = re.search(r'<input type="checkbox" name="needs_action" value="1"[^>]*>', page).group(0)
    assert "checked" not in box and "Needs action" in page
    post(client, form_url, {"kind": "note", "text": "Moved the domain."}, token_from=form_url)
    post(
        client,
        form_url,
        {"kind": "note", "text": "Ask for the new logo.", "needs_action": "1"},
        token_from=form_url,
    )
    post(client, form_url, {"kind": "call", "text": "She called."}, token_from=form_url)
    statuses = {e.text: e.status for e in Entry.select().where(Entry.project == bakery.id)}
    assert statuses == {
        "Moved the domain.": "done",
        "Ask for the new logo.": "open",
        "She called.": "open",
    }
    _set(web, notes=True)
    page = client.get(form_url).get_data(as_text=True)
    box = re.search(r'<input type="checkbox" name="needs_action" value="1"[^>]*>', page).group(0)
    assert "checked" in box


def test_owners_change_the_defaults_in_settings_admins_see_them(web, bakery):
    owner = web.client("owner")
    page = owner.get("/settings").get_data(as_text=True)
    assert "What starts open" in page
    assert re.search(r'name="open_bounces" value="1" checked', page)
    assert not re.search(r'name="open_notes" value="1" checked', page)
    response = owner.post(
        "/settings/open-defaults",
        data={
            "open_notes": "1",
            "open_system": "1",
            "csrf_token": csrf_token(owner, "/settings"),
        },
    )
    assert response.status_code == 302 and response.location.endswith("#open-defaults")
    account = Account.get_by_id(web.account.id)
    assert (
        account.open_notes,
        account.open_auto_replies,
        account.open_system,
        account.open_bounces,
    ) == (True, False, True, False)
    assert "Saved." in owner.get(response.location).get_data(as_text=True)
    assert Activity.get(Activity.action == "open_defaults_changed").user_id == web.users["owner"].id
    note = domain_entries.add_manual_entry(bakery, web.users["member"], kind="note", text="x")
    assert _status(note) == "open"
    admin = web.client("admin")
    page = admin.get("/settings").get_data(as_text=True)
    assert "Internal notes: open" in page and 'name="open_notes"' not in page
    response = admin.post(
        "/settings/open-defaults", data={"csrf_token": csrf_token(admin, "/settings")}
    )
    assert response.status_code == 403
    member = web.client("member")
    response = member.post("/settings/open-defaults", data={"csrf_token": csrf_token(member)})
    assert response.status_code == 403
    assert Account.get_by_id(web.account.id).open_notes is True
    with pytest.raises(Forbidden):
        open_rules.set_defaults(web.users["admin"], open_rules.OpenDefaults())


def test_the_api_takes_needs_action_for_a_note(web, bakery):
    from tests.test_api import api_as

    member = api_as(web, "member")
    url = f"/projects/{bakery.id}/notes"
    plain = member.post(url, json={"kind": "note", "text": "FYI"}).get_json()
    ticked = member.post(url, json={"kind": "note", "text": "Do it", "needs_action": True})
    assert plain["status"] == "done" and ticked.get_json()["status"] == "open"


def test_the_note_that_a_mail_could_not_be_sent_is_a_system_entry_done_unless_set_open(web, bakery):
    """A send given up reopens the mail itself (with its badge); the system entry saying so
    follows the account's setting for system entries like every other one."""
    from tests.daemon import reserve_port
    from tests.test_outbound import queue, settings_of, smtp_sink, with_server

    port = reserve_port()
    settings = with_server(settings_of(web), port)
    for starts_open in (False, True):
        _set(web, system=starts_open)
        mail = queue(web, bakery, subject=f"Draft {starts_open}")
        with smtp_sink(port, refuse="550 5.1.1 no such user"):
            send_due(settings)
        assert _status(mail) == "open"  # the mail that failed: someone has to act
        note = Entry.get((Entry.kind == "system") & Entry.subject.contains(f"Draft {starts_open}"))
        assert "could not be sent" in note.subject
        assert _status(note) == ("open" if starts_open else "done")
