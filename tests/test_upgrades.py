"""Upgrades through the `postroom` command: from the first schema with data in it to the
current one, and a database newer than this postroom refused at start (downgrade protection)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

from storage.db import _runner, check_schema, native_sql, open_database, pending_migrations

from .daemon import REPO_ROOT

FIRST = "0001_initial"
WHEN = dt.datetime(2026, 1, 5, 9, 30)


def _insert(db, table: str, **values) -> int:
    """Insert one row by plain SQL (the models are newer than the schema); return its id."""
    names = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join("?" * len(values))
    statement = native_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})')  # noqa: S608
    cursor = db.execute_sql(statement, list(values.values()))
    if "sha256" in values:
        return 0
    if hasattr(cursor, "lastrowid") and cursor.lastrowid:
        return cursor.lastrowid
    return db.execute_sql(f'SELECT max(id) FROM "{table}"').fetchone()[0]  # noqa: S608


def _entry(db, account: int, project: int | None, number: int, **more) -> int:
    entry = _insert(
        db,
        "entry",
        account_id=account,
        project_id=project,
        kind="inbound",
        status="open",
        route_reason="customer_address" if project else "no_match",
        candidates="[]",
        auto_submitted=False,
        is_bounce=False,
        is_list=False,
        subject=f"before upgrade {number}",
        from_address="anna@bakery.test",
        from_name="Anna",
        to_addresses='["team@agency.test"]',
        cc_addresses="[]",
        text=f"mail number {number}",
        html="",
        has_attachments=False,
        occurred_at=WHEN + dt.timedelta(minutes=number),
        received_at=WHEN,
        in_reply_to="",
        references="",
        message_id=f"<{number}@bakery.test>",
        **more,
    )
    _insert(db, "participant", entry_id=entry, role="from", address="anna@bakery.test", name="")
    return entry


def _first_schema_with_data(url: str) -> tuple[int, int]:
    """A database made by the oldest migration alone, holding an account, a project with a
    customer address, filed and unassigned entries and one received mail; (account, project)."""
    db = open_database(url)
    assert _runner(db).up(FIRST) == [FIRST]
    with db.atomic():
        account = _insert(db, "account", name="Agency", inbox_token="k3tok", created_at=WHEN)
        project = _insert(
            db,
            "project",
            account_id=account,
            name="Bakery",
            domain="bakery.test",
            status="active",
            contact_name="Anna",
            reply_token="r1",
            created_at=WHEN,
        )
        _insert(
            db,
            "customer_address",
            account_id=account,
            project_id=project,
            address="anna@bakery.test",
        )
        raw = b"Subject: before upgrade 0\r\n\r\nmail number 0"
        _insert(
            db,
            "raw_message",
            sha256="ab" * 32,
            size=len(raw),
            compression="none",
            data=raw,
            created_at=WHEN,
        )
        first = _entry(db, account, project, 0, raw_sha256="ab" * 32)
        _insert(
            db,
            "intake",
            queue_id="Q1",
            sha256="ab" * 32,
            account_id=account,
            recipient="inbox@in.example",
            mail_from="anna@bakery.test",
            peer="127.0.0.1:1",
            helo="mta",
            protocol="lmtp",
            received_at=WHEN,
            state="filed",
            entry_id=first,
        )
        for number in range(1, 5):
            _entry(db, account, project, number)
        for number in range(5, 7):
            _entry(db, account, None, number)
    db.close()
    return account, project


def _config(tmp_path, url: str):
    config = tmp_path / "postroom.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\nurl = "{url}"\n')
    return config


def _postroom(config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "postroom", "-c", str(config), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )


def test_migrate_from_the_first_schema_keeps_every_entry(db_url, tmp_path):
    account, project = _first_schema_with_data(db_url)
    config = _config(tmp_path, db_url)
    behind = _postroom(config, "entries", "list", "--json")
    assert behind.returncode != 0 and "run `postroom migrate`" in behind.stderr

    result = _postroom(config, "migrate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("applied: 0002_team_and_ui,")

    listed = _postroom(config, "entries", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert sorted(e["subject"] for e in entries) == [f"before upgrade {n}" for n in range(7)]
    assert {e["project_id"] for e in entries} == {project, None}
    assert sum(e["project_id"] == project for e in entries) == 5
    assert all(e["account_id"] == account for e in entries)
    # routed before 0011: a "legacy" decision, its old words shown as they were
    assert {e["route_reason"] for e in entries} == {"customer_address", "no_match"}
    assert {(e["route"]["rule"], e["route"]["detail"]) for e in entries} == {
        ("legacy", "customer_address"),
        ("legacy", "no_match"),
    }
    again = _postroom(config, "migrate")
    assert again.stdout.strip() == "schema is current"
    db = open_database(db_url)
    check_schema(db)
    assert pending_migrations(db) == []
    db.close()


def test_a_database_newer_than_this_postroom_is_refused_at_start(db_url, tmp_path):
    db = open_database(db_url)
    _runner(db).up()
    db.execute_sql(
        native_sql("INSERT INTO schema_migration (name, applied) VALUES (?, ?)"),
        ["9999_from_a_later_postroom", WHEN],
    )
    db.close()
    config = _config(tmp_path, db_url)
    for command in (["entries", "list"], ["ingest"], ["web"], ["worker"]):
        result = _postroom(config, *command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stderr.strip() == (
            "Error: the database has migrations this postroom does not know"
            " (9999_from_a_later_postroom): upgrade postroom"
        ), command
        assert "Traceback" not in result.stderr
