"""One outbound configuration: an account's notification mail goes through the SMTP server its
Settings hold, like its mail to customers, else through `[outbound] smtp_url`; from the
agency's name; with Message-IDs on the sender's domain, never localhost; and with subjects
that name the project and what happened.

Two real aiosmtpd sinks stand for the agency's own server and the [outbound] server; customer
mail arrives through the real parse and route; the worker's jobs run as the worker runs them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain import users
from postroom.config import Settings, load_settings
from postroom.jobs import digest, notify
from postroom.outbound import FALLBACK_DOMAIN, message_id_domain, queue_message
from postroom.outbound_checks import OutboundError
from postroom.outbound_send import send_due
from storage import notifications as store
from storage.accounts import create_account
from storage.models import Entry, Notification, OutboundMessage, utcnow
from storage.outbound import remove_account_smtp as remove_smtp
from storage.outbound import save_account_smtp
from tests.daemon import reserve_port
from tests.mail import message
from tests.test_notifications import BASE, Sink, rows_of, run_worker_jobs
from tests.test_ui_unassigned import receive


@contextmanager
def sink_server():
    keeper = Sink(reserve_port())
    controller = Controller(keeper, hostname="127.0.0.1", port=keeper.port)
    controller.start()
    try:
        yield keeper
    finally:
        controller.stop()


@pytest.fixture
def default_sink():
    with sink_server() as keeper:
        yield keeper


@pytest.fixture
def agency_sink():
    with sink_server() as keeper:
        yield keeper


def config(tmp_path, default_sink: Sink, *, allow_port: int | None = None) -> Settings:
    """Settings with [outbound] smtp_url at default_sink and no from_name (the default); with
    allow_port, an account's own server may be on this machine at that port (the sinks)."""
    path = tmp_path / "worker.toml"
    lines = [
        "[ingest]",
        'domains = ["in.example"]',
        "[web]",
        f'base_url = "{BASE}"',
        "[outbound]",
        f'smtp_url = "smtp://127.0.0.1:{default_sink.port}?security=none"',
        'from_address = "postroom@default.example"',
    ]
    if allow_port is not None:
        lines += ["allow_private_hosts = true", f"allowed_ports = [587, {allow_port}]"]
    path.write_text("\n".join(lines) + "\n")
    return load_settings(path)


def agency_server(account_id: int, port: int, from_name: str = "") -> None:
    """The account's own server in Settings (stored as the settings page stores it)."""
    save_account_smtp(
        account_id,
        host="127.0.0.1",
        port=port,
        security="none",
        username="",
        password=None,
        from_address="team@miller-agency.example",
        from_name=from_name,
    )


def bakery_followed_by_member(web):
    bakery = domain_projects.create_project(
        web.account.id, "Bakery Miller", customer_addresses=["anna@bakery.test"]
    )
    store.set_following(bakery.id, web.users["member"].id, True)
    return bakery


def test_notification_mail_goes_through_the_server_settings_hold_and_not_the_default(
    web, tmp_path, default_sink, agency_sink
):
    settings = config(tmp_path, default_sink, allow_port=agency_sink.port)
    agency_server(web.account.id, agency_sink.port)
    bakery = bakery_followed_by_member(web)
    receive(web.account.id, message("Opening hours", sender="Anna Miller <anna@bakery.test>"))
    run_worker_jobs(settings)

    assert default_sink.mails == []  # [outbound] is only the default
    [(rcpts, mail)] = agency_sink.take()
    assert rcpts == ["member@agency.test"]
    assert mail["Subject"] == "Bakery Miller: new mail from Anna Miller"
    # no sender name in Settings: the agency's name; the address Settings gives
    assert mail["From"] == "Agency <team@miller-agency.example>"
    assert mail["Message-ID"].endswith("@miller-agency.example>")
    assert mail["Auto-Submitted"] == "auto-generated"

    # and the agency's mail to customers goes the same way, from the same sender
    queue_message(
        bakery, web.users["member"], "anna@bakery.test", "Hours", "Yes.", settings=settings
    )
    assert send_due(settings) == (1, 0)
    [(_, sent)] = agency_sink.take()
    assert sent["From"] == '"Member (Agency)" <team@miller-agency.example>'
    assert sent["Message-ID"].endswith("@miller-agency.example>")
    assert default_sink.mails == []


