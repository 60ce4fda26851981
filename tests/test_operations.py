"""Operating postroom: graceful stop, reload on SIGHUP, SQLite to PostgreSQL, backup and restore."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from storage.copy import fingerprint
from storage.db import make_database
from tests.conftest import PG_URL
from tests.daemon import Daemon
from tests.mail import message
from tests.test_smtp_session import read_reply


def open_data_session(daemon: Daemon) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", daemon.smtp_port))
    reader = sock.makefile("rb")
    read_reply(reader)
    for command in (
        b"EHLO c.test",
        b"MAIL FROM:<a@customer.test>",
        b"RCPT TO:<" + daemon.inbox.encode() + b">",
        b"DATA",
    ):
        sock.sendall(command + b"\r\n")
        read_reply(reader)
    return sock, reader


def test_sigterm_finishes_the_message_in_flight_then_answers_421(db_url, tmp_path):
    with Daemon(tmp_path, db_url) as daemon:
        idle = daemon.smtp()
        sock, reader = open_data_session(daemon)
        sock.sendall(b"Subject: in flight\r\n\r\nfirst half\r\n")
        daemon.process.send_signal(signal.SIGTERM)
        sock.sendall(b"second half\r\n.\r\n")
        assert read_reply(reader)[-1].startswith(b"250 2.0.0")
        rest = reader.read()  # until the daemon closes the session
        assert rest.rstrip().splitlines()[-1].startswith(b"421 4.3.2"), rest
        sock.close()
        daemon.process.wait(30)
        assert idle.sock.recv(1024).startswith(b"421 4.3.2")
        daemon.process = None
        daemon.start()
        [entry] = daemon.wait_for_entries(1)
        assert entry["subject"] == "in flight"


def test_sighup_takes_over_new_limits_and_names_what_needs_a_restart(db_url, tmp_path):
    with Daemon(tmp_path, db_url, max_recipients=1) as daemon:
        with daemon.smtp() as client:
            client.mail("a@customer.test")
            client.rcpt(daemon.inbox)
            assert client.rcpt(daemon.inbox)[0] == 452
        daemon.ingest["max_recipients"] = 3
        daemon.ingest["smtp_listen"] = "127.0.0.1:1"
        daemon.write_config()
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for_log("reloaded:")
        assert "restart to apply smtp_listen" in daemon.log_text()
        with daemon.smtp() as client:
            client.mail("a@customer.test")
            for _ in range(3):
                assert client.rcpt(daemon.inbox)[0] == 250


def test_sqlite_to_postgresql_copy_keeps_every_entry_attachment_and_raw_message(tmp_path):
    if not PG_URL:
        pytest.skip("needs POSTROOM_TEST_PG_URL")
    import uuid

    import psycopg2

    sqlite_url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    with Daemon(tmp_path, sqlite_url, command="run --demo") as daemon:
        daemon.wait_for_entries(4)
        daemon.account = daemon.cli_json("account", "list")[0]
        project = daemon.create_project(1, "Copy test", "copy@customer.test")
        daemon.send(message("With a file", sender="copy@customer.test"))
        daemon.wait_for_entries(5)
    name = f"postroom_copy_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    target = PG_URL.rpartition("/")[0] + "/" + name
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "postroom",
                "-c",
                str(daemon.config),
                "db",
                "copy",
                "--to",
                target,
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(result.stdout)
        assert report["equal"] is True
        before = fingerprint(make_database(sqlite_url))
        after = fingerprint(make_database(target))
        assert before == after
        assert before["entry"] >= 5 and before["attachment"] >= 1 and before["raw_message"] >= 5
        moved = Daemon(tmp_path / "pg", target)
        moved.account = daemon.account
        with moved:
            listed = moved.entries()
            assert {e["id"] for e in listed} == {e["id"] for e in daemon.entries()}
            assert moved.send(message("After the move", sender="copy@customer.test"))[0] == 250
            latest = moved.wait_for_entries(len(listed) + 1)
            [moved_mail] = [e for e in latest if e["subject"] == "After the move"]
            assert moved_mail["project_id"] == project["id"]
            assert moved_mail["id"] > max(e["id"] for e in listed)  # sequences continue
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_backup_restored_into_an_empty_data_folder_starts_with_the_same_entries(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    with Daemon(tmp_path, url) as daemon:
        for number in range(3):
            daemon.send(message(f"Before the backup {number}"))
        entries = daemon.wait_for_entries(3)
        result = daemon.cli("backup")
    backup = result.stdout.strip().splitlines()[-1].split()[-1]
    restored_dir = tmp_path / "restored" / "data"
    restored_dir.mkdir(parents=True)
    shutil.copy(backup, restored_dir / "postroom.db")  # and its received mail beside it:
    shutil.copy(backup.removesuffix(".db") + "-mail.db", restored_dir / "postroom-mail.db")
    restored = Daemon(tmp_path / "restored", f"sqlite:///{restored_dir / 'postroom.db'}")
    restored.account = daemon.account
    with restored:
        assert restored.entries() == entries
        assert restored.send(message("After the restore"))[0] == 250
        assert len(restored.wait_for_entries(4)) == 4
