"""Archive import that does not flood the team (issue 17, acceptance 1): old mail is filed done,
imported mail never notifies, the summary counts filed, unassigned, already stored and failed,
and a second import of the same mbox stores nothing again."""

from __future__ import annotations

import datetime as dt
import mailbox
import subprocess
import sys
import uuid
from email.utils import format_datetime

from click.testing import CliRunner

from domain.accounts import create_account
from domain.archive import DEFAULT_CUTOFF_DAYS, cutoff_of, filed_done
from domain.projects import create_project
from postroom.cli import main
from postroom.config import load_settings
from postroom.jobs.notify import process_events
from smtpd_ingest.importer import ImportCounts, import_messages
from smtpd_ingest.parser_pool import InlineParser
from storage.accounts import inbox_local_part
from storage.models import Entry, Event, Notification
from storage.timeline import open_ticket_count, unassigned_count
from tests.daemon import Daemon
from tests.filing import receive

CUSTOMER = "anna@bakery.test"


def dated_mail(subject: str, sender: str, date: str | None) -> bytes:
    """A plain message from `sender` with that Date header (None: none at all)."""
    lines = [
        f"From: {sender}",
        "To: team@agency.test",
        f"Subject: {subject}",
        *([f"Date: {date}"] if date is not None else []),
        f"Message-ID: <{uuid.uuid4().hex}@archive.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"{subject}: please have a look.",
        "",
    ]
    return "\r\n".join(lines).encode()


def days_ago(days: float) -> str:
    """A Date header value `days` days before now."""
    return format_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=days))


def counts_in(db_url: str, account_id: int) -> dict[str, int]:
    """What the team sees and would be told of, read from the database as the pages do."""
    from storage.db import open_database

    db = open_database(db_url)
    try:
        return {
            "tickets": open_ticket_count(account_id, None),
            "unassigned": unassigned_count(account_id, None),
            "open": Entry.select().where(Entry.status == "open").count(),
            "entries": Entry.select().count(),
            "events": Event.select().count(),
            "notifications": Notification.select().count(),
        }
    finally:
        db.close()


def notify_now(daemon: Daemon) -> None:
    """Run the worker's notify job once against the daemon's database, as the worker does."""
    from storage.db import open_database

    db = open_database(daemon.db_url)
    try:
        process_events(load_settings(daemon.config))
    finally:
        db.close()


