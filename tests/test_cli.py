"""The command line: import, reprocess, postfix-snippet, and refusing an outdated schema."""

from __future__ import annotations

import mailbox
import subprocess
import sys

from click.testing import CliRunner

from postroom.cli import main
from tests.daemon import Daemon
from tests.mail import message


def test_import_reads_mbox_maildir_and_eml_through_the_pipeline(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    account = daemon.create_account()
    project = daemon.create_project(account["id"], "Bakery", "anna@bakery.test")
    box = mailbox.mbox(tmp_path / "archive.mbox")
    for number in range(3):
        box.add(message(f"From the mbox {number}", sender="anna@bakery.test"))
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(message("From the maildir", sender="stranger@else.test"))
    eml = tmp_path / "single.eml"
    eml.write_bytes(message("From an eml file", sender="anna@bakery.test"))

    args = [str(tmp_path / "archive.mbox"), str(tmp_path / "Maildir"), str(eml)]
    result = daemon.cli("import", "--account", str(account["id"]), *args)
    assert "5 messages read, 5 new" in result.stdout
    assert "importing" in result.stderr  # the progress bar
    entries = daemon.entries()
    assert len(entries) == 5
    filed = {e["subject"] for e in entries if e["project_id"] == project["id"]}
    assert filed == {"From the mbox 0", "From the mbox 1", "From the mbox 2", "From an eml file"}
    # importing again stores nothing twice
    again = daemon.cli("import", "--account", str(account["id"]), *args)
    assert "5 messages read, 0 new" in again.stdout
    assert len(daemon.entries()) == 5


def test_reprocess_parses_again_what_failed(db_url, tmp_path):
    from storage.db import open_database
    from storage.models import Entry

    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    account = daemon.create_account()
    eml = tmp_path / "one.eml"
    eml.write_bytes(message("Parsed later"))
    daemon.cli("import", "--account", str(account["id"]), str(eml))
    db = open_database(db_url)
    Entry.update(parse_error="parsing took longer than 60 s", subject="").execute()
    db.close()
    result = daemon.cli("reprocess")
    assert "1 entries parsed again" in result.stdout
    [entry] = daemon.entries()
    assert entry["parse_error"] is None
    assert entry["subject"] == "Parsed later"


def test_postfix_snippet_names_the_lmtp_listener_for_each_domain(tmp_path):
    config = tmp_path / "postroom.toml"
    config.write_text(
        '[ingest]\nlmtp_listen = "unix:/run/postroom/lmtp.sock"\ndomains = ["in.example"]\n'
    )
    result = CliRunner().invoke(main, ["-c", str(config), "postfix-snippet"])  # in process
    assert result.exit_code == 0, result.output
    assert "transport_maps = hash:/etc/postfix/transport" in result.stdout
    assert "in.example    postroom-lmtp:unix:/run/postroom/lmtp.sock" in result.stdout
    assert "postroom-lmtp unix  -       -       n       -       -       lmtp" in result.stdout


def test_the_daemon_refuses_an_empty_or_old_database_and_names_the_fix(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    result = daemon.cli("ingest", check=False)
    assert result.returncode == 1
    assert "run `postroom init`" in result.stderr
    assert "Traceback" not in result.stderr


def test_user_create_set_password_and_token_create(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    daemon.account = daemon.create_account()
    created = daemon.create_user("Lead@Agency.test", role="admin")
    assert created["email"] == "lead@agency.test" and created["role"] == "admin"
    short = subprocess.run(
        [
            sys.executable,
            "-m",
            "postroom",
            "-c",
            str(daemon.config),
            "user",
            "set-password",
            "lead@agency.test",
            "--password-stdin",
        ],
        input="short\n",
        capture_output=True,
        text=True,
    )
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr
    assert "Traceback" not in short.stderr
    changed = subprocess.run(
        [
            sys.executable,
            "-m",
            "postroom",
            "-c",
            str(daemon.config),
            "user",
            "set-password",
            "lead@agency.test",
            "--password-stdin",
        ],
        input="a much longer password\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert "password of lead@agency.test changed" in changed.stdout
    token = daemon.cli_json("token", "create", "lead@agency.test")
    assert token["token"].startswith("prt_")

    from domain.tokens import user_for_token
    from postroom.auth import check_login
    from storage.db import open_database

    db = open_database(db_url)
    try:
        assert check_login("lead@agency.test", "a much longer password") is not None
        assert user_for_token(token["token"]).email == "lead@agency.test"
    finally:
        db.close()