def test_without_a_server_in_settings_notification_mail_goes_to_the_outbound_default(
    web, tmp_path, default_sink, agency_sink
):
    settings = config(tmp_path, default_sink, allow_port=agency_sink.port)
    bakery = bakery_followed_by_member(web)
    domain_entries.add_manual_entry(bakery, web.users["owner"], kind="note", text="@member call?")
    run_worker_jobs(settings)

    assert agency_sink.mails == []
    [(rcpts, mail)] = default_sink.take()
    assert rcpts == ["member@agency.test"]
    assert mail["Subject"] == "Bakery Miller: note by Owner"
    assert mail["From"] == "Agency <postroom@default.example>"  # [outbound] from_name is empty
    assert mail["Message-ID"].endswith("@default.example>")


def test_a_sender_name_in_settings_is_used_for_notification_mail(
    web, tmp_path, default_sink, agency_sink
):
    settings = config(tmp_path, default_sink, allow_port=agency_sink.port)
    agency_server(web.account.id, agency_sink.port, from_name="Miller & Partner")
    receive(web.account.id, message("Who is this?", sender="anna@example.org"))
    run_worker_jobs(settings)
    digest.send_digests(settings)  # unassigned mail is a digest item by default

    mails = [mail for _, mail in agency_sink.take()]
    assert len(mails) == 3 and default_sink.mails == []  # owner, admin, member
    assert {m["Subject"] for m in mails} == {"Your daily postroom digest: 1 update in Unassigned"}
    senders = {
        (m["From"].addresses[0].display_name, m["From"].addresses[0].addr_spec) for m in mails
    }
    assert senders == {("Miller & Partner", "team@miller-agency.example")}


def test_an_agency_server_that_fails_keeps_its_notification_mail_for_later(
    web, tmp_path, default_sink
):
    """Nothing listens at the agency's server yet: its mail waits (the account backs off, as
    its mail to customers would), nothing goes to the default, and a later run sends it."""
    port = reserve_port()
    settings = config(tmp_path, default_sink, allow_port=port)
    agency_server(web.account.id, port)
    bakery_followed_by_member(web)
    receive(web.account.id, message("Opening hours", sender="Anna Miller <anna@bakery.test>"))
    notify.process_events(settings)
    start = utcnow()
    assert notify.mail_due(settings, "immediate", intro="News:", now=start) == 0
    [row] = rows_of(web.users["member"])
    assert (row.email_due, row.emailed_at) == ("immediate", None)  # waiting, not set aside
    assert default_sink.mails == []

    with sink_server_at(port) as agency_sink:
        # during the back-off the server is left alone; after it, the mail goes
        assert notify.mail_due(settings, "immediate", intro="News:", now=start) == 0
        later = start + dt.timedelta(minutes=5)
        assert notify.mail_due(settings, "immediate", intro="News:", now=later) == 1
        [(rcpts, mail)] = agency_sink.take()
    assert rcpts == ["member@agency.test"]
    assert mail["Subject"] == "Bakery Miller: new mail from Anna Miller"
    assert Notification.get_by_id(row.id).emailed_at is not None
    assert default_sink.mails == []


@contextmanager
def sink_server_at(port: int):
    keeper = Sink(port)
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield keeper
    finally:
        controller.stop()


def test_an_agency_server_on_a_private_address_is_refused_for_notification_mail_too(
    web, tmp_path, default_sink, agency_sink
):
    """The rules for an account's own server (public addresses only, unless the operator
    allows more) hold for its notification mail as for its mail to customers."""
    settings = config(tmp_path, default_sink)  # loopback not allowed
    agency_server(web.account.id, agency_sink.port)
    bakery_followed_by_member(web)
    receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    run_worker_jobs(settings)
    assert agency_sink.mails == [] and default_sink.mails == []
    [row] = rows_of(web.users["member"])
    assert (row.email_due, row.emailed_at) == ("immediate", None)


