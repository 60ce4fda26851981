"""Our own faults answer 4xx, so the MTA keeps the mail and retries; nothing is lost or doubled."""

from __future__ import annotations

import os
import sqlite3

import psycopg2

from storage.db import mail_store_path, open_database
from storage.models import Intake
from tests.daemon import Daemon
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
