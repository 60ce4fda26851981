"""One entry in the admin UI: headers, the sandboxed HTML body, files, raw mail, new entries."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from werkzeug.serving import make_server

from admin_ui.mail_html import frame_policy
from domain import projects as domain_projects
from domain.time_zones import set_account_time_zone
from storage import accounts
from storage.attachments import attachments_of_entry
from storage.filing import InboundRecord
from storage.intake import Delivery, IntakeBatchItem, record_batch
from storage.models import Entry, utcnow
from tests.browser import screenshot
from tests.filing import file_record
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import PASSWORD, post

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
HOSTILE_HTML = (
    '<p onclick="steal()">Dear team,</p><script>alert("script")</script>'
    '<img src="x" onerror="alert(\'onerror\')">'
    "<a href=\"javascript:alert('link')\">click me</a>"
    '<img src="https://tracker.test/pixel.gif" alt="pixel">'
    '<img src="cid:logo@bakery.test" alt="logo">'
)


def html_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Anna Sommer <anna@bakery.test>"
    mail["To"] = "Team <team@agency.test>"
    mail["Cc"] = "Max <max@bakery.test>"
    mail["Subject"] = "New logo"
    mail["Date"] = "Thu, 26 Nov 2026 10:00:00 +0100"
    mail["Message-ID"] = "<logo-1@bakery.test>"
    mail.set_content("Dear team, see the new logo.")
    mail.add_alternative(HOSTILE_HTML, subtype="html")
    mail.get_payload()[1].add_related(
        PNG, maintype="image", subtype="png", cid="<logo@bakery.test>", filename="logo.png"
    )
    mail.add_attachment(
        b"%PDF-1.4 offer", maintype="application", subtype="pdf", filename="Angebot Müller.pdf"
    )
    mail.add_attachment(
        b"<script>alert(1)</script>", maintype="text", subtype="html", filename="page.html"
    )
    return mail.as_bytes(policy=SMTP)


@pytest.fixture
def logo_raw() -> bytes:
    return html_mail()


@pytest.fixture
def logo_mail(web, logo_raw) -> Entry:
    domain_projects.create_project(
        web.account.id, "Bakery", customer_addresses=["anna@bakery.test"]
    )
    return receive(web.account.id, logo_raw)


def test_the_detail_shows_headers_trace_and_a_sandboxed_frame(web, logo_mail):
    page = web.client("member").get(f"/entries/{logo_mail.id}").get_data(as_text=True)
    assert "Anna Sommer" in page and "&lt;anna@bakery.test&gt;" in page
    assert "max@bakery.test" in page and "&lt;logo-1@bakery.test&gt;" in page
    frames = re.findall(r"<iframe[^>]*>", page)
    assert frames == [
        '<iframe class="mail" title="Mail content" '
        'sandbox="allow-popups allow-popups-to-escape-sandbox" '
        f'src="/entries/{logo_mail.id}/body">'
    ]
    assert "1 remote image held back" in page
    assert f'href="/entries/{logo_mail.id}?images=1"' in page
    assert (
        "over LMTP, queue id" in page and "sender: anna@bakery.test is a customer address" in page
    )
    assert "Angebot Müller.pdf" in page and "Dear team, see the new logo." in page


def test_the_frame_holds_no_script_and_no_remote_image_until_asked(web, logo_mail):
    client = web.client("member")
    response = client.get(f"/entries/{logo_mail.id}/body")
    body = response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == frame_policy(False)
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Dear team," in body
    for banned in ("<script", "alert(", "onerror", "onclick", "javascript:", "tracker.test"):
        assert banned not in body
    assert "data:image/svg+xml;base64," in body  # the placeholder of the held-back image
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in body  # cid: inline

    loaded = client.get(f"/entries/{logo_mail.id}/body?images=1")
    assert 'src="https://tracker.test/pixel.gif"' in loaded.get_data(as_text=True)
    assert loaded.headers["Content-Security-Policy"] == frame_policy(True)
    assert "images=1" in client.get(f"/entries/{logo_mail.id}?images=1").get_data(as_text=True)


def test_attachments_download_as_octets_with_an_rfc6266_filename(web, logo_mail):
    client = web.client("member")
    files = {f.filename: f for f in attachments_of_entry(logo_mail.id)}
    offer = client.get(f"/entries/{logo_mail.id}/attachments/{files['Angebot Müller.pdf'].id}")
    assert offer.data == b"%PDF-1.4 offer"
    assert offer.headers["Content-Type"] == "application/octet-stream"
    disposition = offer.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Angebot%20M%C3%BCller.pdf" in disposition
    assert offer.headers["X-Content-Type-Options"] == "nosniff"

    shown = client.get(
        f"/entries/{logo_mail.id}/attachments/{files['Angebot Müller.pdf'].id}?inline=1"
    )
    assert shown.headers["Content-Type"] == "application/pdf"
    assert shown.headers["Content-Disposition"].startswith("inline;")
    page = client.get(f"/entries/{logo_mail.id}/attachments/{files['page.html'].id}?inline=1")
    assert page.headers["Content-Type"] == "application/octet-stream"  # never served as HTML
    assert page.headers["Content-Disposition"].startswith("attachment;")


def test_the_raw_download_is_the_exact_message(web, logo_mail, logo_raw):
    response = web.client("member").get(f"/entries/{logo_mail.id}/raw")
    assert response.data == logo_raw
    assert response.headers["Content-Type"] == "message/rfc822"
    assert (
        response.headers["Content-Disposition"] == f"attachment; filename=entry-{logo_mail.id}.eml"
    )


def store_unparseable(account_id: int, raw: bytes, queue_id: str, reason: str):
    """Record `raw` as delivered over SMTP and file it as mail that could not be parsed."""
    digest = hashlib.sha256(raw).hexdigest()
    delivery = Delivery(
        queue_id,
        account_id,
        "inbox@in.example",
        None,
        "a@b.test",
        "127.0.0.1:1",
        "mx",
        "smtp",
        utcnow(),
    )
    [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))])
    return file_record(
        recorded.intake_id,
        InboundRecord(project_id=None, route_rule="unparseable", parse_error=reason),
    )


def test_an_unparseable_mail_shows_the_reason_and_its_raw_text(web):
    raw = b"\x00\xff<b>not a mail</b> at all\r\n" * 3
    entry = store_unparseable(web.account.id, raw, "QBROKEN", "no header block found")
    page = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    assert 'role="alert"' in page and "no header block found" in page
    assert "&lt;b&gt;not a mail&lt;/b&gt; at all" in page and "<b>not a mail" not in page
    assert "\ufffd" in page  # undecodable bytes are replaced, not fatal
    assert "queue id <code>QBROKEN</code>" in page


def test_everything_from_the_mail_is_escaped(web):
    domain_projects.create_project(
        web.account.id, "Bakery", customer_addresses=["evil@bakery.test"]
    )
    evil = message(
        "<script>alert('subject')</script>",
        sender='"<img src=x onerror=alert(1)>" <evil@bakery.test>',
        body="<script>alert('body')</script>",
    )
    entry = receive(web.account.id, evil)
    client = web.client("member")
    for path in ("/", f"/entries/{entry.id}"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page


def test_the_way_the_mail_came_is_read_from_its_received_headers(web):
    """Oldest hop first, with the delay between hops; hostile header text is escaped."""
    head = (
        b"Received: from mx.agency.test (mx.agency.test [192.0.2.25])\r\n"
        b"\tby postroom.agency.test with LMTP id Q1; Thu, 26 Nov 2026 10:12:00 +0000\r\n"
        b"Received: from <script>alert(1)</script> (laptop [198.51.100.7])\r\n"
        b"\tby mail.bakery.test (Postfix) with ESMTPSA id 4AB; Thu, 26 Nov 2026 11:00:00 +0100\r\n"
    )
    raw = head + message("Opening hours", sender="anna@bakery.test")
    entry = receive(web.account.id, raw)
    page = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    hops = re.findall(r'<li class="hop">(.*?)</li>', page, re.S)
    assert len(hops) == 2
    first, second = (" ".join(re.sub(r"<[^>]+>", "", hop).split()) for hop in hops)
    assert first.startswith("From &lt;script&gt;alert(1)&lt;/script&gt; (laptop [198.51.100.7])")
    assert "to mail.bakery.test (Postfix) over ESMTPSA, 2026-11-26 10:00" in first
    assert second.startswith("From mx.agency.test (mx.agency.test [192.0.2.25])")
    assert "to postroom.agency.test over LMTP, 2026-11-26 10:12 (12 min later)" in second
    assert "<script>alert(1)" not in page
    # without Received headers (a note, or mail handed over directly) there are no hops
    plain = receive(web.account.id, message("Hello", sender="anna@bakery.test"))
    page = web.client("member").get(f"/entries/{plain.id}").get_data(as_text=True)
    assert 'class="hop"' not in page


def test_another_accounts_entry_is_not_found(web, logo_mail):
    other = accounts.create_account("Other agency")
    theirs = domain_projects.create_project(other.id, "Theirs")
    [attachment] = attachments_of_entry(logo_mail.id)[:1]
    Entry.update(account=other.id).where(Entry.id == logo_mail.id).execute()
    client = web.client("owner")
    for path in (
        f"/entries/{logo_mail.id}",
        f"/entries/{logo_mail.id}/body",
        f"/entries/{logo_mail.id}/raw",
        f"/entries/{logo_mail.id}/attachments/{attachment.id}",
        f"/projects/{theirs.id}/entries/new",
    ):
        assert client.get(path).status_code == 404, path
    assert post(client, f"/entries/{logo_mail.id}/done", {"done": "1"}).status_code == 404


def test_a_note_is_added_with_its_author_and_the_project_status(web):
    project = domain_projects.create_project(web.account.id, "Bakery", status="in progress")
    client = web.client("member")
    assert "Internal note" in client.get(f"/projects/{project.id}/entries/new").get_data(
        as_text=True
    )
    response = post(
        client,
        f"/projects/{project.id}/entries/new",
        {
            "kind": "note",
            "subject": "DNS",
            "text": "Moved the domain to the new host.",
            "needs_action": "1",
        },
    )
    entry = Entry.get(Entry.kind == "note")
    assert response.status_code == 302
    assert response.location == f"/projects/{project.id}/protocol?entry={entry.id}#entry-{entry.id}"
    assert entry.author_id == web.users["member"].id and entry.status == "open"
    page = client.get(f"/entries/{entry.id}").get_data(as_text=True)
    assert "Written by</th><td>Member" in page
    assert "Project status then</th><td>in progress" in page
    assert "Moved the domain to the new host." in page


def test_a_call_is_stored_at_the_time_it_happened_in_utc(web):
    """The time typed is a wall-clock time of the user's zone (here the account's, Berlin)."""
    set_account_time_zone(web.account.id, "Europe/Berlin")
    project = domain_projects.create_project(web.account.id, "Bakery")
    response = post(
        web.client("member"),
        f"/projects/{project.id}/entries/new",
        {
            "kind": "call",
            "text": "Anna called: bigger logo please.",
            "occurred_at": "2026-11-20T14:30",
        },
    )
    assert response.status_code == 302
    entry = Entry.get(Entry.kind == "call")
    assert entry.occurred_at == dt.datetime(2026, 11, 20, 13, 30)
    assert entry.category == "customer" and entry.project_status == "lead"
    ticket_page = web.client("admin").get("/").get_data(as_text=True)
    assert "Anna called: bigger logo please." in ticket_page


def test_a_new_entry_needs_text_and_keeps_what_was_typed(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    response = post(
        web.client("member"),
        f"/projects/{project.id}/entries/new",
        {"kind": "call", "subject": "Kept subject", "text": "   ", "occurred_at": "not a date"},
    )
    assert response.status_code == 400
    assert "That date and time cannot be read." in response.get_data(as_text=True)
    assert 'value="Kept subject"' in response.get_data(as_text=True)
    assert Entry.select().count() == 0


def test_read_only_users_read_entries_but_cannot_add_or_tick(web, logo_mail):
    client = web.client("read-only")
    assert client.get(f"/entries/{logo_mail.id}").status_code == 200
    assert client.get(f"/entries/{logo_mail.id}/raw").status_code == 200
    project_id = logo_mail.project_id
    assert post(client, f"/projects/{project_id}/entries/new", {"text": "x"}).status_code == 403
    assert post(client, f"/entries/{logo_mail.id}/done", {"done": "1"}).status_code == 403


def test_who_ticked_done_is_listed_on_the_entry(web, logo_mail):
    client = web.client("admin")
    post(client, f"/entries/{logo_mail.id}/done", {"done": "1"})
    page = client.get(f"/entries/{logo_mail.id}").get_data(as_text=True)
    assert re.search(r"</time> Admin ticked it done\.", page)


@contextmanager
def serving(app) -> Iterator[str]:
    """The admin UI on a free port of 127.0.0.1, for a real browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join()


