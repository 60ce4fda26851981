"""Bounces tied to the mail they answer (issue 17): the VERP envelope sender, bounce+ recipients
checked at RCPT, bounces of other formats matched through the inbox, and what the team sees.

Mail is sent by the worker's send_due to an SMTP sink; bounces come back over real SMTP to a
running postroom (the `daemon`). Postfix's own DSN: tests/test_postfix_bounce.py.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import quopri
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from admin_ui import create_app
from domain.bounces import bounce_address
from domain.tokens import create_api_token
from domain.users import create_user
from postroom.config import Settings, load_settings
from postroom.jobs.notify import process_events
from postroom.outbound import queue_message
from postroom.outbound_send import send_due
from smtpd_ingest.bounces import read_bounce
from smtpd_ingest.parse import ParseError, parse_message
from storage.db import _runner, migrate, native_sql, open_database
from storage.models import (
    Activity,
    Entry,
    Event,
    Notification,
    OutboundMessage,
    Project,
    User,
)
from tests.daemon import DOMAIN, Daemon, reserve_port
from tests.test_outbound import smtp_sink
from tests.web import PASSWORD, login

CUSTOMER = "anna@bakery.example"
GONE = "nobody@bakery.example"


# --- (d) the corpus: every report reads without raising --------------------------------------
def test_every_bounce_of_the_corpus_is_read_and_nothing_raises(corpus_files: list[Path]) -> None:
    reports = {}
    for path in corpus_files:
        raw = path.read_bytes()
        report = read_bounce(raw)  # never raises, whatever the file holds
        try:
            mail = parse_message(raw)
        except ParseError:
            continue
        if b"multipart/report" in raw.lower() and report is not None:
            reports[path.name] = report
        if mail.is_bounce:
            assert mail.bounce is not None or read_bounce(raw) is None, path
    # the delivery status notifications of the corpus, as their delivery-status parts say
    assert len(reports) >= 6, sorted(reports)
    zed = reports["zed.eml"]
    assert (zed.failed, zed.standard, zed.status) == (True, True, "5.1.1")
    assert zed.recipients == ("asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com",)
    assert zed.message_ids == ("20090708054735.GC7578@example.com",)
    assert "does not exist" in zed.diagnostic
    office = reports["office365.eml"]
    assert (office.status, office.recipients) == ("5.1.10", ("noname@example.com",))
    full = reports["mailbox-full.eml"]
    assert full.status == "5.2.2" and "MAILBOX FULL" in full.diagnostic
    # Action: delayed is a warning, not a bounce: nothing to mark
    assert reports["no-mx.eml"].failed is False


def test_a_truncated_or_hostile_report_is_read_within_bounds() -> None:
    head = (
        b"From: MAILER-DAEMON@mx.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.test\r\n\r\n"
    )
    many = b"".join(
        b"Final-Recipient: rfc822; r%d@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" % n
        for n in range(5000)
    )
    report = read_bounce(head + many + b"a@" * 200_000)  # cut: only a prefix is read
    assert report is not None and report.failed
    assert len(report.recipients) <= 20 and report.status == "5.1.1"
    # one long line without an ending: the heuristics see lines cut short
    assert read_bounce(b"Subject: failure notice\r\n\r\n" + b"x@y " * 300_000) is None
    assert read_bounce(b"") is None
    assert read_bounce(b"\x00\xff" * 1000) is None


def test_the_detectors_see_decoded_lines_cut_short() -> None:
    """Quoted-printable soft line breaks and base64 join a part into one long line for the
    detectors that decode it; the copy they read is decoded first and cut line by line."""
    from smtpd_ingest.bounces import MAX_DETECTOR_LINE, MAX_HEURISTIC_BYTES, detector_copy

    joined = b"".join(b"<" * 70 + b"=\r\n" for _ in range(800))  # one decoded line of 56,000
    raw = (
        b"From: MAILER-DAEMON@mx.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\nContent-Description: Notification\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nThe Postfix program\r\n"
        + joined
        + b"\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"@" * 6000)
        + b"--b--\r\n"
    )
    leaves = [p for p in detector_copy(raw).walk() if not p.is_multipart()]
    decoded = [p.get_payload(decode=True) for p in leaves]
    assert sum(len(d) for d in decoded) <= MAX_HEURISTIC_BYTES
    assert max(len(line) for d in decoded for line in d.split(b"\n")) <= MAX_DETECTOR_LINE
    assert read_bounce(raw) is None  # no address in it, and read within bounds


def test_a_netscape_style_bounce_of_angle_brackets_is_not_searched_in_cubic_time() -> None:
    """flufl.bounce's Netscape pattern (.*<[^>]*>) takes seconds for one line of 1,000 '<'
    (64 such lines: minutes); the detectors run here leave it out, so this returns at once."""
    raw = (
        b"From: MAILER-DAEMON@mx.test\r\nSubject: Undeliverable mail\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        b"This Message was undeliverable due to the following reason:\r\n"
        + (b"<" * 998 + b"\r\n") * 64
        + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"
    )
    assert read_bounce(raw) is None


def test_an_exchange_bounce_in_quoted_printable_is_still_read() -> None:
    text = EXCHANGE.format(subject="Offer", to=GONE, marker="qp")
    head, _, body = crlf(text).partition(b"\r\n\r\n")
    encoded = quopri.encodestring(body.replace(b"\r\n", b"\n"))
    raw = head + b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded
    report = read_bounce(raw)
    assert report is not None and report.recipients == (GONE,), report


# --- a running postroom, a project and mail sent to the customer -----------------------------
@dataclass
class Agency:
    daemon: Daemon
    settings: Settings
    project: Project
    author_id: int

    def send(self, to: str, subject: str) -> Entry:
        """Queue a mail from the author and let the worker send it to a sink."""
        project = Project.get_by_id(self.project.id)
        author = User.get_by_id(self.author_id)
        entry = queue_message(project, author, to, subject, "Hello.", settings=self.settings)
        port = reserve_port()
        settings = with_server(self.settings, port)
        with smtp_sink(port) as sink:
            assert send_due(settings) == (1, 0)
        [(mail_from, _, _)] = sink.received
        assert mail_from == bounce_address(entry.id, DOMAIN)
        return Entry.get_by_id(entry.id)

    def bounce(self, raw: bytes, to: str | None = None) -> dict:
        """Deliver a bounce (null sender) over SMTP; return its entry as the CLI lists it."""
        before = {e["id"] for e in self.daemon.entries()}
        code, reply = self.daemon.send(raw, sender="", to=[to or self.daemon.inbox])
        assert code == 250, reply
        found = self.daemon.wait_for_entries(len(before) + 1)
        [entry] = [e for e in found if e["id"] not in before]
        return entry


def with_server(settings: Settings, port: int) -> Settings:
    url = f"smtp://127.0.0.1:{port}?security=none"
    return dataclasses.replace(
        settings, outbound=dataclasses.replace(settings.outbound, smtp_url=url)
    )


@pytest.fixture
def agency(daemon: Daemon, tmp_path: Path) -> Iterator[Agency]:
    account_id = daemon.account["id"]
    project = daemon.create_project(account_id, "Bakery Miller", CUSTOMER)
    config = tmp_path / "web.toml"
    config.write_text(f'[ingest]\ndomains = ["{DOMAIN}"]\n')
    db = open_database(daemon.db_url)
    try:
        author = create_user(account_id, "sam@agency.test", "member", PASSWORD, name="Sam")
        yield Agency(daemon, load_settings(config), Project.get_by_id(project["id"]), author.id)
    finally:
        db.close()


def bounced_state(entry_id: int) -> tuple:
    outbound = OutboundMessage.get(OutboundMessage.entry == entry_id)
    entry = Entry.get_by_id(entry_id)
    return (
        entry.status,
        entry.send_problem,
        outbound.bounce_status,
        outbound.bounce_recipient,
        outbound.bounce_detail,
    )


def unassigned(daemon: Daemon) -> list[dict]:
    return [e for e in daemon.entries() if e["project_id"] is None]


EXCHANGE = """\
From: System Administrator <postmaster@mail.bakery.example>
To: Sam <no-reply@in.example>
Subject: Undeliverable: {subject}
Date: Thu, 26 Nov 2026 10:05:00 +0100
Message-ID: <exch-{marker}@mail.bakery.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Your message

  To:      {to}
  Subject: {subject}
  Sent:    Thu, 26 Nov 2026 10:00:00 +0100