def test_an_archive_of_300_old_mails_adds_no_open_ticket_and_notifies_nobody(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    account = daemon.account = daemon.create_account()
    daemon.create_user("owner@agency.test", role="owner")
    daemon.create_user("member@agency.test")  # someone who would be told of every new mail
    daemon.create_project(account["id"], "Bakery", CUSTOMER)
    box = mailbox.mbox(tmp_path / "archive.mbox")
    for number in range(300):
        sender = CUSTOMER if number % 3 else f"stranger{number}@elsewhere.test"
        age = DEFAULT_CUTOFF_DAYS + 1 + number  # every one older than the cut-off
        box.add(dated_mail(f"Archived {number}", sender, days_ago(age)))
    box.close()
    before = counts_in(db_url, account["id"])
    args = ["import", "--account", str(account["id"]), str(tmp_path / "archive.mbox")]

    summary = daemon.cli_json(*args)

    assert {k: summary[k] for k in ("read", "filed", "unassigned", "already_stored", "failed")} == {
        "read": 300,
        "filed": 200,
        "unassigned": 100,
        "already_stored": 0,
        "failed": 0,
    }
    assert summary["done"] == 300 and summary["open"] == 0 and summary["as_done"] is False
    notify_now(daemon)
    after = counts_in(db_url, account["id"])
    assert after["entries"] == before["entries"] + 300
    assert after["tickets"] == before["tickets"] == 0  # no new open ticket
    assert after["open"] == before["open"]
    assert after["events"] == after["notifications"] == 0  # nobody is told

    again = daemon.cli(*args)
    assert (
        "300 messages read, 0 new: 0 filed, 0 unassigned, 300 already stored, 0 failed"
        in again.stdout
    )
    assert counts_in(db_url, account["id"]) == after


def test_import_help_states_the_cut_off_and_the_rule():
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "import", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(result.stdout.split())
    assert f"default: {DEFAULT_CUTOFF_DAYS} days" in text and "--as-done" in text
    assert "never notifies" in text and "without a usable date counts as new" in text


def test_the_age_rule():
    now = dt.datetime(2026, 12, 6, 12, 0)
    cutoff = cutoff_of(14, now)
    assert not filed_done(now - dt.timedelta(days=3), cutoff)
    assert filed_done(now - dt.timedelta(days=15), cutoff)
    assert not filed_done(None, cutoff)  # no usable date: new
    assert not filed_done(now - dt.timedelta(days=400), None)  # no cut-off
    assert filed_done(None, cutoff, as_done=True) and filed_done(now, cutoff, as_done=True)


def _import(account, mails: list[bytes], **options) -> ImportCounts:
    recipient = f"{inbox_local_part(account)}@in.example"
    named = ((f"mail-{number}", raw) for number, raw in enumerate(mails))
    total = ImportCounts()
    for batch in import_messages(account.id, recipient, named, InlineParser(), **options):
        total.add(batch)
    return total


def test_recent_mail_stays_open_with_the_default_cut_off_and_is_done_with_as_done(storage_db):
    account = create_account("Agency")
    project = create_project(account.id, "Bakery", customer_addresses=[CUSTOMER])
    cutoff = cutoff_of(DEFAULT_CUTOFF_DAYS, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    recent = dated_mail("Three days ago", CUSTOMER, days_ago(3))
    old = dated_mail("A month ago", CUSTOMER, days_ago(30))
    undated = dated_mail("No date", CUSTOMER, None)
    unusable = dated_mail("Bad date", CUSTOMER, "the day after tomorrow")

    counts = _import(account, [recent, old, undated, unusable], cutoff=cutoff)

    assert (counts.read, counts.filed, counts.done, counts.already_stored) == (4, 4, 1, 0)
    status = {e.subject: e.status for e in Entry.select()}
    assert status == {
        "Three days ago": "open",
        "A month ago": "done",
        "No date": "open",
        "Bad date": "open",
    }
    assert Entry.get(Entry.subject == "A month ago").done_at is not None
    assert open_ticket_count(account.id) == 3

    as_done = _import(
        account, [dated_mail("Also three days ago", CUSTOMER, days_ago(3))], as_done=True
    )
    assert (as_done.filed, as_done.done) == (1, 1)
    entry = Entry.get(Entry.subject == "Also three days ago")
    assert entry.status == "done" and entry.project_id == project.id
    assert Event.select().count() == 0  # imported mail writes no event: nobody is told

    live = receive(account.id, dated_mail("Live mail", CUSTOMER, days_ago(30)))
    assert live.status == "open"  # live mail is filed as before, whatever its date
    assert [e.kind for e in Event.select()] == ["customer_mail"]  # and it does notify


def test_a_second_import_skips_everything_as_already_stored(storage_db):
    account = create_account("Agency")
    mails = [dated_mail(f"Old {n}", f"someone{n}@else.test", days_ago(40)) for n in range(5)]
    first = _import(account, mails, as_done=True)
    assert (first.read, first.unassigned, first.done, first.failed) == (5, 5, 5, 0)
    second = _import(account, mails, as_done=True)
    assert (second.read, second.new, second.already_stored) == (5, 0, 5)
    assert Entry.select().count() == 5


def test_an_unreadable_source_counts_as_failed_and_the_rest_is_filed(storage_db):
    account = create_account("Agency")
    mails = [dated_mail("Readable", CUSTOMER, days_ago(1)), None]
    counts = _import(account, mails)  # None: what iter_messages yields for an unreadable file
    assert (counts.read, counts.unassigned, counts.failed) == (2, 1, 1)


def test_a_message_that_cannot_be_filed_is_counted_failed_and_kept_for_reprocess(
    storage_db, monkeypatch
):
    import smtpd_ingest.importer as importer
    from storage.models import Intake

    real = importer.file_inbound

    def refuse_poison(items, holder=None, **options):
        if any(record.subject == "Poison" for _, record in items):
            raise ValueError("cannot file this one")
        return real(items, holder, **options)

    monkeypatch.setattr(importer, "file_inbound", refuse_poison)
    account = create_account("Agency")
    mails = [dated_mail(name, CUSTOMER, days_ago(40)) for name in ("One", "Poison", "Two")]
    counts = _import(account, mails, as_done=True)
    assert (counts.read, counts.unassigned, counts.failed, counts.done) == (3, 2, 1, 2)
    assert sorted(e.subject for e in Entry.select()) == ["One", "Two"]
    [failed] = Intake.select().where(Intake.state == "failed")
    assert "cannot file this one" in failed.error and Event.select().count() == 0


def test_the_help_states_the_default_cut_off_the_domain_uses():
    shown = CliRunner().invoke(main, ["import", "--help"]).output
    words = " ".join(shown.split())
    assert f"filed done (default {DEFAULT_CUTOFF_DAYS})" in words
    assert f"(default: {DEFAULT_CUTOFF_DAYS} days)" in words
