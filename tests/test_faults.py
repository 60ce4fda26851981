"""Our own faults answer 4xx, so the MTA keeps the mail and retries; nothing is lost or doubled."""

from __future__ import annotations

import os
import sqlite3
from types import SimpleNamespace

import psycopg2
import pytest
from peewee import PeeweeException

from smtpd_ingest import pipeline
from smtpd_ingest.flow import process_intakes
from smtpd_ingest.parser_pool import InlineParser
from smtpd_ingest.pipeline import MAX_ATTEMPTS
from storage import accounts, filing
from storage.db import database_unavailable, is_sqlite, mail_store_path, open_database
from storage.intake import count_attempts
from storage.models import Entry, Intake, database
from storage.search import index_entries as real_index_entries
from tests.daemon import Daemon
from tests.filing import record_intake
from tests.mail import message


def intake_count(daemon: Daemon) -> int:
    db = open_database(daemon.db_url)
    try:
        return Intake.select().count()
    finally:
        db.close()


def hold_write_lock(db_url: str):
    """Open another connection that holds the database's write lock until closed."""
    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///") :]
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("ATTACH DATABASE ? AS mail", (str(mail_store_path(path)),))
        blocker.execute("BEGIN IMMEDIATE")  # locks both files
        return blocker
    blocker = psycopg2.connect(db_url)
    blocker.cursor().execute("LOCK TABLE intake IN EXCLUSIVE MODE")
    return blocker