did not reach the following recipient(s):

{to} on Thu, 26 Nov 2026 10:05:00 +0100
    The e-mail account does not exist at the organization this message was sent to.
    <mail.bakery.example #5.1.1 smtp;550 5.1.1 User unknown>

MSEXCH:IMS:Bakery:Site:MAIL 0 (000C05A6) Unknown Recipient
"""

QMAIL = """\
From: MAILER-DAEMON@mail.bakery.example
To: no-reply@in.example
Subject: failure notice
Date: Thu, 26 Nov 2026 10:05:00 +0100
Message-ID: <qmail-{marker}@mail.bakery.example>

Hi. This is the qmail-send program at mail.bakery.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{to}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <bounce@in.example>
Message-ID: <{message_id}>
From: Sam <no-reply@in.example>
To: {to}
Subject: {subject}

Hello.
"""

DSN_HEADERS = """\
From: Mail Delivery System <MAILER-DAEMON@relay.agency.test>
To: hello@agency.test
Subject: Undelivered Mail Returned to Sender
Date: Thu, 26 Nov 2026 10:05:00 +0100
Message-ID: <dsn-{marker}@relay.agency.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"

--dsn
Content-Type: text/plain

Your mail could not be delivered.

--dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.agency.test

Final-Recipient: rfc822; {to}
Action: failed
Status: 5.2.1
Diagnostic-Code: smtp; 550 5.2.1 The mailbox is disabled