def test_subjects_name_the_project_and_what_happened_on_one_line(
    web, tmp_path, default_sink, agency_sink
):
    settings = config(tmp_path, default_sink)
    bakery = bakery_followed_by_member(web)
    cafe = domain_projects.create_project(
        web.account.id, "Café Rosa", customer_addresses=["rosa@cafe.test"]
    )
    store.set_following(cafe.id, web.users["member"].id, True)
    store.save_preferences(
        web.users["member"].id, {"unassigned_mail": store.Preference(email=True, digest=False)}
    )
    hostile = receive(web.account.id, message("Hi", sender="Anna <anna@bakery.test>"))
    # a name as an older version or an import may have stored it, encoded line break and all
    Entry.update(from_name="Anna\r\nBcc: victim@evil.example =?utf-8?q?=0D=0AX-Y:_z?=").where(
        Entry.id == hostile.id
    ).execute()
    run_worker_jobs(settings)
    [(rcpts, mail)] = default_sink.take()
    assert rcpts == ["member@agency.test"]
    assert mail["Subject"] == "Bakery Miller: new mail from Anna Bcc: victim@evil.example X-Y: z"
    assert mail["Bcc"] is None and mail["X-Y"] is None and len(mail.get_all("Subject")) == 1

    receive(web.account.id, message("Menu", sender="rosa@cafe.test"))
    receive(web.account.id, message("Photos", sender="anna@bakery.test"))
    receive(web.account.id, message("Hello?", sender="anna@example.org"))
    run_worker_jobs(settings)
    [(_, grouped)] = default_sink.take()
    assert grouped["Subject"] == "3 updates in Café Rosa, Bakery Miller, Unassigned"

    receive(web.account.id, message("Who?", sender="anna@example.org"))
    run_worker_jobs(settings)
    [(_, single)] = default_sink.take()
    assert single["Subject"] == "Unassigned: new mail from anna@example.org"

    long_name = "Bakery " + "Miller " * 40
    domain_projects.update_project(bakery, None, name=long_name.strip()[:200])
    receive(web.account.id, message("Long", sender="A" * 300 + " <anna@bakery.test>"))
    run_worker_jobs(settings)
    [(_, bounded)] = default_sink.take()
    assert len(bounded["Subject"]) <= 150 and bounded["Subject"].startswith("Bakery Miller Miller")
    assert ": new mail from AAAA" in bounded["Subject"]


def test_many_projects_make_a_short_digest_subject(web, tmp_path, default_sink):
    settings = config(tmp_path, default_sink)
    member = web.users["member"]
    store.save_preferences(member.id, {"customer_mail": store.Preference(email=True, digest=True)})
    for number in range(12):
        project = domain_projects.create_project(
            web.account.id,
            f"Long project name number {number}",
            customer_addresses=[f"c{number}@customer.test"],
        )
        store.set_following(project.id, member.id, True)
        receive(web.account.id, message(f"Mail {number}", sender=f"c{number}@customer.test"))
    notify.process_events(settings)
    digest.send_digests(settings)
    [(_, mail)] = default_sink.take()
    assert mail["Subject"] == "Your daily postroom digest: 12 updates in 12 projects"


# --- Message-IDs: the sender's domain, never localhost ----------------------------------------
def with_ingest(settings: Settings, **ingest) -> Settings:
    return dataclasses.replace(settings, ingest=dataclasses.replace(settings.ingest, **ingest))


def test_message_ids_use_the_senders_domain_and_never_localhost():
    base = Settings()
    local = with_ingest(base, domains=("localhost",), hostname="build-7")
    assert message_id_domain("hello@agency.example", local) == "agency.example"
    assert message_id_domain("no-reply@localhost", local) == FALLBACK_DOMAIN
    assert (
        message_id_domain(
            "no-reply@localhost", with_ingest(local, hostname="localhost.localdomain")
        )
        == FALLBACK_DOMAIN
    )
    assert (
        message_id_domain("no-reply@localhost", with_ingest(local, hostname="mx1.agency.example"))
        == "mx1.agency.example"
    )
    assert (
        message_id_domain(
            "x@localhost", with_ingest(local, domains=("localhost", "in.agency.example"))
        )
        == "in.agency.example"
    )
    assert message_id_domain("x@10.1.2.3", local) == FALLBACK_DOMAIN