def test_a_locked_database_gets_451_and_the_retry_is_stored_once(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    daemon.storage["busy_timeout_ms"] = 300
    with daemon:
        raw = message("Sent while the database is locked")
        blocker = hold_write_lock(db_url)
        try:
            code, reply = daemon.send(raw)
        finally:
            blocker.rollback() if hasattr(blocker, "rollback") else None
            blocker.close()
        assert (code, reply[:5]) == (451, b"4.3.0"), reply
        assert intake_count(daemon) == 0
        # the MTA retries once the lock is gone
        assert daemon.send(raw)[0] == 250
        assert daemon.send(raw)[0] == 250
        assert intake_count(daemon) == 1
        assert "451" in daemon.log_text()


def test_mail_is_accepted_while_the_main_file_is_locked_and_filed_once_it_is_free(tmp_path):
    """SQLite: the listener commits to the received-mail file, so a write lock held on the
    main file (the filing process writing entries, a long UI change, a sqlite3 shell) does
    not hold up a 250; the mail is filed when the lock is gone."""
    url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    daemon = Daemon(tmp_path, url)
    daemon.storage["busy_timeout_ms"] = 300
    with daemon:
        blocker = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the main file only
        try:
            code, reply = daemon.send(message("Sent while entries are being written"))
            assert (code, reply[:5]) == (250, b"2.0.0"), reply
            assert intake_count(daemon) == 1
        finally:
            blocker.rollback()
            blocker.close()
        entries = daemon.wait_for_entries(1)
        assert [e["subject"] for e in entries] == ["Sent while entries are being written"]


def test_a_full_database_gets_452_and_after_it_grows_the_same_mail_is_stored_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    daemon = Daemon(tmp_path, url)
    with daemon:
        daemon.stop()
        mail_file = mail_store_path(url[len("sqlite:///") :])  # where the listener writes
        pages = sqlite3.connect(mail_file).execute("PRAGMA page_count").fetchone()[0]
        daemon.storage["sqlite_max_page_count"] = pages + 20
        daemon.start()
        refused = None
        for number in range(200):
            body = f"{number} " + os.urandom(6000).hex()  # compresses to half, no better
            raw = message(f"Filling {number}", body=body)
            code, reply = daemon.send(raw)
            if code != 250:
                refused = raw
                break
        assert refused is not None, "the database never filled up"
        assert (code, reply[:5]) == (452, b"4.3.1"), reply
        stored_before = intake_count(daemon)
        # the operator makes room; the MTA's retry is accepted once
        daemon.stop()
        daemon.storage["sqlite_max_page_count"] = 0
        daemon.start()
        assert daemon.send(refused)[0] == 250
        assert daemon.send(refused)[0] == 250
        assert intake_count(daemon) == stored_before + 1


def test_mail_is_acknowledged_only_once_the_write_ahead_log_is_synced(tmp_path):
    """On SQLite the listener commits without an fsync and syncs the WAL file itself before
    each 250; a WAL that cannot be synced (here: removed by hand) gets 451, never 250."""
    url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    wal = tmp_path / "data" / "postroom-mail.db-wal"  # the listener commits to the mail file
    daemon = Daemon(tmp_path, url)
    with daemon:
        assert daemon.send(message("Before"))[0] == 250
        daemon.wait_processed()
        wal.unlink()
        raw = message("After the WAL was removed")
        code, reply = daemon.send(raw)
        assert (code, reply[:5]) == (451, b"4.3.0"), reply
        assert "syncing the write-ahead log" in daemon.log_text()
        # after a restart SQLite keeps a WAL again; the MTA's retry is accepted, and kept once
        daemon.stop()
        daemon.start()
        assert daemon.send(raw)[0] == 250
        assert daemon.send(raw)[0] == 250
        assert intake_count(daemon) == 2
        assert wal.exists()


# --- the database away or busy, or refusing one message's data --------------------------------


DATABASE_ERRORS = (sqlite3.Error, psycopg2.Error, PeeweeException)


def _lock_entries(db_url: str):
    """Another connection that holds the lock on the entries (not on the received mail)."""
    if db_url.startswith("sqlite:///"):
        blocker = sqlite3.connect(db_url[len("sqlite:///") :], isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the main file only: intakes stay writable
        return blocker
    blocker = psycopg2.connect(db_url)
    blocker.cursor().execute("LOCK TABLE entry IN EXCLUSIVE MODE")
    return blocker


def _lock_everything(db_url: str):
    if db_url.startswith("sqlite:///"):
        return hold_write_lock(db_url)
    blocker = psycopg2.connect(db_url)
    blocker.cursor().execute("LOCK TABLE entry, intake IN EXCLUSIVE MODE")
    return blocker


def _wait_briefly_for_locks(db_url: str) -> None:
    """This connection waits 50 ms for a lock (the retries, none), so that tests are quick."""
    if db_url.startswith("sqlite:///"):
        database.execute_sql("PRAGMA busy_timeout = 50")
    else:
        database.execute_sql("SET lock_timeout = 50")


def test_the_database_away_or_busy_is_told_from_data_it_refuses(storage_db, db_url):
    """database_unavailable, on errors the drivers really raise."""
    busy = _lock_everything(db_url)
    try:
        _wait_briefly_for_locks(db_url)
        with pytest.raises(DATABASE_ERRORS) as raised:
            count_attempts([1])  # "database is locked" / lock_not_available (55P03)
        locked = raised.value
    finally:
        busy.close()
    assert database_unavailable(locked), locked
    refused = []
    statements = [
        "SELECT json('{')",  # an OperationalError, "malformed JSON": the data's
        "SELECT zeroblob(2000000000)",
        "INSERT INTO intake (id) VALUES (NULL)",
    ]
    if not is_sqlite():
        statements = ["SELECT 1 / 0", "SELECT repeat('a', 3000)::tsvector", "SELECT 'x'::int"]
    for statement in statements:
        try:
            with database.atomic():
                database.execute_sql(statement)
        except DATABASE_ERRORS as error:
            refused.append(error)
    assert len(refused) == 3 and not any(database_unavailable(e) for e in refused), refused
    if is_sqlite():
        full = sqlite3.connect(":memory:")
        full.execute("PRAGMA max_page_count = 2")
        try:
            full.execute("CREATE TABLE t (x)")
            full.execute("INSERT INTO t VALUES (zeroblob(100000))")
        except sqlite3.Error as error:  # database or disk is full: defer, not the data's fault
            assert database_unavailable(error), error
        else:
            raise AssertionError("the page limit did not hold")
    else:
        try:
            psycopg2.connect("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
        except psycopg2.OperationalError as error:  # no server there: away
            assert database_unavailable(error), error


def test_a_busy_database_three_times_over_quarantines_no_mail(storage_db, db_url, monkeypatch):
    """Tries ended by a locked database are given back: the mail stays pending with no try
    counted, and is filed as usual once the lock is gone."""
    monkeypatch.setattr(pipeline, "RETRY_SECONDS", (0.0,))
    account = accounts.create_account("Agency")
    intake = record_intake(account.id, message("Innocent"))
    _wait_briefly_for_locks(db_url)
    blocker = _lock_entries(db_url)
    try:
        for _ in range(MAX_ATTEMPTS + 1):
            assert process_intakes([intake], InlineParser()) == []
            row = Intake.get_by_id(intake)
            assert (row.state, row.attempts) == ("pending", 0)
    finally:
        blocker.close()
    [filed] = process_intakes([intake], InlineParser())
    assert Entry.get_by_id(filed.entry_id).parse_error is None
    assert Intake.get_by_id(intake).attempts == 1


def test_a_try_given_back_while_the_database_is_away_is_not_counted_again(storage_db, db_url):
    account = accounts.create_account("Agency")
    intake = record_intake(account.id, message("Innocent"))
    tries = pipeline.Tries()
    tries.begin([intake])
    _wait_briefly_for_locks(db_url)
    blocker = _lock_everything(db_url)
    try:
        tries.give_back([intake])  # fails: the intakes are locked too
    finally:
        blocker.close()
    assert Intake.get_by_id(intake).attempts == 1
    tries.begin([intake])  # the next try starts on the one that could not be given back
    assert Intake.get_by_id(intake).attempts == 1
    tries.begin([intake])
    assert Intake.get_by_id(intake).attempts == 2


POISON = "refuse-me-" * 10


def _refuse_poison(monkeypatch) -> None:
    """The full-text index (the edge where a real mail met "string is too long for tsvector")
    makes the database refuse a message whose text holds POISON, with the driver's own error:
    ProgramLimitExceeded (54000) on PostgreSQL, "string or blob too big" on SQLite."""

    def index_entries(rows) -> None:
        if any(POISON in (row[2] or "") for row in rows):
            database.cursor().execute(
                "SELECT zeroblob(2000000000)"
                if is_sqlite()
                else "SELECT repeat('a', 3000)::tsvector"
            )
        real_index_entries(rows)

    monkeypatch.setattr(filing, "index_entries", index_entries)


def test_a_message_the_database_refuses_fails_alone_and_the_batch_is_filed(storage_db, monkeypatch):
    waits: list[float] = []  # retries: none, a refusal is not the database's state
    monkeypatch.setattr(pipeline, "time", SimpleNamespace(sleep=waits.append))
    _refuse_poison(monkeypatch)
    one, two, three = (accounts.create_account(name) for name in ("One", "Two", "Three"))
    ids = [
        record_intake(one.id, message("For one")),
        record_intake(two.id, message("Refused", body=f"text {POISON}")),
        record_intake(three.id, message("For three")),
    ]
    filed = process_intakes(ids, InlineParser())
    assert sorted(f.intake_id for f in filed) == ids and waits == []
    intakes = {i.id: i for i in Intake.select()}
    assert all((i.state, i.attempts) == ("done", 1) for i in intakes.values())
    entries = {e.subject: e for e in Entry.select()}
    assert entries["For one"].parse_error is None and entries["For three"].parse_error is None
    refused = entries["Refused"]  # filed raw, with the database's reason, for reprocess
    assert refused.account_id == two.id
    reason = (
        "DataError: string or blob too big"
        if is_sqlite()
        else ("ProgramLimitExceeded: word is too long (3000 bytes, max 2047 bytes)")
    )
    assert refused.parse_error == (
        f"quarantined: the database refused to file it ({reason}); stored raw, try again"
        " with `postroom reprocess`"
    )