--dsn
Content-Type: text/rfc822-headers

Message-ID: <{message_id}>
From: Sam <hello@agency.test>
To: {to}
Subject: {subject}

--dsn--
"""


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


# --- (b) bounces that reach the inbox: matched through their words or the Message-ID ---------
def test_an_exchange_bounce_through_the_inbox_marks_the_mail_to_that_recipient(agency) -> None:
    sent = agency.send(GONE, "Offer for the new site")
    assert (sent.status, sent.send_problem) == ("done", "")
    raw = crlf(EXCHANGE.format(subject=sent.subject, to=GONE, marker="1"))

    bounce = agency.bounce(raw)

    assert bounce["project_id"] == agency.project.id, bounce
    assert bounce["route"]["rule"] == "bounce" and bounce["route"]["detail"] == str(sent.id)
    status, problem, code, recipient, detail = bounced_state(sent.id)
    assert (status, problem, code, recipient) == ("open", "bounced", "5.1.1", GONE)
    assert "User unknown" in detail
    assert unassigned(agency.daemon) == []
    # the author is told, once, of the bounce of their mail
    [event] = Event.select().where(Event.kind == "outbound_bounced")
    assert (event.entry_id, event.project_id) == (sent.id, agency.project.id)
    assert not Event.select().where(Event.entry == bounce["id"]).exists()
    assert Activity.get(Activity.action == "bounced").entry_id == sent.id


def test_a_qmail_bounce_is_matched_by_the_message_id_it_returns(agency) -> None:
    first = agency.send(GONE, "First draft")
    second = agency.send(GONE, "Second draft")  # newer, to the same recipient
    raw = crlf(
        QMAIL.format(subject=first.subject, to=GONE, marker="2", message_id=first.message_id)
    )

    bounce = agency.bounce(raw)

    assert bounce["route"]["detail"] == str(first.id), bounce
    assert bounced_state(first.id)[:3] == ("open", "bounced", "5.1.1")
    assert bounced_state(second.id)[:2] == ("done", "")
    assert unassigned(agency.daemon) == []


def test_a_standard_report_with_returned_headers_through_the_inbox_is_matched(agency) -> None:
    sent = agency.send(CUSTOMER, "Invoice")
    raw = crlf(
        DSN_HEADERS.format(
            subject=sent.subject, to=CUSTOMER, marker="3", message_id=sent.message_id
        )
    )

    bounce = agency.bounce(raw)

    assert bounce["route"]["detail"] == str(sent.id), bounce
    status, problem, code, recipient, detail = bounced_state(sent.id)
    assert (status, problem, code, recipient) == ("open", "bounced", "5.2.1", CUSTOMER)
    assert detail == "550 5.2.1 The mailbox is disabled"


def test_a_bounce_of_mail_we_never_sent_stays_unassigned_as_a_bounce(agency) -> None:
    raw = crlf(DSN_HEADERS.format(subject="x", to="else@where.test", marker="4", message_id="a@b"))
    bounce = agency.bounce(raw)
    assert bounce["project_id"] is None
    assert Entry.get_by_id(bounce["id"]).is_bounce
    assert not OutboundMessage.select().where(OutboundMessage.bounced_at.is_null(False)).exists()


def test_a_bounce_with_nul_characters_still_marks_the_mail_it_returns(agency) -> None:
    """NUL characters (which PostgreSQL text cannot hold) in a diagnostic or a returned
    Message-ID are dropped: the bounce is matched and recorded, not filed as a failure."""
    sent = agency.send(CUSTOMER, "Invoice")
    text = DSN_HEADERS.format(subject=sent.subject, to=CUSTOMER, marker="nul", message_id="x")
    text = text.replace(
        "Message-ID: <x>", f"Message-ID: <forged\x00@x.test>\nMessage-ID: <{sent.message_id}>"
    ).replace("The mailbox is disabled", "The mailbox\x00 is disabled")

    bounce = agency.bounce(crlf(text))

    assert bounce["route"]["detail"] == str(sent.id), bounce
    state = bounced_state(sent.id)
    assert state == (
        "open",
        "bounced",
        "5.2.1",
        CUSTOMER,
        "550 5.2.1 The mailbox is disabled",
    )


def test_a_report_saying_delivered_or_relayed_is_no_bounce_whatever_its_words() -> None:
    """The delivery-status part is the report: when it names recipients delivered or relayed
    and none failed, the human-readable part is not searched for failures."""
    for action in ("delivered", "relayed", "expanded"):
        text = DSN_HEADERS.format(subject="x", to=CUSTOMER, marker="ok", message_id="a@b")
        text = (
            text.replace("Action: failed", f"Action: {action}")
            .replace("Status: 5.2.1", "Status: 2.0.0")
            .replace(
                "Your mail could not be delivered.",
                f"Your message could not be delivered to\n{CUSTOMER}\nwithout this report.",
            )
        )
        assert read_bounce(crlf(text)) is None, action


def test_a_bounce_from_a_blocked_sender_stays_blocked(agency) -> None:
    """The block list comes first: mail shaped as a bounce does not bypass it into a project,
    and marks nothing."""
    from storage.blocks import add_block_rule

    sent = agency.send(GONE, "Offer")
    add_block_rule(agency.project.account_id, "@mail.bakery.example")

    bounce = agency.bounce(crlf(EXCHANGE.format(subject=sent.subject, to=GONE, marker="blk")))

    assert bounce["route"]["rule"] == "blocked", bounce
    assert bounced_state(sent.id)[:2] == ("done", "")


# --- (c) the VERP address: refused unless postroom made it -----------------------------------
def test_a_bounce_to_the_verp_address_is_accepted_and_a_forged_one_gets_550(agency) -> None:
    sent = agency.send(GONE, "Welcome")
    good = bounce_address(sent.id, DOMAIN)
    entry_id, token = good.partition("@")[0].removeprefix("bounce+").split(".")
    forged = [
        f"bounce+{entry_id}.{'0' * len(token)}@{DOMAIN}",  # a made-up token
        f"bounce+{int(entry_id) + 1}.{token}@{DOMAIN}",  # another entry with this token
        f"bounce+{entry_id}@{DOMAIN}",  # no token
        f"bounce+{entry_id}.{token}@elsewhere.test",  # not our domain
    ]
    with agency.daemon.smtp() as client:
        client.mail("")
        for address in forged:
            code, reply = client.rcpt(address)
            assert code == 550, (address, code, reply)
        code, reply = client.rcpt(good.upper())  # MTAs may change the case
        assert code == 250, reply
    # a reply of a person to the envelope sender (an auto-reply) is filed in the project
    raw = crlf(
        "From: Anna <anna@bakery.example>\nTo: x@in.example\nSubject: Out of office\n"
        "Message-ID: <ooo-1@bakery.example>\n\nBack on Monday.\n"
    )
    entry = agency.bounce(raw, to=good)
    assert entry["project_id"] == agency.project.id
    assert entry["route"]["rule"] == "project_address"
    assert bounced_state(sent.id)[:2] == ("done", "")


def test_a_verp_bounce_without_the_returned_mail_marks_the_entry_it_names(agency) -> None:
    sent = agency.send(GONE, "Quote")
    raw = crlf(
        "From: MAILER-DAEMON@mx.bakery.example\nTo: x@in.example\n"
        "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <v-1@mx.bakery.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n'
        "\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        f"Final-Recipient: rfc822; {GONE}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\n\n--b--\n"
    )
    entry = agency.bounce(raw, to=bounce_address(sent.id, DOMAIN))
    assert entry["route"] == {**entry["route"], "rule": "bounce", "detail": str(sent.id)}
    assert bounced_state(sent.id)[:4] == ("open", "bounced", "5.1.1", GONE)


# --- what the team sees ---------------------------------------------------------------------
def test_a_bounced_mail_shows_its_reason_and_a_badge_in_the_protocol_and_tickets(agency) -> None:
    sent = agency.send(GONE, "Offer")
    bounce = agency.bounce(crlf(EXCHANGE.format(subject=sent.subject, to=GONE, marker="5")))
    app = create_app(agency.settings, testing=True)
    client = app.test_client()
    login(client, "sam@agency.test")

    page = client.get(f"/entries/{sent.id}").get_data(as_text=True)
    assert ">bounced</span>" in page
    assert "Bounced:" in page and "5.1.1" in page and "User unknown" in page and GONE in page
    assert f'href="/entries/{bounce["id"]}"' in page
    protocol = client.get(f"/projects/{agency.project.id}/protocol").get_data(as_text=True)
    row = protocol.partition(f'id="entry-{sent.id}"')[2].partition("</li>")[0]
    assert ">bounced</span>" in row
    tickets = client.get("/").get_data(as_text=True)
    row = tickets.partition(f'id="entry-{sent.id}"')[2].partition("</li>")[0]
    assert ">bounced</span>" in row, tickets[:3000]


def test_a_mail_given_up_stays_open_with_a_failed_badge(agency) -> None:
    project = Project.get_by_id(agency.project.id)
    author = User.get_by_id(agency.author_id)
    entry = queue_message(project, author, GONE, "Never sent", "Hi.", settings=agency.settings)
    port = reserve_port()
    with smtp_sink(port, refuse="550 5.1.1 no such user") as sink:
        assert send_due(with_server(agency.settings, port)) == (0, 1)
    assert sink.received == []
    stored = Entry.get_by_id(entry.id)
    assert (stored.status, stored.send_problem) == ("open", "failed")
    app = create_app(agency.settings, testing=True)
    client = app.test_client()
    login(client, "sam@agency.test")
    page = client.get(f"/entries/{entry.id}").get_data(as_text=True)
    assert ">send failed</span>" in page and "Could not be sent" in page
    tickets = client.get("/").get_data(as_text=True)
    row = tickets.partition(f'id="entry-{entry.id}"')[2].partition("</li>")[0]
    assert ">send failed</span>" in row
    protocol = client.get(f"/projects/{agency.project.id}/protocol").get_data(as_text=True)
    row = protocol.partition(f'id="entry-{entry.id}"')[2].partition("</li>")[0]
    assert ">send failed</span>" in row
    token = create_api_token(author)
    answer = client.get(f"/api/v1/entries/{entry.id}", headers={"Authorization": f"Bearer {token}"})
    assert (answer.status_code, answer.get_json()["send_problem"]) == (200, "failed")


def test_the_author_is_notified_of_the_bounce_of_their_mail(agency) -> None:
    sent = agency.send(GONE, "Offer for the shop")
    agency.bounce(crlf(EXCHANGE.format(subject=sent.subject, to=GONE, marker="6")))
    settings = with_server(agency.settings, reserve_port())  # mail possible: email is due

    process_events(settings)

    [notification] = Notification.select().where(Notification.event_type == "outbound_bounced")
    assert notification.user_id == agency.author_id and notification.entry_id == sent.id
    assert notification.text.startswith(f"Your mail to {GONE} bounced: Offer for the shop")
    assert "5.1.1" in notification.text and notification.email_due == "immediate"
    # the bounce itself tells nobody else (no customer-mail notification)
    assert Notification.select().count() == 1


# --- in a browser: the badges are words, at phone width too ---------------------------------
def test_in_a_browser_bounced_and_failed_mail_stand_out_in_words(web, bakery, page) -> None:
    from tests.test_ui_entries import serving
    from tests.test_ui_unassigned import receive

    settings = web.app.config["POSTROOM_SETTINGS"]
    member = web.users["member"]
    bounced = queue_message(bakery, member, GONE, "Offer", "Hello.", settings=settings)
    port = reserve_port()
    with smtp_sink(port):
        assert send_due(with_server(settings, port)) == (1, 0)
    receive(web.account.id, crlf(EXCHANGE.format(subject="Offer", to=GONE, marker="7")))
    failed = queue_message(bakery, member, CUSTOMER, "Invoice", "Hello.", settings=settings)
    with smtp_sink(port, refuse="550 5.1.1 no such user"):
        assert send_due(with_server(settings, port)) == (0, 1)

    with serving(web.app) as base:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/login")
        page.fill("input[name=email]", member.email)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        for path in ("/", f"/projects/{bakery.id}/protocol"):
            page.goto(f"{base}{path}")
            assert "bounced" in page.locator(f"#entry-{bounced.id} .send-problem").inner_text()
            assert "send failed" in page.locator(f"#entry-{failed.id} .send-problem").inner_text()
        page.goto(f"{base}/entries/{bounced.id}")
        reason = page.locator("#bounce-reason").inner_text()
        assert "Bounced:" in reason and "5.1.1" in reason and GONE in reason
        assert page.locator(".entry-meta .send-problem").inner_text() == "bounced"
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wide, "the entry page scrolls sideways at 390 px"


# --- the migration -------------------------------------------------------------------------
def test_migration_0017_opens_mail_given_up_before_with_its_badge(db_url) -> None:
    db = open_database(db_url)
    runner = _runner(db)
    runner.up("0015_time_zones")
    when = dt.datetime(2026, 1, 5, 9, 30)
    insert = {
        "account": "INSERT INTO account (name, inbox_token, created_at, signature, time_zone)"
        " VALUES ('Old', 'tok', ?, '', 'UTC')",
        "entry": "INSERT INTO entry (account_id, kind, status, done_at, route_reason, route_rule,"
        " route_detail, candidates, auto_submitted, is_bounce, is_list, subject, from_address,"
        " from_name, to_addresses, cc_addresses, text, html, has_attachments, occurred_at,"
        ' received_at, in_reply_to, "references", category, spam)'
        " VALUES (1, 'outbound', 'done', ?, '', 'outbound', '', '[]', ?, ?, ?, ?, '', '', '[]',"
        " '[]', '', '', ?, ?, ?, '', '', 'customer', ?)",
        "outbound": "INSERT INTO outbound_message (entry_id, account_id, to_address, cc,"
        " from_address, from_name, reply_to, body_text, body_html, state, attempts,"
        " next_attempt_at, last_error, created_at)"
        " VALUES (?, 1, 'a@b.test', '', 'x@y.test', '', '', '', '', ?, 1, ?, '', ?)",
    }
    db.execute_sql(native_sql(insert["account"]), [when])
    for number, state in enumerate(("failed", "sent"), start=1):
        flags = [False, False, False, state, False, when, when, False]
        db.execute_sql(native_sql(insert["entry"]), [when, *flags])
        db.execute_sql(native_sql(insert["outbound"]), [number, state, when, when])

    applied = migrate(db)

    assert "0017_bounces" in applied
    rows = db.execute_sql("SELECT subject, status, send_problem FROM entry ORDER BY id").fetchall()
    assert rows == [("failed", "open", "failed"), ("sent", "done", "")]
    columns = {c.name for c in db.get_columns("outbound_message")}
    assert {"bounced_at", "bounce_status", "bounce_detail", "bounce_entry"} <= columns
    runner.up("0017_bounces")  # nothing left to do
    db.close()


def test_matching_by_recipient_reads_through_an_index(storage_db) -> None:
    """A bounce naming only its failed recipient is matched without reading every outbound
    mail of the account: the query uses outbound_message_recipient (migration 0017)."""
    from storage.bounces import recent_mail_to
    from storage.db import is_sqlite

    query = recent_mail_to(1, ["anna@bakery.example", "b@x.test"], dt.datetime(2026, 12, 6))
    sql, params = query.sql()
    if is_sqlite(storage_db):
        plan = storage_db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    else:  # a tiny table is read whole unless told otherwise; the index must be usable
        storage_db.execute_sql("SET enable_seqscan = off")
        plan = storage_db.execute_sql("EXPLAIN " + sql, params).fetchall()
    assert "outbound_message_recipient" in str(plan), plan