def test_mail_to_customers_on_a_localhost_install_has_no_localhost_message_id(web, bakery):
    settings = with_ingest(
        web.app.config["POSTROOM_SETTINGS"], domains=("localhost",), hostname="mx1.agency.example"
    )
    entry = queue_message(
        bakery, web.users["member"], "anna@bakery.example", "Hi", "Text", settings=settings
    )
    assert Entry.get_by_id(entry.id).message_id.endswith("@mx1.agency.example")
    outbound = OutboundMessage.get(OutboundMessage.entry == entry.id)
    assert outbound.from_name == "Member (Agency)"  # the author, then the agency's name


def test_an_smtp_url_that_cannot_be_read_fails_the_job_and_the_mail_waits(
    web, tmp_path, default_sink
):
    settings = config(tmp_path, default_sink)
    bakery_followed_by_member(web)
    receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    notify.process_events(settings)
    broken = dataclasses.replace(
        settings, outbound=dataclasses.replace(settings.outbound, smtp_url="smtp://")
    )
    with pytest.raises(OutboundError, match="smtp_url"):
        notify.send_immediate(broken)  # the worker logs the failed job and tries again
    [row] = rows_of(web.users["member"])
    assert (row.email_due, row.emailed_at) == ("immediate", None)
    notify.send_immediate(settings)  # fixed: it goes
    [(rcpts, _)] = default_sink.take()
    assert rcpts == ["member@agency.test"]


def test_an_account_left_without_any_server_keeps_its_news_in_the_app(
    web, tmp_path, default_sink, agency_sink
):
    settings = config(tmp_path, default_sink, allow_port=agency_sink.port)
    agency_server(web.account.id, agency_sink.port)
    bakery_followed_by_member(web)
    receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    notify.process_events(settings)  # email due: the account has its own server
    remove_smtp(web.account.id)
    no_default = dataclasses.replace(
        settings, outbound=dataclasses.replace(settings.outbound, smtp_url="")
    )
    assert notify.send_immediate(no_default) is None
    [row] = rows_of(web.users["member"])
    assert (row.email_due, row.emailed_at, row.in_app) == (store.EMAIL_FAILED, None, True)
    assert agency_sink.mails == [] and default_sink.mails == []


def test_one_accounts_server_that_breaks_the_client_does_not_keep_other_accounts_waiting(
    web, tmp_path, default_sink
):
    """The first account's own server asks for a login its stored (non-ASCII) password cannot
    give over SMTP (smtplib refuses before sending anything): that account's mail waits, the
    next account's notification mail still goes out through the default, in the same run."""
    keeper = Sink(reserve_port())
    auth = Controller(
        keeper,
        hostname="127.0.0.1",
        port=keeper.port,
        auth_require_tls=False,
        authenticator=lambda *args: AuthResult(success=True),
    )
    auth.start()
    try:
        settings = config(tmp_path, default_sink, allow_port=keeper.port)
        save_account_smtp(
            web.account.id,
            host="127.0.0.1",
            port=keeper.port,
            security="none",
            username="team",
            password="pässwort",
            from_address="team@miller-agency.example",
            from_name="",
        )
        bakery_followed_by_member(web)
        receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
        other = create_account("Other agency")
        colleague = users.create_user(other.id, "eva@other.test", "member", "a long password 1")
        theirs = domain_projects.create_project(other.id, "Their project")
        store.set_following(theirs.id, colleague.id, True)
        domain_entries.add_manual_entry(
            theirs,
            users.create_user(other.id, "o@other.test", "owner", "a long password 2"),
            kind="note",
            text="@eva call?",
        )
        notify.process_events(settings)
        assert notify.mail_due(settings, "immediate", intro="News:") == 1
        [(rcpts, _mail)] = default_sink.take()
        assert rcpts == ["eva@other.test"]
        [row] = rows_of(web.users["member"])
        assert (row.email_due, row.emailed_at) == ("immediate", None)  # waits for a fix
        assert keeper.mails == []
    finally:
        auth.stop()
