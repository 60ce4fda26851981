"""The Tickets page: every open entry filed under a project, newest first, with the count."""

from __future__ import annotations

import datetime as dt
import re

from domain import entries as domain_entries
from domain import projects as domain_projects
from storage.activity import activity_of_entry
from storage.models import Entry
from storage.timeline import open_ticket_count
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import csrf_token, post


def _rows(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'<li id="entry-(\d+)" class="entry ', page)]


def test_tickets_list_open_filed_entries_and_leave_out_done_spam_and_unassigned(web):
    bakery = domain_projects.create_project(
        web.account.id, "Bakery Sommer", customer_addresses=["anna@bakery.test"]
    )
    member = web.users["member"]
    filed = receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    note = domain_entries.add_manual_entry(
        bakery,
        member,
        kind="note",
        needs_action=True,
        text="Call her back",
        occurred_at=dt.datetime(2026, 11, 26, 12, 0),
    )
    finished = domain_entries.add_manual_entry(
        bakery, member, kind="note", needs_action=True, text="Finished already"
    )
    domain_entries.set_done(finished, member.id, True)
    unassigned = receive(web.account.id, message("Who am I", sender="x@unknown.test"))
    spam = receive(web.account.id, message("Pills", sender="spam@junk.test"))
    domain_entries.discard_spam(spam, member.id)

    page = web.client("member").get("/").get_data(as_text=True)
    assert _rows(page) == [note.id, filed.id]  # newest first (the mail: 09:00 UTC)
    assert unassigned.id not in _rows(page) and finished.id not in _rows(page)
    assert 'id="open-count">2<' in page
    assert f'href="/projects/{bakery.id}/protocol?entry={filed.id}#entry-{filed.id}"' in page
    assert "Bakery Sommer" in page and "Opening hours" in page


def test_older_tickets_are_one_click_away(web, monkeypatch):
    import admin_ui.views.pages as pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    project = domain_projects.create_project(web.account.id, "Bakery")
    start = dt.datetime(2026, 11, 1, 9, 0)
    made = []
    for hour in range(5):
        when = start + dt.timedelta(hours=hour)
        made.append(
            domain_entries.add_manual_entry(
                project, web.users["member"], kind="call", text=f"call {hour}", occurred_at=when
            )
        )
    client = web.client("member")
    seen, path = [], "/"
    while path:
        page = client.get(path).get_data(as_text=True)
        seen += _rows(page)
        older = re.search(r'<a href="([^"]+)">Older', page)
        path = older.group(1).replace("&amp;", "&") if older else None
    assert seen == [entry.id for entry in reversed(made)]


def test_ticking_done_without_javascript_goes_back_to_the_list(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    entry = domain_entries.add_manual_entry(
        project, web.users["owner"], kind="note", needs_action=True, text="Check DNS"
    )
    client = web.client("member")
    response = client.post(
        f"/entries/{entry.id}/done",
        data={"done": "1", "csrf_token": _token(client)},
        headers={"Referer": "http://localhost/?before=99"},
    )
    assert response.status_code == 302
    assert response.location == f"/?before=99#entry-{entry.id}"
    assert Entry.get_by_id(entry.id).status == "done"
    assert 'id="open-count">0<' in client.get("/").get_data(as_text=True)


def test_ticking_done_from_app_js_answers_with_the_new_count(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    first = domain_entries.add_manual_entry(
        project, web.users["owner"], kind="note", needs_action=True, text="One"
    )
    domain_entries.add_manual_entry(
        project, web.users["owner"], kind="note", needs_action=True, text="Two"
    )
    client = web.client("member")
    response = client.post(
        f"/entries/{first.id}/done",
        data={"done": "1", "csrf_token": _token(client)},
        headers={"Accept": "application/json"},
    )
    assert response.get_json() == {
        "id": first.id,
        "done": True,
        "open_count": 1,
        "open_words": "1 open ticket.",  # what app.js says in the live region
    }
    response = client.post(  # an unticked checkbox sends no field: open again
        f"/entries/{first.id}/done",
        data={"csrf_token": _token(client)},
        headers={"Accept": "application/json"},
    )
    assert response.get_json()["open_count"] == 2
    assert response.get_json()["open_words"] == "2 open tickets."
    activity = [a.action for a in activity_of_entry(first.id)]
    assert activity == ["done", "reopened"]


def test_done_redirects_never_leave_the_site(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    entry = domain_entries.add_manual_entry(
        project, web.users["owner"], kind="note", needs_action=True, text="One"
    )
    client = web.client("member")
    response = client.post(
        f"/entries/{entry.id}/done",
        data={"done": "1", "csrf_token": _token(client)},
        headers={"Referer": "https://evil.test/phish"},
    )
    assert response.location == f"/entries/{entry.id}"


def test_read_only_users_see_tickets_but_cannot_tick_them(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    entry = domain_entries.add_manual_entry(
        project, web.users["owner"], kind="note", needs_action=True, text="One"
    )
    client = web.client("read-only")
    page = client.get("/").get_data(as_text=True)
    assert f'id="entry-{entry.id}"' in page
    assert re.search(r'<input type="checkbox" disabled>', page)  # the state, shown
    assert f'action="/entries/{entry.id}/done"' not in page  # no form they cannot send
    assert post(client, f"/entries/{entry.id}/done", {"done": "1"}).status_code == 403
    assert Entry.get_by_id(entry.id).status == "open"


def _token(client) -> str:
    return csrf_token(client, "/")


def test_the_counts_stop_at_a_thousand_and_show_999_plus(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    when = dt.datetime(2026, 11, 1)
    rows = [
        {
            "account": web.account.id,
            "project": project.id if n < 1000 else None,
            "kind": "inbound",
            "status": "open",
            "occurred_at": when,
            "subject": f"Mail {n}",
        }
        for n in range(1999)
    ]
    Entry.insert_many(rows).execute()
    page = web.client("member").get("/").get_data(as_text=True)
    assert 'id="open-count">999+<' in page and "data-open-count>999+<" in page
    assert 'id="unassigned-count">999<' in page  # 999 unassigned: still counted exactly
    assert open_ticket_count(web.account.id, limit=None) == 1000
