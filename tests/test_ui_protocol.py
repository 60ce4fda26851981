"""A project's protocol in the admin UI: search, date range, filters and paging."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from domain.entries import add_manual_entry, set_done
from domain.projects import add_customer_address, create_project, update_project
from domain.users import create_user
from storage.accounts import create_account
from storage.models import Entry
from tests.test_ui_projects import pdf, receive

ENTRY_ID = re.compile(r'id="entry-(\d+)"')
NEWEST_FIRST = ["system", "call", "note", "external_mail", "partner_mail", "customer_mail"]
OLDER = re.compile(r'<a href="([^"]+)" rel="next">Older')


def row_classes(page: str, entry_id: int) -> list[str]:
    """The classes of the entry's row (<li id="entry-…" class="…">, attributes in any order)."""
    tag = re.search(rf'<li\b[^>]*\bid="entry-{entry_id}"[^>]*>', page)
    assert tag, f"entry {entry_id} is not shown"
    return re.search(r'\bclass="([^"]*)"', tag.group(0)).group(1).split()


def shown(client, path: str) -> list[int]:
    response = client.get(path)
    assert response.status_code == 200
    return [int(i) for i in ENTRY_ID.findall(response.get_data(as_text=True))]


@pytest.fixture
def timeline(web):
    """A protocol with one entry of each kind and category, one done, one with a file."""
    project = create_project(web.account.id, "Bakery", status="lead")
    add_customer_address(project, "anna@bakery.test")
    add_customer_address(project, "max@printshop.test", kind="partner")
    member = web.users["member"]
    entries = {
        "customer_mail": receive(
            project,
            "Invoice for the logo",
            text="Please find the invoice",
            when=dt.datetime(2026, 11, 1, 9),
            attachments=(pdf("inv.pdf"),),
        ),
        "partner_mail": receive(
            project,
            "Menu draft",
            sender="max@printshop.test",
            text="The menu draft",
            when=dt.datetime(2026, 11, 5, 9),
        ),
        "external_mail": receive(
            project,
            "Newsletter",
            sender="news@elsewhere.test",
            text="Our offers",
            when=dt.datetime(2026, 11, 10, 9),
        ),
        "note": add_manual_entry(
            project,
            member,
            kind="note",
            needs_action=True,
            text="Call back about the invoice",
            occurred_at=dt.datetime(2026, 11, 12, 23, 30),
        ),
        "call": add_manual_entry(
            project,
            member,
            kind="call",
            text="Anna wants a bigger logo",
            subject="Phone call",
            occurred_at=dt.datetime(2026, 11, 15, 9),
        ),
    }
    update_project(project, member.id, status="review")
    entries["system"] = Entry.get((Entry.project == project.id) & (Entry.kind == "system"))
    # open, as a system entry of an account that starts them open (domain.open_rules)
    Entry.update(occurred_at=dt.datetime(2026, 11, 20, 9), status="open", done_at=None).where(
        Entry.id == entries["system"].id
    ).execute()
    set_done(entries["customer_mail"], member.id, True)
    return project, {name: entry.id for name, entry in entries.items()}


def test_the_protocol_shows_every_entry_newest_first_with_open_ones_highlighted(web, timeline):
    project, ids = timeline
    client = web.client("read-only")
    page = client.get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert [int(i) for i in ENTRY_ID.findall(page)] == [ids[name] for name in NEWEST_FIRST]
    assert "open" not in row_classes(page, ids["customer_mail"])
    assert "open" in row_classes(page, ids["note"])
    assert 'rel="next"' not in page


# filter form or search box -> the entries expected, newest first
NARROWED = [
    ("kind=note", ["note"]),
    ("kind=inbound&kind=call", ["call", "external_mail", "partner_mail", "customer_mail"]),
    ("category=partner", ["partner_mail"]),
    ("category=internal", ["system", "note"]),
    ("category=customer&category=external", ["call", "external_mail", "customer_mail"]),
    ("status=done", ["customer_mail"]),
    ("status=open&kind=inbound", ["external_mail", "partner_mail"]),
    ("attachment=1", ["customer_mail"]),
    ("q=invoice", ["note", "customer_mail"]),
    ("q=invoice+kind:inbound", ["customer_mail"]),
    ('q="bigger+logo"', ["call"]),
    ("q=from:printshop", ["partner_mail"]),
    ("from_date=2026-11-05&to_date=2026-11-12", ["note", "external_mail", "partner_mail"]),
    ("from_date=2026-11-13", ["system", "call"]),
    ("to_date=2026-11-04", ["customer_mail"]),
    ("q=logo&to_date=2026-11-10", ["customer_mail"]),
    ("from_date=0001-01-01&to_date=9999-12-31", NEWEST_FIRST),
    ("kind=spam&category=all&status=maybe", NEWEST_FIRST),  # unknown choices are ignored
]


