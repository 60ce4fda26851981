"""Mail to customers end to end: written in the UI, sent to a real SMTP sink by send_due, and
the customer's replies coming back over SMTP into the same project of a real postroom.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import io
import threading
from contextlib import contextmanager
from email.policy import default as default_policy
from email.utils import getaddresses

import pytest
from aiosmtpd.controller import Controller

from admin_ui import create_app
from domain.bounces import bounce_address
from domain.tokens import create_api_token
from domain.users import create_user
from postroom.config import Settings, load_settings
from postroom.outbound import OutboundError, project_reply_address, queue_message
from postroom.outbound_send import send_due
from storage.db import open_database
from storage.models import Entry, Event, OutboundMessage, Project, User, utcnow
from storage.search import search
from tests.daemon import DOMAIN, Daemon, reserve_port
from tests.mail import message
from tests.test_api import deliver
from tests.web import PASSWORD, csrf_token, login, post

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


class Sink:
    """An aiosmtpd handler that keeps every message it is given; optionally refuses all."""

    def __init__(self, refuse: str | None = None) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 queued as sink"


@contextmanager
def smtp_sink(port: int, refuse: str | None = None):
    handler = Sink(refuse)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def with_server(settings: Settings, port: int, **outbound) -> Settings:
    url = f"smtp://127.0.0.1:{port}?security=none"
    return dataclasses.replace(
        settings, outbound=dataclasses.replace(settings.outbound, smtp_url=url, **outbound)
    )


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=default_policy)


# --- (a) UI → sink → the customer's replies ---------------------------------------------------
def test_a_mail_from_the_ui_reaches_the_customer_and_their_replies_come_back(db_url, tmp_path):
    with Daemon(tmp_path, db_url) as daemon:
        account_id = daemon.account["id"]
        project_id = daemon.create_project(
            account_id, "Bakery Miller", "anna@bakery.example", domain="bakery.example"
        )["id"]
        question = message(
            "Opening hours",
            sender="Anna Miller <anna@bakery.example>",
            headers={"References": "<first@bakery.example>"},
        )
        daemon.send(question)
        [received] = daemon.wait_for_entries(1)
        config = tmp_path / "web.toml"
        config.write_text(f'[ingest]\ndomains = ["{DOMAIN}"]\n')
        port = reserve_port()
        db = open_database(db_url)
        try:
            settings = with_server(load_settings(config), port)
            app = create_app(settings, testing=True)
            create_user(account_id, "sam@agency.test", "member", PASSWORD, name="Sam")
            client = app.test_client()
            login(client, "sam@agency.test")
            path = f"/projects/{project_id}/messages/new"
            form = client.get(f"{path}?answer={received['id']}").get_data(as_text=True)
            assert 'value="Re: Opening hours"' in form
            response = client.post(
                path,
                data={
                    "csrf_token": csrf_token(client, path),
                    "answer": str(received["id"]),
                    "to": "anna@bakery.example",
                    "to_other": "",
                    "subject": "Re: Opening hours",
                    "body": "Hello Anna,\n\nthe **new hours** are online.<script>alert(1)</script>",
                    "attachments": (io.BytesIO(PDF), "../Angebot 2026.pdf", "application/pdf"),
                },
            )
            assert response.status_code == 302, response.get_data(as_text=True)[:800]
            outbound = OutboundMessage.get()
            entry = Entry.get_by_id(outbound.entry_id)
            assert (entry.kind, entry.status, entry.project_id) == ("outbound", "done", project_id)
            # both are searchable by address: filed by ingest, and written here
            assert [e.id for e in search(account_id, "to:anna@bakery").entries] == [entry.id]
            assert [e.id for e in search(account_id, "from:miller").entries] == [received["id"]]
            with smtp_sink(port) as sink:
                assert send_due(settings) == (1, 0)
            [(mail_from, rcpt_tos, raw)] = sink.received
            reply_address = project_reply_address(Project.get_by_id(project_id), settings)
            assert rcpt_tos == ["anna@bakery.example"]
            # bounces come back to a VERP address naming the entry (domain.bounces)
            assert mail_from == bounce_address(entry.id, DOMAIN)
            assert mail_from.startswith(f"bounce+{entry.id}.")
            mail = parsed(raw)
            assert getaddresses([mail["From"]])[0][1] == f"no-reply@{DOMAIN}"
            assert mail["To"] == "anna@bakery.example"
            assert mail["Subject"] == "Re: Opening hours"
            assert mail["Message-ID"] == f"<{entry.message_id}>"
            assert entry.message_id.endswith(f"@{DOMAIN}")
            assert getaddresses([mail["Reply-To"]])[0][1] == reply_address
            answered = Entry.get_by_id(received["id"])
            assert mail["In-Reply-To"] == f"<{answered.message_id}>"
            assert mail["References"].split() == [
                "<first@bakery.example>",
                f"<{answered.message_id}>",
            ]
            assert mail["Auto-Submitted"] is None and mail["Date"]
            assert mail.get_content_type() == "multipart/mixed"
            alternative, attachment = mail.iter_parts()
            assert alternative.get_content_type() == "multipart/alternative"
            text, html = alternative.iter_parts()
            assert text.get_content_type() == "text/plain" and "**new hours**" in text.get_content()
            assert html.get_content_type() == "text/html"
            assert "<strong>new hours</strong>" in html.get_content()
            assert "<script" not in html.get_content()
            assert attachment.get_filename() == "Angebot 2026.pdf"
            assert attachment.get_content() == PDF
            assert OutboundMessage.get_by_id(outbound.id).state == "sent"
        finally:
            db.close()

        # a colleague of the customer answers: not on the project, but in the thread
        reply = message(
            "Re: Opening hours",
            sender="Paul <paul@elsewhere.example>",
            headers={"In-Reply-To": f"<{entry.message_id}>"},
        )
        daemon.send(reply, sender="paul@elsewhere.example")
        # someone else writes to the Reply-To address, without any thread headers
        daemon.send(
            message("Question", sender="Lea <lea@stranger.example>"),
            sender="lea@stranger.example",
            to=[reply_address],
        )
        found = daemon.wait_for_entries(4)
        by_subject = {e["subject"]: e for e in found if e["kind"] == "inbound"}
        thread_reply = by_subject["Re: Opening hours"]
        assert thread_reply["project_id"] == project_id
        assert thread_reply["route"]["rule"] == "thread"
        assert by_subject["Question"]["project_id"] == project_id
        assert by_subject["Question"]["route"]["rule"] == "project_address"


# --- (b) the server is down, then back ---------------------------------------------------------
def settings_of(web) -> Settings:
    return web.app.config["POSTROOM_SETTINGS"]


def queue(web, project, subject="Draft ready", settings=None, **kwargs) -> Entry:
    return queue_message(
        project,
        web.users["member"],
        "anna@bakery.example",
        subject,
        "Have a look.",
        settings=settings or settings_of(web),
        **kwargs,
    )


def test_a_mail_waits_while_the_server_is_down_and_is_sent_once_when_it_is_back(web, bakery):
    port = reserve_port()  # nothing listens here yet
    settings = with_server(settings_of(web), port)
    entry = queue(web, bakery)
    assert [e.id for e in search(web.account.id, "to:anna@bakery").entries] == [entry.id]
    start = utcnow()
    assert send_due(settings, now=start) == (0, 1)
    waiting = OutboundMessage.get(OutboundMessage.entry == entry.id)
    assert (waiting.state, waiting.attempts) == ("queued", 1)
    assert "refused" in waiting.last_error
    assert waiting.next_attempt_at == start + dt.timedelta(seconds=30)
    detail = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    assert "<strong>Queued</strong>" in detail and "1 failed attempt" in detail
    assert "refused" in detail
    with smtp_sink(port) as sink:
        assert send_due(settings, now=start + dt.timedelta(seconds=10)) == (0, 0)  # not yet due
        assert send_due(settings, now=start + dt.timedelta(seconds=31)) == (1, 0)
        assert send_due(settings, now=start + dt.timedelta(hours=2)) == (0, 0)
        assert len(sink.received) == 1
    sent = OutboundMessage.get_by_id(waiting.id)
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 2, "")
    assert sent.sent_at == start + dt.timedelta(seconds=31)


def test_backoff_doubles_and_the_author_is_told_when_postroom_gives_up(web, bakery):
    settings = with_server(settings_of(web), reserve_port(), max_attempts=3)
    entry = queue(web, bakery)
    now = utcnow()
    delays = []
    for _ in range(3):
        send_due(settings, now=now)
        row = OutboundMessage.get(OutboundMessage.entry == entry.id)
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert delays[:2] == [30, 60]
    failed = OutboundMessage.get(OutboundMessage.entry == entry.id)
    assert (failed.state, failed.attempts) == ("failed", 3)
    note = Entry.get((Entry.kind == "system") & (Entry.project == bakery.id))
    assert note.status == "done" and "could not be sent" in note.subject  # system: done
    event = Event.get(Event.kind == "outbound_failed")
    assert event.entry_id == entry.id
    assert f'"user_id": {web.users["member"].id}' in event.payload
    member = web.client("member")
    detail = member.get(f"/entries/{entry.id}").get_data(as_text=True)
    assert "Could not be sent" in detail and "Send again" in detail
    assert (
        post(
            member, f"/entries/{entry.id}/outbound/retry", token_from=f"/entries/{entry.id}"
        ).status_code
        == 302
    )
    again = OutboundMessage.get_by_id(failed.id)
    assert (again.state, again.attempts) == ("queued", 0)


def test_a_recipient_the_server_refuses_for_good_fails_at_once(web, bakery):
    port = reserve_port()
    settings = with_server(settings_of(web), port)
    entry = queue(web, bakery)
    with smtp_sink(port, refuse="550 5.1.1 no such user") as sink:
        assert send_due(settings) == (0, 1)
        assert sink.received == []
    row = OutboundMessage.get(OutboundMessage.entry == entry.id)
    assert (row.state, row.attempts) == ("failed", 1) and "550" in row.last_error


def test_two_workers_at_once_send_each_mail_exactly_once(web, bakery):
    port = reserve_port()
    settings = with_server(settings_of(web), port)
    entries = [queue(web, bakery, subject=f"Mail {n}") for n in range(6)]
    results = []
    with smtp_sink(port) as sink:
        workers = [
            threading.Thread(target=lambda: results.append(send_due(settings))) for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    assert sum(sent for sent, _ in results) == len(entries)
    subjects = sorted(parsed(raw)["Subject"] for _, _, raw in sink.received)
    assert subjects == sorted(f"Mail {n}" for n in range(6))


def test_without_any_outgoing_server_mail_stays_queued(web, bakery):
    entry = queue(web, bakery)
    assert send_due(settings_of(web)) == (0, 0)
    row = OutboundMessage.get(OutboundMessage.entry == entry.id)
    assert (row.state, row.attempts) == ("queued", 0)
    form = web.client("member").get(f"/projects/{bakery.id}/messages/new")
    assert "No outgoing mail server is set up yet" in form.get_data(as_text=True)


def allowing_loopback(settings: Settings, *ports: int) -> Settings:
    """Settings whose accounts may name a server on this machine (the test sinks)."""
    outbound = dataclasses.replace(
        settings.outbound, allow_private_hosts=True, allowed_ports=(587, *ports)
    )
    return dataclasses.replace(settings, outbound=outbound)


def test_the_accounts_own_server_and_sender_are_used(web, bakery):
    from storage.outbound import save_account_smtp

    port = reserve_port()
    save_account_smtp(
        web.account.id,
        host="127.0.0.1",
        port=port,
        security="none",
        username="",
        password=None,
        from_address="hello@agency.test",
        from_name="Agency",
    )
    entry = queue(web, bakery)
    with smtp_sink(port) as sink:
        assert send_due(settings_of(web)) == (0, 1)  # loopback is not allowed by default
        assert sink.received == []
        assert "not allowed" in OutboundMessage.get().last_error
        # allowed in the config, once the account's back-off is over; no smtp_url needed
        later = utcnow() + dt.timedelta(minutes=5)
        assert send_due(allowing_loopback(settings_of(web), port), now=later) == (1, 0)
    [(mail_from, _, raw)] = sink.received
    assert mail_from == "hello@agency.test"
    assert parsed(raw)["From"] == '"Member (Agency)" <hello@agency.test>'  # author (account)
    assert Entry.get_by_id(entry.id).from_address == "hello@agency.test"


# --- (c) header injection ----------------------------------------------------------------------
def test_line_breaks_in_subject_recipient_or_file_name_are_refused_in_the_ui(web, bakery):
    member = web.client("member")
    path = f"/projects/{bakery.id}/messages/new"
    good = {"to": "anna@bakery.example", "to_other": "", "subject": "Hi", "body": "Text"}
    for change, words in (
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject must be one"),
        (
            {"to_other": "anna@bakery.example\r\nBcc: victim@example.com"},
            "recipient must not contain line breaks",
        ),
    ):
        response = post(member, path, {**good, **change}, token_from=path)
        assert response.status_code == 400
        assert words in response.get_data(as_text=True)
    # a browser may send the file name RFC 2231-encoded, line break and all
    token = csrf_token(member, path)
    fields = "".join(
        f'--XX\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in {**good, "csrf_token": token}.items()
    )
    upload = (
        '--XX\r\nContent-Disposition: form-data; name="attachments"; '
        "filename*=UTF-8''x%0D%0ABcc%3A%20victim%40example.com.pdf\r\n"
        "Content-Type: application/pdf\r\n\r\n%PDF\r\n--XX--\r\n"
    )
    response = member.post(
        path, data=(fields + upload).encode(), content_type="multipart/form-data; boundary=XX"
    )
    assert response.status_code == 400
    assert "contains a line break" in response.get_data(as_text=True)
    assert OutboundMessage.select().count() == 0 and Entry.select().count() == 0


def test_line_breaks_are_refused_by_the_api_and_by_queue_message(web, bakery):
    token = create_api_token(web.users["member"])
    client = web.app.test_client()
    url = f"/api/v1/projects/{bakery.id}/messages"
    headers = {"Authorization": f"Bearer {token}"}
    good = {"to": "anna@bakery.example", "subject": "Hi", "body": "Text"}
    pdf = {"filename": "a.pdf", "content_type": "application/pdf", "content_base64": "JVBERg=="}
    for change in (
        {"subject": "Hi\nBcc: victim@example.com"},
        {"to": "anna@bakery.example\r\nBcc: victim@example.com"},
        {"attachments": [{**pdf, "filename": "a\r\nBcc: victim@example.com.pdf"}]},
        {"attachments": [{**pdf, "content_base64": "not base64!"}]},
    ):
        response = client.post(url, json={**good, **change}, headers=headers)
        assert response.status_code == 422, (change, response.get_json())
    with pytest.raises(OutboundError, match="line break"):
        queue_message(
            bakery,
            User.get_by_id(web.users["member"].id),
            "anna@bakery.example",
            "Hi",
            "Text",
            [("a\nb.pdf", "application/pdf", b"%PDF")],
            settings=settings_of(web),
        )
    assert OutboundMessage.select().count() == 0 and Entry.select().count() == 0


def test_the_api_queues_mail_with_attachments_templates_and_threading(web, bakery):
    from storage.outbound import save_template

    token = create_api_token(web.users["member"])
    client = web.app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    [question] = deliver(web.account, message("Prices?", sender="anna@bakery.example"))
    template = save_template(
        web.account.id,
        "Prices",
        "Prices for {{ website_name }}",
        "Hello,\nhere they are.\n{{ sender_name }}",
    )
    response = client.post(
        f"/api/v1/projects/{bakery.id}/messages",
        headers=headers,
        json={
            "to": "anna@bakery.example",
            "template_id": template.id,
            "answer_entry_id": question.id,
            "attachments": [
                {
                    "filename": "prices.pdf",
                    "content_type": "application/pdf",
                    "content_base64": "JVBERi0xLjQK",
                }
            ],
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["subject"]) == ("outbound", "Prices for Bakery Miller")
    assert body["attachments"][0]["filename"] == "prices.pdf"
    assert response.headers["Location"].endswith(f"/api/v1/entries/{body['id']}")
    entry = Entry.get_by_id(body["id"])
    assert entry.in_reply_to == question.message_id
    assert "here they are" in entry.text
    too_big = {
        "to": "anna@bakery.example",
        "subject": "Big",
        "body": "x",
        "attachments": [{"filename": "big.bin", "content_base64": "QUFB" * 4_000_000}],
    }
    refused = client.post(f"/api/v1/projects/{bakery.id}/messages", headers=headers, json=too_big)
    assert refused.status_code == 422 and "too large" in refused.get_json()["error"]