def test_in_a_browser_ticking_done_updates_the_count_and_the_frame_stays_inert(
    web, logo_mail, page, network_log
):
    from playwright.sync_api import expect

    receive(web.account.id, message("Who is this?", sender="Nina <nina@unknown.test>"))
    with serving(web.app) as base:
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "member@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        row = page.locator(f"#entry-{logo_mail.id}")
        assert page.locator("#open-count").inner_text() == "1"
        assert not page.locator(".done-form button").is_visible()  # JS sends on change
        row.locator("input[name=done]").check()
        expect(page.locator("#open-count")).to_have_text("0")  # no reload: app.js did it
        expect(row).to_have_class(re.compile(r"\bdone\b"))
        assert Entry.get_by_id(logo_mail.id).status == "done"
        screenshot(page, "tickets")
        page.goto(f"{base}/unassigned")
        screenshot(page, "unassigned")

        page.goto(f"{base}/entries/{logo_mail.id}")
        frame = page.frame_locator("iframe.mail")
        assert "Dear team," in frame.locator("body").inner_text()
        assert frame.locator("img[alt=logo]").evaluate("img => img.naturalWidth") == 1
        screenshot(page, "entry-detail")
    network_log.assert_only_local()
    network_log.assert_no_dialogs()
    network_log.assert_no_console_errors()
