"""Housekeeping: SQLite backups that open and hold the same mail, and the purge of old spam."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from domain import entries as domain_entries
from domain import projects as domain_projects
from postroom.config import load_settings
from postroom.jobs import JobDeferred, backup, maintenance, retention
from storage import accounts
from storage.db import mail_store_path, migrate, open_database
from storage.intake import Delivery, IntakeBatchItem, record_batch
from storage.models import Activity, Entry, Intake, JobLease, RawMessage, utcnow
from storage.search import search_entries
from tests.filing import file_intake
from tests.mail import message

REPO_ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 11, 27, 12, 0)


def write_config(folder: Path, db_url: str, **sections: dict) -> Path:
    """A config file with the database URL and the given sections ({"storage": {...}, …})."""
    storage = {"url": db_url, "data_dir": str(folder / "data"), **sections.pop("storage", {})}
    lines = []
    for name, values in {"storage": storage, **sections}.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    config = folder / "postroom.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def deliver(
    account_id: int,
    raw: bytes,
    *,
    days_ago: float = 0,
    rcpt: str = "inbox@in.example",
    at: dt.datetime = NOW,
):
    """Receive mail as the daemon does (intake, parse, route, store), arrived `days_ago`."""
    digest = hashlib.sha256(raw).hexdigest()
    when = at - dt.timedelta(days=days_ago)
    delivery = Delivery(
        f"Q{digest[:8]}",
        account_id,
        rcpt,
        None,
        "bounce@else.test",
        "127.0.0.1:1",
        "mx",
        "lmtp",
        when,
    )
    [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))])
    return file_intake(recorded.intake_id)


@pytest.fixture
def sqlite_settings(tmp_path):
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'postroom.db'}", storage={"backup_keep": 3}
    )
    settings = load_settings(config)
    db = open_database(settings.storage.url)
    migrate(db)
    yield settings
    db.close()


def _with_mail(path: Path) -> sqlite3.Connection:
    """A connection to a SQLite database of postroom with its received-mail file attached."""
    connection = sqlite3.connect(path)
    connection.execute("ATTACH DATABASE ? AS mail", (str(mail_store_path(path)),))
    return connection


def _snapshot(connection: sqlite3.Connection) -> tuple:
    ids = [row[0] for row in connection.execute("SELECT id FROM entry ORDER BY id")]
    raws = {
        sha: hashlib.sha256(bytes(data)).hexdigest()
        for sha, data in connection.execute("SELECT sha256, data FROM raw_message")
    }
    return ids, raws


def test_a_backup_is_a_sqlite_file_holding_the_same_entries_and_raw_mail(sqlite_settings):
    account = accounts.create_account("Agency")
    for number in range(5):
        deliver(account.id, message(f"Mail {number}", body=f"body {number} " * 200))
    path = backup.make_backup(sqlite_settings, now=NOW)

    assert path == Path(sqlite_settings.storage.backup_dir) / "postroom-20261127-120000.db"
    assert path.with_name("postroom-20261127-120000-mail.db").is_file()  # the received mail
    copy = _with_mail(path)
    original = _with_mail(Path(sqlite_settings.storage.url.removeprefix("sqlite:///")))
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("PRAGMA mail.integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT count(*) FROM intake WHERE state = 'done'").fetchone() == (5,)
    assert copy.execute("SELECT count(*) FROM entry").fetchone() == (5,)
    assert _snapshot(copy) == _snapshot(original)
    assert copy.execute("SELECT count(*) FROM entry_fts WHERE entry_fts MATCH 'body'").fetchone()[0]
    assert list(path.parent.glob(".postroom-*")) == []  # no temporary file left
    copy.close()
    original.close()


def test_only_the_newest_backups_are_kept(sqlite_settings):
    folder = Path(sqlite_settings.storage.backup_dir)
    made = [backup.make_backup(sqlite_settings, now=NOW + dt.timedelta(hours=h)) for h in range(5)]
    again = backup.make_backup(sqlite_settings, now=NOW + dt.timedelta(hours=4))  # same second
    assert again.name == "postroom-20261127-160000-1.db"
    assert backup.backups_in(folder) == [made[3], made[4], again]  # keep = 3, oldest gone
    kept = {p.name for p in [made[3], made[4], again]}
    kept |= {mail_store_path(p).name for p in [made[3], made[4], again]}
    assert {p.name for p in folder.iterdir()} == kept  # each with its mail file, no other


def test_postroom_backup_prints_the_path_and_refuses_postgresql(db_url, tmp_path):
    config = write_config(tmp_path, db_url)
    command = [sys.executable, "-m", "postroom", "-c", str(config)]
    subprocess.run([*command, "init"], check=True, cwd=REPO_ROOT, capture_output=True)
    result = subprocess.run([*command, "backup"], cwd=REPO_ROOT, capture_output=True, text=True)
    if db_url.startswith("postgresql"):
        assert result.returncode == 1
        assert "PostgreSQL: back it up with pg_dump" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.parent == tmp_path / "data" / "backups" and path.name.startswith("postroom-")
    with sqlite3.connect(path) as copy:
        applied = copy.execute("SELECT count(*) FROM schema_migration").fetchone()[0]
    assert applied >= 3


def test_retention_purges_only_spam_older_than_spam_days_and_leaves_no_raw_orphans(
    storage_db, tmp_path
):
    settings = load_settings(
        write_config(tmp_path, "sqlite:///unused.db", retention={"spam_days": 30})
    )
    agency = accounts.create_account("Agency")
    other = accounts.create_account("Other agency")
    bakery = domain_projects.create_project(
        agency.id, "Bakery", customer_addresses=["anna@bakery.test"]
    )
    old_spam = deliver(agency.id, message("Pills", sender="spam@junk.test"), days_ago=40)
    domain_entries.discard_spam(old_spam, None, block="domain")
    blocked = deliver(agency.id, message("More pills", sender="x@junk.test"), days_ago=35)
    shared_raw = message("Win a prize", sender="prize@lottery.test")
    shared_spam = deliver(agency.id, shared_raw, days_ago=40)
    domain_entries.discard_spam(shared_spam, None)
    kept_elsewhere = deliver(other.id, shared_raw, days_ago=40, rcpt="other@in.example")
    new_spam = deliver(agency.id, message("Fresh pills", sender="y@junk.test"), days_ago=5)
    discarded_today = deliver(
        agency.id, message("Old but just now", sender="z@q.test"), days_ago=60
    )
    old_unassigned = deliver(agency.id, message("Who?", sender="who@else.test"), days_ago=400)
    old_filed = deliver(agency.id, message("Hours", sender="anna@bakery.test"), days_ago=400)
    assert blocked.spam and new_spam.spam and old_filed.project_id == bakery.id
    Activity.update(created_at=NOW - dt.timedelta(days=40)).execute()  # those discards were then
    domain_entries.discard_spam(discarded_today, None)

    summary = retention.purge(settings, now=NOW)

    left = {e.id for e in Entry.select()}
    assert left == {
        kept_elsewhere.id,
        new_spam.id,
        discarded_today.id,
        old_unassigned.id,
        old_filed.id,
    }
    assert summary.startswith("purged 3 spam entries, 2 raw messages")
    gone = [old_spam.raw_sha256, blocked.raw_sha256]
    assert not RawMessage.select().where(RawMessage.sha256.in_(gone)).exists()
    assert RawMessage.get_or_none(RawMessage.sha256 == kept_elsewhere.raw_sha256) is not None
    assert Intake.select().where(Intake.entry.is_null()).count() == 0
    used = {i.raw_id for i in Intake.select()} | {e.raw_sha256 for e in Entry.select()}
    assert {r.sha256 for r in RawMessage.select()} == used  # nothing orphaned, nothing missing
    assert retention.purge(settings, now=NOW) is None  # nothing more to do
    retention.purge(settings, now=NOW + dt.timedelta(days=40))  # time passes: all spam goes
    assert {e.id for e in Entry.select()} == {kept_elsewhere.id, old_unassigned.id, old_filed.id}


def test_the_index_is_optimised_only_when_mail_is_quiet_and_stale_leases_are_forgotten(
    sqlite_settings,
):
    account = accounts.create_account("Agency")
    now = utcnow()
    deliver(account.id, message("Just now"), at=now - dt.timedelta(minutes=1))
    JobLease.create(name="notify", holder="dead-host:1:abc", expires_at=now - dt.timedelta(hours=1))
    JobLease.create(
        name="renamed_job",
        expires_at=now - dt.timedelta(days=40),
        last_run_at=now - dt.timedelta(days=40),
    )
    with pytest.raises(JobDeferred, match="optimising when it is quiet"):
        maintenance.run(sqlite_settings, known_jobs={"notify"})
    assert JobLease.get_by_id("notify").holder == ""  # the dead worker's name is gone
    assert JobLease.get_or_none(JobLease.name == "renamed_job") is None

    Intake.update(received_at=now - dt.timedelta(minutes=maintenance.IDLE_MINUTES + 1)).execute()
    assert maintenance.run(sqlite_settings, known_jobs={"notify"}) == "search index optimised"
    assert search_entries(account.id, "just")  # the index still answers