def test_search_dates_and_filters_narrow_the_protocol(web, timeline):
    project, ids = timeline
    client = web.client("member")
    for query, expected in NARROWED:
        got = shown(client, f"/projects/{project.id}/protocol?{query}")
        assert got == [ids[name] for name in expected], query


def test_a_bad_search_shows_a_friendly_message(web, timeline):
    project, _ = timeline
    client = web.client("member")
    for query, message in [
        ("q=foo:bar", "unknown filter &#34;foo:&#34;"),
        ('q="unclosed', "a quote is not closed"),
        ("q=after:yesterday", "after: needs a date like 2026-11-27"),
        ("from_date=2026-13-45", "The start date is not a date"),
        ("to_date=soon", "The end date is not a date"),
    ]:
        response = client.get(f"/projects/{project.id}/protocol?{query}")
        assert response.status_code == 200, query
        page = response.get_data(as_text=True)
        assert message in page, query
        assert not ENTRY_ID.search(page), query


def walk(client, path: str) -> list[list[int]]:
    """Follow the Older links from path; return the entry ids of each page."""
    pages = []
    while path:
        page = client.get(path).get_data(as_text=True)
        pages.append([int(i) for i in ENTRY_ID.findall(page)])
        older = OLDER.search(page)
        path = html.unescape(older.group(1)) if older else None
        assert "OFFSET" not in (path or "").upper()
    return pages


def test_older_pages_walk_120_entries_exactly_once(web):
    project = create_project(web.account.id, "Bakery")
    member = web.users["member"]
    start = dt.datetime(2026, 1, 1, 12)
    for n in range(120):
        # pairs share a timestamp, so the order must break ties by id
        add_manual_entry(
            project,
            member,
            kind="note" if n % 2 else "call",
            needs_action=True,
            text=f"entry {n}",
            occurred_at=start + dt.timedelta(hours=n // 2),
        )
    expected = [
        e.id
        for e in Entry.select()
        .where(Entry.project == project.id)
        .order_by(Entry.occurred_at.desc(), Entry.id.desc())
    ]
    client = web.client("member")
    pages = walk(client, f"/projects/{project.id}/protocol")
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [i for p in pages for i in p] == expected
    # filters travel with the Older link, also the category filter, which search() lacks
    pages = walk(client, f"/projects/{project.id}/protocol?category=internal&q=entry")
    notes = [e.id for e in Entry.select().where(Entry.id.in_(expected), Entry.kind == "note")]
    assert [len(p) for p in pages] == [50, 10]
    assert [i for p in pages for i in p] == [i for i in expected if i in notes]


def test_a_page_key_of_another_account_starts_at_the_newest_entry(web):
    project = create_project(web.account.id, "Bakery")
    mine = add_manual_entry(
        project,
        web.users["member"],
        kind="note",
        needs_action=True,
        text="mine",
        occurred_at=dt.datetime(2026, 1, 1),
    )
    theirs_account = create_account("Other agency")
    theirs = create_project(theirs_account.id, "Theirs")
    owner = create_user(theirs_account.id, "owner@other.test", "owner", "long enough pw")
    old = add_manual_entry(
        theirs,
        owner,
        kind="note",
        needs_action=True,
        text="theirs",
        occurred_at=dt.datetime(2027, 1, 1),
    )
    client = web.client("member")
    for marker in (str(old.id), "x", "999999", "-1", "9" * 30):
        assert shown(client, f"/projects/{project.id}/protocol?before={marker}") == [mine.id]


def test_the_protocol_of_another_accounts_project_is_not_found(web):
    theirs = create_project(create_account("Other agency").id, "Theirs")
    assert web.client("owner").get(f"/projects/{theirs.id}/protocol").status_code == 404
    for missing in ("999999", "9" * 30):
        assert web.client("owner").get(f"/projects/{missing}/protocol").status_code == 404


def test_mail_rows_show_subject_and_a_snippet_only(web):
    project = create_project(web.account.id, "Bakery", customer_addresses=["anna@bakery.test"])
    long_text = "Hello team, " + "lorem ipsum " * 60 + "THE VERY END"
    entry = receive(project, "Long mail", text=long_text)
    page = web.client("member").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert "Long mail" in page and "Hello team, lorem ipsum" in page
    assert "THE VERY END" not in page
    assert f'href="/entries/{entry.id}"' in page
