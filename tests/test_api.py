"""The REST API /api/v1: tokens, entries, projects, addresses, notes and events, JSON only."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest

from domain import entries as domain_entries
from domain.projects import create_project
from domain.tokens import create_api_token
from domain.users import create_user
from smtpd_ingest.importer import import_messages
from smtpd_ingest.parser_pool import InlineParser
from storage.accounts import create_account, inbox_local_part
from storage.intake import load_raw
from storage.lookup import RoutingFacts
from storage.models import Activity, BlockRule, Entry, Event, Project
from tests.mail import message

SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Api:
    """A test client speaking to /api/v1 with the token of one user."""

    client: object
    token: str | None

    def open(self, path: str, method: str = "GET", **kwargs):
        headers = kwargs.pop("headers", {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.open(path, "GET", **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.open(path, "POST", json=json, **kwargs)

    def patch(self, path: str, json=None, **kwargs):
        return self.open(path, "PATCH", json=json, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.open(path, "DELETE", **kwargs)


def _facts(web, sender: str) -> RoutingFacts:
    """What routing reads about mail from this sender (block rules, customer addresses)."""
    return RoutingFacts({(web.account.id, sender)}, set())


def api_as(web, role: str | None) -> Api:
    token = create_api_token(web.users[role]) if role else None
    return Api(web.app.test_client(), token)


def deliver(account, *mails: bytes) -> list[Entry]:
    """Send raw mails through the real pipeline (parse, route, store); return the new entries."""
    recipient = f"{inbox_local_part(account)}@in.example"
    known = {row.id for row in Entry.select(Entry.id)}
    named = ((f"mail-{number}", raw) for number, raw in enumerate(mails))
    for _ in import_messages(account.id, recipient, named, InlineParser()):
        pass
    return [e for e in Entry.select().order_by(Entry.id) if e.id not in known]


def dated(raw: bytes, day: int, hour: int = 10) -> bytes:
    """The mail with its Date header set to that day of November 2026 (UTC)."""
    date = f"Date: {dt.datetime(2026, 11, day, hour):%a, %d %b %Y %H:%M:%S} +0000"
    return re.sub(rb"Date: [^\r\n]+", date.encode(), raw, count=1)


@pytest.fixture
def member(web) -> Api:
    return api_as(web, "member")


def assert_error(response, status: int, text: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    assert text.lower() in body["error"].lower(), body["error"]
    return body


# --- tokens ----------------------------------------------------------------------------------
def test_requests_without_a_valid_token_get_401_in_json(web):
    anonymous = api_as(web, None)
    for headers in (
        {},
        {"Authorization": "Bearer prt_wrong"},
        {"Authorization": "Basic eDp5"},
        {"Authorization": "Bearer"},
    ):
        response = anonymous.get("/entries", headers=headers)
        assert_error(response, 401, "token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(anonymous.post("/projects", json={"name": "X"}), 401)


def test_a_logged_in_browser_session_is_no_api_credential(web):
    browser = web.client("owner")  # session cookie, no token; the API has no CSRF check
    assert_error(browser.get("/api/v1/entries"), 401)
    assert_error(browser.post("/api/v1/projects", json={"name": "Forged"}), 401)
    assert not Project.select().where(Project.name == "Forged").exists()


def test_a_token_of_a_deactivated_user_stops_working(web, member):
    assert member.get("/entries").status_code == 200
    web.users["member"].is_active = False
    web.users["member"].save()
    assert_error(member.get("/entries"), 401)


# --- entries ---------------------------------------------------------------------------------
def test_entries_come_newest_first_in_pages_joined_by_the_cursor(web, member, bakery):
    mails = [
        dated(message(f"Mail {day}", sender="anna@bakery.example"), day) for day in range(1, 8)
    ]
    mails.append(dated(message("Same time", sender="anna@bakery.example"), 7))  # a tie on time
    deliver(web.account, *mails)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = member.get("/entries", query_string=query).get_json()
        assert len(body["entries"]) <= 3
        seen += body["entries"]
        cursor, pages = body["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 8
    assert len({entry["id"] for entry in seen}) == 8
    keys = [(entry["occurred_at"], entry["id"]) for entry in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[0]["occurred_at"] == "2026-11-07T10:00:00Z"


def test_search_uses_the_search_syntax_and_explains_bad_syntax(web, member, bakery):
    deliver(
        web.account,
        message("Invoice 42", sender="anna@bakery.example"),
        message("Opening hours", sender="tom@elsewhere.example"),
    )
    found = member.get("/entries", query_string={"q": "subject:invoice"}).get_json()["entries"]
    assert [entry["subject"] for entry in found] == ["Invoice 42"]
    found = member.get("/entries", query_string={"q": "from:tom is:open"}).get_json()["entries"]
    assert [entry["subject"] for entry in found] == ["Opening hours"]
    assert_error(member.get("/entries", query_string={"q": '"unclosed'}), 400, "quote")
    assert_error(member.get("/entries", query_string={"q": "colour:red"}), 400, "colour")


def test_entries_filter_by_project_or_unassigned_and_leave_spam_out(web, member, bakery):
    _filed, _stray, junk = deliver(
        web.account,
        message("Filed", sender="anna@bakery.example"),
        message("Stray", sender="tom@elsewhere.example"),
        message("Junk", sender="spam@junk.example"),
    )
    assert member.post(f"/entries/{junk.id}/discard").status_code == 200

    def subjects(**query):
        response = member.get("/entries", query_string=query)
        return [entry["subject"] for entry in response.get_json()["entries"]]

    assert subjects(project_id=bakery.id) == ["Filed"]
    assert subjects(unassigned="true") == ["Stray"]
    assert sorted(subjects(unassigned="true", include_spam="true")) == ["Junk", "Stray"]
    assert sorted(subjects()) == ["Filed", "Stray"]


def test_pages_skip_spam_and_stay_full(web, member):
    mails = [dated(message(f"Mail {day}", sender=f"s{day}@x.example"), day) for day in range(1, 7)]
    entries = deliver(web.account, *mails)
    for spam in entries[1:5]:  # Mail 2 … Mail 5
        domain_entries.discard_spam(spam, None)
    first = member.get("/entries", query_string={"limit": 1}).get_json()
    assert [entry["subject"] for entry in first["entries"]] == ["Mail 6"]
    second = member.get("/entries", query_string={"limit": 1, "cursor": first["next_cursor"]})
    assert [entry["subject"] for entry in second.get_json()["entries"]] == ["Mail 1"]
    assert second.get_json()["next_cursor"] is None


def test_bad_list_parameters_are_400_and_foreign_projects_404(web, member):
    for query in (
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"cursor": "garbage"},
        {"cursor": "WzEsMl0"},
        {"unassigned": "maybe"},
        {"project_id": "-1"},
        {"project_id": 1, "unassigned": "true"},
        {"q": "x" * 2001},
        {"projectid": 1},
        {"cursor": "x" * 201},
        {"limit": ""},
        {"project_id": ""},
    ):
        assert_error(member.get("/entries", query_string=query), 400)
    assert_error(member.get("/projects", query_string={"limit": ""}), 400, "whole number")
    assert_error(member.get("/entries", query_string={"projectid": 1}), 400, "'projectid'")
    assert_error(member.get("/projects/1", query_string={"x": 1}), 400, "known here: none")
    other = create_project(create_account("Other").id, "Theirs")
    assert_error(member.get("/entries", query_string={"project_id": other.id}), 404, "project")


def test_an_entry_shows_its_mail_and_the_raw_message_is_the_bytes_received(web, member, bakery):
    raw = message(
        "Logo",
        sender="Anna Miller <anna@bakery.example>",
        to="Team <team@agency.test>",
        headers={"Cc": "paul@bakery.example"},
    )
    [entry] = deliver(web.account, raw)
    body = member.get(f"/entries/{entry.id}").get_json()
    assert body["id"] == entry.id and body["project_id"] == bakery.id
    assert body["from"] == "anna@bakery.example" and body["from_name"] == "Anna Miller"
    assert body["to"] == [{"name": "Team", "address": "team@agency.test"}]
    assert body["cc"] == [{"name": "", "address": "paul@bakery.example"}]
    assert body["kind"] == "inbound" and body["status"] == "open" and body["has_raw"] is True
    assert "opening hours" in body["text"] and "html" not in body
    assert body["route_reason"] and body["spam"] is False and body["bounce"] is False
    response = member.get(f"/entries/{entry.id}/raw")
    assert response.status_code == 200 and response.mimetype == "message/rfc822"
    assert response.data == raw == load_raw(entry.raw_sha256)


def test_attachments_are_listed_without_their_bytes(web, member):
    raw = (
        b"From: anna@bakery.example\r\nTo: team@agency.test\r\nSubject: Photo\r\n"
        b"Message-ID: <photo@bakery.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n"
        b'Content-Type: image/png\r\nContent-Disposition: attachment; filename="shop.png"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"
    )
    [entry] = deliver(web.account, raw)
    body = member.get(f"/entries/{entry.id}").get_json()
    assert body["has_attachments"] is True
    [attachment] = body["attachments"]
    assert attachment["filename"] == "shop.png" and attachment["content_type"] == "image/png"
    assert attachment["size"] == 8 and set(attachment) == {"id", "filename", "content_type", "size"}


def test_entries_without_a_raw_message_answer_404_for_raw(web, member, bakery):
    note = member.post(f"/projects/{bakery.id}/notes", json={"kind": "note", "text": "Hi"})
    entry_id = note.get_json()["id"]
    assert note.get_json()["has_raw"] is False
    assert_error(member.get(f"/entries/{entry_id}/raw"), 404, "raw")
    assert_error(member.get("/entries/999999/raw"), 404, "entry")


def test_done_and_open_tick_and_untick_an_entry(web, member, bakery):
    [entry] = deliver(web.account, message("Call me", sender="anna@bakery.example"))
    done = member.post(f"/entries/{entry.id}/done").get_json()
    assert done["status"] == "done" and done["done_at"].endswith("Z")
    assert Entry.get_by_id(entry.id).done_by_id == web.users["member"].id
    reopened = member.post(f"/entries/{entry.id}/open").get_json()
    assert reopened["status"] == "open" and reopened["done_at"] is None


def test_assign_and_remember_the_sender_files_their_next_mail_there(web, member, bakery):
    [entry] = deliver(web.account, message("Hello", sender="Paul <paul@bakery.example>"))
    assert entry.project_id is None
    response = member.post(
        f"/entries/{entry.id}/assign", json={"project_id": bakery.id, "remember_sender": True}
    )
    assert response.status_code == 200
    assert response.get_json()["project_id"] == bakery.id
    assert _facts(web, "paul@bakery.example").projects_with_address(
        web.account.id, "paul@bakery.example"
    ) == [bakery.id]
    [later] = deliver(web.account, message("Again", sender="paul@bakery.example"))
    assert later.project_id == bakery.id


def test_assign_refuses_bad_bodies_with_a_message(web, member, bakery):
    [entry] = deliver(web.account, message("Hello", sender="tom@elsewhere.example"))
    url = f"/entries/{entry.id}/assign"
    assert_error(member.post(url, json={}), 422, "project_id is required")
    assert_error(member.post(url, json={"project_id": str(bakery.id)}), 422, "integer")
    assert_error(member.post(url, json={"project_id": True}), 422, "integer")
    assert_error(member.post(url, json={"project_id": bakery.id, "extra": 1}), 422, "extra")
    assert_error(member.post(url, json={"project_id": bakery.id, "remember_sender": "yes"}), 422)
    assert_error(member.post(url, json=[bakery.id]), 400, "JSON object")
    assert_error(member.post(url, data="project_id=1"), 400, "JSON object")
    assert_error(member.post(url, json={"project_id": 2**40}), 422, "project_id")
    other = create_project(create_account("Other").id, "Theirs")
    assert_error(member.post(url, json={"project_id": other.id}), 404, "project")
    assert Entry.get_by_id(entry.id).project_id is None


def test_discard_marks_spam_and_can_block_the_domain(web, member):
    first, second = deliver(
        web.account,
        message("Buy", sender="a@junk.example"),
        message("Buy more", sender="b@junk.example"),
    )
    url = f"/entries/{first.id}/discard"
    assert_error(member.post(url, json={"block": "everyone"}), 422, "sender, domain")
    body = member.post(url, json={"block": "domain"}).get_json()
    assert body["spam"] is True and body["status"] == "done"
    assert BlockRule.get(BlockRule.account == web.account.id).pattern == "@junk.example"
    assert (
        _facts(web, "c@junk.example").block_rule_for(web.account.id, "c@junk.example")
        == "@junk.example"
    )
    assert member.post(f"/entries/{second.id}/discard", json={"block": None}).status_code == 200


def test_delete_removes_the_entry(web):
    admin = api_as(web, "admin")
    [entry] = deliver(web.account, message("Oops"))
    response = admin.delete(f"/entries/{entry.id}")
    assert response.status_code == 204 and response.data == b""
    assert "Content-Type" not in response.headers
    assert_error(admin.get(f"/entries/{entry.id}"), 404)
    assert_error(admin.delete(f"/entries/{entry.id}"), 404)


def test_members_may_not_delete_entries_for_good(web, member):
    [entry] = deliver(web.account, message("Keep me"))
    assert_error(member.delete(f"/entries/{entry.id}"), 403, "discard it instead")
    assert Entry.get_or_none(Entry.id == entry.id) is not None
    assert member.get(f"/entries/{entry.id}").status_code == 200
    assert_error(member.delete(f"/entries/{entry.id + 1000}"), 404)  # not found comes first
    assert api_as(web, "owner").delete(f"/entries/{entry.id}").status_code == 204


# --- projects and addresses ------------------------------------------------------------------
def test_projects_are_created_read_changed_listed_and_deleted(web, member):
    addresses = ["Jonas@Garden-Lind.example", "jonas@garden-lind.example"]  # one, twice
    response = member.post(
        "/projects",
        json={
            "name": " Garden Lind ",
            "contact_name": "Jonas",
            "domain": "Garden-Lind.example",
            "customer_addresses": addresses,
        },
    )
    assert response.status_code == 201
    project = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/projects/{project['id']}")
    assert project["name"] == "Garden Lind" and project["domain"] == "garden-lind.example"
    assert project["status"] == "lead"  # the first configured status
    assert project["customer_addresses"] == [
        {"address": "jonas@garden-lind.example", "kind": "customer"}
    ]
    url = f"/projects/{project['id']}"
    assert member.get(url).get_json() == project
    changed = member.patch(url, json={"status": "review", "contact_name": "Jonas Lind"})
    assert changed.get_json()["status"] == "review"
    assert changed.get_json()["contact_name"] == "Jonas Lind"
    system = Entry.get((Entry.project == project["id"]) & (Entry.kind == "system"))
    assert system.subject == "Status changed from lead to review"
    listed = member.get("/projects", query_string={"q": "garden"}).get_json()["projects"]
    assert [p["id"] for p in listed] == [project["id"]]
    assert member.get("/projects", query_string={"q": "nothing"}).get_json() == {"projects": []}
    assert_error(member.delete(url), 403, "owner or admin")
    assert api_as(web, "admin").delete(url).status_code == 204
    assert_error(member.get(url), 404)


def test_project_fields_are_checked_with_a_message(web, member, bakery):
    cases = [
        ({}, 422, "name is required"),
        ({"name": "   "}, 422, "name must not be blank"),
        ({"name": 5}, 422, "name must be a string"),
        ({"name": "x" * 201}, 422, "at most 200"),
        ({"name": "A", "status": "dreaming"}, 422, "status must be one of lead"),
        ({"name": "A", "domain": "https://a.example/"}, 422, "host name"),
        ({"name": "A", "colour": "red"}, 422, "colour is not a known field"),
        ({"name": "A", "customer_addresses": ["not-an-address"]}, 422, "not a valid email"),
        ({"name": "A", "customer_addresses": "a@b.example"}, 422, "must be an array"),
        ({"name": "A\x00"}, 422, "NUL"),
        ({"name": "A", "customer_addresses": ["anna@bakery.example"]}, 409, "Bakery Miller"),
    ]
    for body, status, text in cases:
        assert_error(member.post("/projects", json=body), status, text)
    assert Project.select().count() == 1
    url = f"/projects/{bakery.id}"
    assert_error(member.patch(url, json={"name": ""}), 422, "name")
    assert_error(member.patch(url, json={"status": None}), 422, "status must not be null")
    assert_error(member.patch(url, data=b"{not json", content_type="application/json"), 400)
    assert member.patch(url, json={}).get_json()["name"] == "Bakery Miller"


def test_customer_addresses_are_listed_added_refused_twice_and_removed(web, member, bakery):
    url = f"/projects/{bakery.id}/addresses"
    added = member.post(url, json={"address": " Paul+Shop@Bakery.example ", "kind": "partner"})
    assert added.status_code == 201
    assert added.get_json() == {"address": "paul+shop@bakery.example", "kind": "partner"}
    assert member.get(url).get_json() == {
        "addresses": [
            {"address": "anna@bakery.example", "kind": "customer"},
            {"address": "paul+shop@bakery.example", "kind": "partner"},
        ]
    }
    assert_error(member.post(url, json={"address": "ANNA@bakery.example"}), 409, "this project")
    other = create_project(web.account.id, "Other shop")
    taken = member.post(f"/projects/{other.id}/addresses", json={"address": "anna@bakery.example"})
    assert_error(taken, 409, "Bakery Miller")
    assert_error(member.post(url, json={"address": "anna"}), 422, "not a valid email")
    assert_error(member.post(url, json={"address": "a@b.example", "kind": "boss"}), 422, "kind")
    assert member.delete(f"{url}/paul+shop@bakery.example").status_code == 204
    assert_error(member.delete(f"{url}/paul+shop@bakery.example"), 404, "address")
    assert_error(member.delete(f"{url}/a%00b@bakery.example"), 404)
    assert (
        _facts(web, "paul+shop@bakery.example").projects_with_address(
            web.account.id, "paul+shop@bakery.example"
        )
        == []
    )


def test_deleting_a_project_keeps_its_mail_as_unassigned(web, bakery):
    [mail] = deliver(web.account, message("Keep me", sender="anna@bakery.example"))
    domain_entries.set_done(mail, web.users["owner"].id, True)
    owner = api_as(web, "owner")
    note = owner.post(f"/projects/{bakery.id}/notes", json={"kind": "note", "text": "internal"})
    assert owner.delete(f"/projects/{bakery.id}").status_code == 204
    kept = Entry.get_by_id(mail.id)
    assert kept.project_id is None
    assert (kept.route_rule, kept.route_detail) == ("project_deleted", "Bakery Miller")
    assert Activity.select().where(Activity.entry == mail.id).exists()  # its history stays
    assert not Entry.select().where(Entry.id == note.get_json()["id"]).exists()
    found = owner.get("/entries", query_string={"q": "internal"}).get_json()["entries"]
    assert found == []


# --- notes and events ------------------------------------------------------------------------
def test_notes_and_calls_land_in_the_protocol(web, member, bakery):
    url = f"/projects/{bakery.id}/notes"
    note = member.post(url, json={"kind": "note", "text": "Ask @anna about fonts"})
    assert note.status_code == 201 and note.headers["Location"].endswith(
        f"/api/v1/entries/{note.get_json()['id']}"
    )
    assert note.get_json()["kind"] == "note" and note.get_json()["category"] == "internal"
    call = member.post(
        url,
        json={
            "kind": "call",
            "text": "Wants a new photo",
            "subject": "Call",
            "occurred_at": "2026-11-20T15:30:00+01:00",
        },
    )
    call = call.get_json()
    assert call["occurred_at"] == "2026-11-20T14:30:00Z" and call["subject"] == "Call"
    assert call["from"] == "member@agency.test"
    found = member.get("/entries", query_string={"q": "photo", "project_id": bakery.id})
    assert [entry["id"] for entry in found.get_json()["entries"]] == [call["id"]]
    assert_error(member.post(url, json={"kind": "sms", "text": "x"}), 422, "note, call")
    assert_error(member.post(url, json={"kind": "note", "text": "   "}), 422, "empty")
    assert_error(member.post(url, json={"kind": "note", "text": "x", "occurred_at": "soon"}), 422)
    assert_error(member.post(url, json={"kind": "note"}), 422, "text is required")


def test_a_status_change_event_sets_the_status_and_writes_one_system_entry(web, member, bakery):
    url = f"/projects/{bakery.id}/events"
    response = member.post(
        url,
        json={
            "type": "status_change",
            "subject": "Site went live",
            "status": "live",
            "data": {"by": "deploy-bot"},
        },
    )
    assert response.status_code == 201
    entry = response.get_json()
    assert entry["kind"] == "system" and entry["subject"] == "Site went live"
    assert Project.get_by_id(bakery.id).status == "live"
    assert Entry.select().where(Entry.kind == "system").count() == 1
    event = Event.get(Event.entry == entry["id"])
    assert event.kind == "status_change"
    assert '"from": "in progress"' in event.payload and '"to": "live"' in event.payload
    assert Entry.get_by_id(entry["id"]).project_status == "live"


def test_other_events_write_a_system_entry_and_bad_ones_are_refused(web, member, bakery):
    url = f"/projects/{bakery.id}/events"
    response = member.post(
        url, json={"type": "file_upload", "subject": "logo.svg uploaded", "text": "by the customer"}
    )
    assert response.status_code == 201
    assert Event.get(Event.entry == response.get_json()["id"]).kind == "file_upload"
    cases = [
        ({"type": "party", "subject": "x"}, "type must be one of status_change"),
        ({"type": "change_request"}, "subject is required"),
        ({"type": "change_request", "subject": "x", "status": "live"}, "status_change event only"),
        ({"type": "status_change", "subject": "x", "status": "dreaming"}, "status"),
        ({"type": "file_upload", "subject": "x", "data": [1]}, "data must be an object"),
        ({"type": "file_upload", "subject": "x", "data": {"a": "x" * 20_000}}, "data may have"),
    ]
    for body, text in cases:
        assert_error(member.post(url, json=body), 422, text)
    assert Project.get_by_id(bakery.id).status == "in progress"


# --- every route at once ---------------------------------------------------------------------
def api_routes(app) -> list[tuple[str, str]]:
    """(endpoint, method) of every rule of the api blueprint, HEAD and OPTIONS left out."""
    return [
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]


def url_of(app, endpoint: str, entry_id: int, project_id: int, address: str) -> str:
    values = {"entry_id": entry_id, "project_id": project_id, "address": address}
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    adapter = app.url_map.bind("localhost")
    return adapter.build(endpoint, {k: v for k, v in values.items() if k in rule.arguments})


def test_read_only_users_get_403_on_every_changing_route(web, bakery):
    [entry] = deliver(web.account, message("Hi", sender="anna@bakery.example"))
    reader = api_as(web, "read-only")
    changing = [(e, m) for e, m in api_routes(web.app) if m not in SAFE]
    assert len(changing) >= 12
    for endpoint, method in changing:
        url = url_of(web.app, endpoint, entry.id, bakery.id, "anna@bakery.example")
        body = {"project_id": bakery.id, "kind": "note", "text": "x", "name": "x"}
        response = reader.open(url.removeprefix("/api/v1"), method, json=body)
        assert_error(response, 403, "read-only")
    assert reader.get(f"/entries/{entry.id}").status_code == 200
    assert Entry.get_by_id(entry.id).status == "open" and Project.select().count() == 1


def test_ids_of_another_account_are_404_on_every_route(web, member):
    other = create_account("Other agency")
    create_user(other.id, "boss@other.example", "owner", "correct horse battery")
    theirs = create_project(other.id, "Theirs", customer_addresses=["c@theirs.example"])
    [their_mail] = deliver(other, message("Secret", sender="c@theirs.example"))
    owner = api_as(web, "owner")
    checked = 0
    for endpoint, method in api_routes(web.app):
        url = url_of(web.app, endpoint, their_mail.id, theirs.id, "c@theirs.example")
        if "<" not in next(r.rule for r in web.app.url_map.iter_rules() if r.endpoint == endpoint):
            continue
        body = {
            "project_id": theirs.id,
            "kind": "note",
            "text": "x",
            "address": "d@x.example",
            "type": "change_request",
            "subject": "x",
        }
        response = owner.open(url.removeprefix("/api/v1"), method, json=body)
        assert_error(response, 404)
        checked += 1
    assert checked >= 14
    assert Entry.get_by_id(their_mail.id).status == "open"
    assert Project.get_by_id(theirs.id).name == "Theirs"
    assert member.get("/entries").get_json()["entries"] == []
    assert member.get("/projects").get_json()["projects"] == []


def test_unknown_paths_and_methods_under_api_answer_json_not_html(web, member):
    for path in ("/api/v1/nothing", "/api/v2/entries", "/api/v1/entries/abc", "/api/"):
        assert_error(member.client.get(path), 404)
    response = member.client.put("/api/v1/entries", headers={"Authorization": "Bearer x"})
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]
    assert_error(member.client.post("/api/v1/openapi.json"), 405)
    assert "<html" not in member.client.get("/api/v1/entries/1").get_data(as_text=True).lower()
    assert web.client(None).get("/nothing").mimetype == "text/html"  # the UI keeps its pages


def test_the_openapi_document_is_public_and_describes_every_route(web):
    response = web.app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.") and document["servers"] == [{"url": "/api/v1"}]
    documented = {
        (operation["operationId"], method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    served = set()
    for rule in web.app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served.add((rule.endpoint.removeprefix("api."), method, path))
    assert documented == served
    for _operation_id, method, path in served:
        responses = document["paths"][path][method.lower()]["responses"]
        if path != "/openapi.json":
            assert "401" in responses, path
        if method not in SAFE:
            assert "403" in responses, path
    statuses = document["components"]["schemas"]["ProjectUpdate"]["properties"]["status"]
    assert statuses["enum"] == ["lead", "in progress", "review", "live", "archived"]


def test_a_refusal_of_several_addresses_names_each(web, member, bakery):
    body = {"name": "Two", "customer_addresses": ["one@new.example", "anna@bakery.example"]}
    assert_error(member.post("/projects", json=body), 409, "anna@bakery.example")
    body["customer_addresses"] = ["not-one", "neither", "anna@bakery.example"]
    error = assert_error(member.post("/projects", json=body), 422)["error"]
    assert "'not-one'" in error and "'neither'" in error and "; " in error
    assert not Project.select().where(Project.name == "Two").exists()


def test_a_wrong_field_or_parameter_is_named_as_the_client_wrote_it(web, member, bakery):
    [entry] = deliver(web.account, message("Hello", sender="tom@elsewhere.example"))
    cases = [
        (member.post(f"/entries/{entry.id}/assign", json={}), 422, "project_id is required"),
        (
            member.post(f"/entries/{entry.id}/assign", json={"project_id": bakery.id, "x": 1}),
            422,
            "x is not a known field (known: project_id, remember_sender)",
        ),
        (
            member.post(f"/entries/{entry.id}/assign", json={"a\x00": 1}),
            422,
            "keys must not contain NUL characters or lone surrogates",
        ),
        (
            member.post(
                f"/projects/{bakery.id}/messages",
                json={"to": "a@b.example", "attachments": [{"filename": "a"}]},
            ),
            422,
            "attachments[0].content_base64 is required",
        ),
        (
            member.post(f"/projects/{bakery.id}/notes", json={"kind": "note", "text": 5}),
            422,
            "text must be a string",
        ),
        (
            member.get("/entries", query_string={"limit": "+5"}),
            400,
            "limit must be a whole number from 1 to 200",
        ),
        (
            member.get("/entries", query_string={"unassigned": "yes"}),
            400,
            "unassigned must be true or false",
        ),
    ]
    for response, status, text in cases:
        assert assert_error(response, status)["error"] == text
