"""The storage layer on SQLite and PostgreSQL: schema, intake records, entries, search."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3

import pytest
from peewee import Table

from domain import projects as domain_projects
from storage import accounts, filing
from storage.accounts import new_token
from storage.db import (
    MIGRATIONS_DIR,
    SchemaError,
    check_schema,
    migrate,
    open_database,
    pending_migrations,
)
from storage.entries import list_entries
from storage.filing import AttachmentRecord, InboundRecord, file_inbound
from storage.intake import (
    claim_waiting,
    load_raw,
    load_raw_head,
    new_holder,
)
from storage.lookup import RoutingFacts
from storage.models import (
    Account,
    Correspondent,
    Entry,
    Event,
    Intake,
    Participant,
    RawMessage,
    database,
    utcnow,
)
from storage.projects import insert_address
from storage.search import search, search_entries
from tests.filing import file_record, record_intake

# the migrations after the last one these tests set up a database for
AFTER_7 = sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py") if p.stem > "0007_mail_store")


def old_account(name: str) -> Account:
    """An account stored as a schema of before 0015 stores it: the model's later columns
    (time zone, replaced tokens, what starts open) are left to the migrations that add them."""
    columns = {"name": name, "inbox_token": new_token(), "created_at": utcnow(), "signature": ""}
    Table("account", ("id", *columns)).bind(database).insert(**columns).execute()
    return Account.select(Account.id, Account.name).where(Account.name == name).get()


def test_the_correspondents_migration_fills_from_the_entries_already_stored(db_url):
    """A database of before 0005 finds its old senders with from: after the upgrade."""
    from storage.db import _runner

    db = open_database(db_url)
    _runner(db).up("0004_count_indexes")
    account = old_account("Agency")
    other = old_account("Other")
    ids = []
    for owner, sender, name in (
        (account, "anna@bakery.test", "Anna Schmidt"),
        (account, "anna@bakery.test", "Anna Schmidt"),
        (other, "bob@shop.test", ""),
    ):
        entry = Entry.create(account=owner.id, subject="hello")
        Participant.create(entry=entry.id, role="from", address=sender, name=name)
        Participant.create(entry=entry.id, role="to", address="team@agency.test")
        ids.append(entry.id)
    assert migrate(db) == ["0005_correspondents", "0006_sender_index", "0007_mail_store", *AFTER_7]
    rows = Correspondent.select().order_by(Correspondent.account, Correspondent.address)
    assert [(r.account_id, r.address, r.name) for r in rows] == [
        (account.id, "anna@bakery.test", "Anna Schmidt"),
        (account.id, "team@agency.test", ""),
        (other.id, "bob@shop.test", ""),
        (other.id, "team@agency.test", ""),
    ]
    assert [e.id for e in search(account.id, "from:schmidt").entries] == ids[1::-1]
    assert search(account.id, "from:bob").entries == []
    db.close()


def _database_before_the_mail_file(path, raw: bytes):
    """A SQLite database at migration 0006 holding one message, waiting: (db, account,
    intake, digest)."""
    from storage.db import _runner

    db = open_database(f"sqlite:///{path}")
    _runner(db).up("0006_sender_index")
    account = old_account("Agency")
    digest = hashlib.sha256(raw).hexdigest()
    RawMessage.create(sha256=digest, size=len(raw), compression="none", data=raw)
    waiting = Intake.create(queue_id="Q1", raw=digest, account=account.id, recipient="a@in.x")
    return db, account, waiting, digest


def test_the_mail_store_migration_moves_received_mail_into_its_own_file(tmp_path):
    """A SQLite database of before 0007 keeps its mail, now in postroom-mail.db."""
    raw = b"Subject: before the upgrade\r\n\r\nhello"
    db, account, waiting, digest = _database_before_the_mail_file(tmp_path / "postroom.db", raw)
    assert migrate(db) == ["0007_mail_store", *AFTER_7]
    db.close()
    with sqlite3.connect(tmp_path / "postroom-mail.db") as mail:
        assert mail.execute("SELECT id, sha256, state FROM intake").fetchall() == [
            (waiting.id, digest, "pending")
        ]
    with sqlite3.connect(tmp_path / "postroom.db") as main:
        tables = {r[0] for r in main.execute("SELECT name FROM sqlite_master")}
    assert not {"intake", "raw_message"} & tables
    db = open_database(f"sqlite:///{tmp_path / 'postroom.db'}")
    check_schema(db)
    assert load_raw(digest) == raw
    assert claim_waiting(new_holder()) == [waiting.id]
    assert record_intake(account.id, raw, recipient="b@in.x") == waiting.id + 1  # ids go on
    db.close()


def test_the_mail_store_migration_cut_short_after_its_copy_finishes_when_run_again(tmp_path):
    """A crash after the copy was committed, before the old tables were dropped: the next
    `postroom migrate` copies nothing twice and drops them."""
    import importlib.util

    from storage.db import MIGRATIONS_DIR

    spec = importlib.util.spec_from_file_location("m7", MIGRATIONS_DIR / "0007_mail_store.py")
    step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step)
    raw = b"Subject: copied once\r\n\r\nhello"
    db, _, _, digest = _database_before_the_mail_file(tmp_path / "postroom.db", raw)
    with db.atomic():  # the first of the migration's two steps, as if it then stopped
        for statement in step.TABLES:
            db.execute_sql(statement.format(s="mail"))
        for table, columns in step.COLUMNS.items():
            copy = f"INSERT INTO mail.{table} ({columns}) SELECT {columns} FROM {table}"  # noqa: S608
            db.execute_sql(copy)
    assert migrate(db) == ["0007_mail_store", *AFTER_7]
    assert db.execute_sql("SELECT count(*) FROM mail.intake").fetchone() == (1,)
    assert db.execute_sql("SELECT count(*) FROM mail.raw_message").fetchone() == (1,)
    main_tables = {r[0] for r in db.execute_sql("SELECT name FROM main.sqlite_master")}
    assert not {"intake", "raw_message"} & main_tables
    assert load_raw(digest) == raw
    db.close()


def test_a_missing_mail_file_is_named_instead_of_failing_on_every_message(tmp_path):
    path = tmp_path / "postroom.db"
    migrate(open_database(f"sqlite:///{path}"))
    database.close()
    (tmp_path / "postroom-mail.db").unlink()  # moved or restored without it
    db = open_database(f"sqlite:///{path}")
    with pytest.raises(SchemaError, match=r"postroom-mail\.db, is missing or empty: put it back"):
        check_schema(db)
    db.close()


def test_an_empty_database_is_refused_until_init_and_init_is_idempotent(db_url):
    db = open_database(db_url)
    with pytest.raises(SchemaError, match="postroom init"):
        check_schema(db)
    assert migrate(db) == [
        "0001_initial",
        "0002_team_and_ui",
        "0003_worker",
        "0004_count_indexes",
        "0005_correspondents",
        "0006_sender_index",
        "0007_mail_store",
        *AFTER_7,
    ]
    assert migrate(db) == []
    check_schema(db)
    assert pending_migrations(db) == []
    db.close()


def test_an_old_schema_names_the_command_that_fixes_it(storage_db, tmp_path, monkeypatch):
    import storage.db as storage_db_module

    newer = tmp_path / "migrations"
    newer.mkdir()
    for path in storage_db_module.MIGRATIONS_DIR.glob("*.py"):
        (newer / path.name).write_bytes(path.read_bytes())
    (newer / "9999_future.py").write_text("def up(migrator, db):\n    pass\n")
    monkeypatch.setattr(storage_db_module, "MIGRATIONS_DIR", newer)
    with pytest.raises(SchemaError, match="postroom migrate"):
        check_schema(storage_db)


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'postroom.db'}")
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute_sql("PRAGMA mail.journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA mail.synchronous").fetchone()[0] == 2
    db.close()


def test_sqlite_keeps_received_mail_in_a_file_the_main_lock_does_not_hold_up(tmp_path):
    """The listener's commits go to postroom-mail.db: a writer holding the main file's lock
    (filing entries, say) does not make them wait."""
    path = tmp_path / "postroom.db"
    db = open_database(f"sqlite:///{path}", busy_timeout_ms=100)
    migrate(db)
    account = accounts.create_account("Agency")
    tables = "SELECT name FROM {}.sqlite_master WHERE type = 'table' ORDER BY name"
    mail = ["ingest_lease", "intake", "raw_message"]
    assert [r[0] for r in db.execute_sql(tables.format("mail"))] == mail
    assert not set(mail) & {r[0] for r in db.execute_sql(tables.format("main"))}
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the main file's write lock
    try:
        intake_id = record_intake(account.id, b"Subject: while entries are written\r\n\r\nhi")
    finally:
        blocker.rollback()
        blocker.close()
    assert claim_waiting(new_holder()) == [intake_id]
    with sqlite3.connect(tmp_path / "postroom-mail.db") as mail:
        assert mail.execute("SELECT id, state FROM intake").fetchall() == [(intake_id, "pending")]
    db.close()


def test_intakes_whose_done_mark_was_lost_are_marked_done_without_a_second_entry(storage_db):
    """On SQLite entries and the intakes' "done" are two commits (two files); a crash in
    between leaves the intakes pending, and filing them again only marks them done."""
    account = accounts.create_account("Agency")
    first, copy = (
        record_intake(account.id, b"question"),
        record_intake(account.id, b"question", recipient="b@in.x"),
    )
    record = InboundRecord(project_id=None, route_rule="unknown_sender")
    filed = file_inbound([(first, record), (copy, record)])
    Intake.update(state="pending", entry=None).execute()  # the done mark that was lost
    again = file_inbound([(first, record), (copy, record)])
    assert [(f.intake_id, f.entry_id, f.new) for f in again] == [
        (first, filed[0].entry_id, False),
        (copy, filed[0].entry_id, False),
    ]
    assert Entry.select().count() == 1
    assert {(i.state, i.entry_id) for i in Intake.select()} == {("done", filed[0].entry_id)}


def test_the_raw_message_is_kept_compressed_and_a_repeat_is_recorded_once(storage_db):
    account = accounts.create_account("Agency")
    raw = b"Subject: hi\r\n\r\n" + b"the same words again " * 500
    first = record_intake(account.id, raw)
    again = record_intake(account.id, raw)
    other_rcpt = record_intake(account.id, raw, recipient="other@in.example")
    assert first == again != other_rcpt
    row = RawMessage.get()
    assert len(bytes(row.data)) < len(raw) / 5
    assert load_raw(row.sha256) == raw
    assert Intake.select().count() == 2
    assert claim_waiting(new_holder()) == [first, other_rcpt]


def test_the_head_of_a_big_raw_message_is_read_alone(storage_db):
    account = accounts.create_account("Agency")
    head = b"Received: from mx by postroom; Thu, 26 Nov 2026 10:12:00 +0000\r\n\r\n"
    body = os.urandom(3 << 20)  # does not compress: the stored blob is as big as the mail
    record_intake(account.id, head + body)
    row = RawMessage.get()
    assert load_raw_head(row.sha256) == (head + body)[: 64 << 10]
    assert load_raw_head(row.sha256, limit=10) == head[:10]
    assert load_raw_head("0" * 64) is None


def test_an_entry_is_stored_with_participants_attachments_and_an_event(storage_db):
    account = accounts.create_account("Agency")
    project = domain_projects.create_project(
        account.id, "Bakery", customer_addresses=["A@Bakery.test"]
    )
    intake_id = record_intake(account.id, b"raw")
    record = InboundRecord(
        project_id=project.id,
        route_rule="sender",
        route_detail="a@bakery.test",
        category="customer",
        subject="Grüße aus der Bäckerei",
        from_address="A@Bakery.test",
        to=(("Team", "team@agency.test"),),
        text="Bitte die Öffnungszeiten ändern",
        attachments=(AttachmentRecord("menu.pdf", "menu.pdf", "application/pdf", b"%PDF"),),
        message_id="abc@bakery.test",
    )
    entry = file_record(intake_id, record)
    assert entry.from_address == "a@bakery.test"
    assert (entry.route_rule, entry.route_detail, entry.category) == (
        "sender",
        "a@bakery.test",
        "customer",
    )
    assert entry.has_attachments
    assert entry.project_status == "lead"
    assert {p.role for p in entry.participants} == {"from", "to"}
    assert Event.get().kind == "customer_mail"
    assert Intake.get_by_id(intake_id).state == "done"
    # a second recipient of the same account reuses the entry
    second = record_intake(account.id, b"raw", recipient="second@in.example")
    assert file_record(second, record).id == entry.id
    assert Entry.select().count() == 1
    assert list_entries(account.id, project.id)[0].id == entry.id


def test_one_batch_files_a_reply_to_a_mail_of_the_same_batch_and_both_recipients(storage_db):
    account = accounts.create_account("Agency")
    project = domain_projects.create_project(account.id, "Bakery")
    first, copy = (
        record_intake(account.id, b"question"),
        record_intake(account.id, b"question", recipient="b@in.x"),
    )
    reply = record_intake(account.id, b"answer")
    question = InboundRecord(
        project_id=project.id,
        route_rule="sender",
        route_detail="anna@bakery.test",
        message_id="q@bakery.test",
        from_address="anna@bakery.test",
    )
    answer = InboundRecord(  # routed to the question's thread (domain.routing): id unknown yet
        project_id=project.id,
        route_rule="thread",
        joins="q@bakery.test",
        in_reply_to=("q@bakery.test",),
        from_address="paul@else.test",
    )
    filed = file_inbound([(first, question), (copy, question), (reply, answer)])
    assert [(f.intake_id, f.new) for f in filed] == [(first, True), (copy, False), (reply, True)]
    assert filed[0].entry_id == filed[1].entry_id != filed[2].entry_id
    answered = Entry.get_by_id(filed[2].entry_id)
    assert answered.project_id == project.id
    assert (answered.route_rule, answered.route_detail) == ("thread", str(filed[0].entry_id))
    assert (filed[2].route_rule, filed[2].route_detail) == ("thread", str(filed[0].entry_id))
    assert {i.state for i in Intake.select()} == {"done"}
    assert [p.entry_id for p in Participant.select().order_by(Participant.id)] == [
        filed[0].entry_id,
        filed[2].entry_id,
    ]


def test_a_batch_filed_by_another_process_meanwhile_is_worked_out_again(storage_db, monkeypatch):
    """Between working a batch out and taking the lock, another process filed one of it."""
    account = accounts.create_account("Agency")
    early, late = record_intake(account.id, b"one"), record_intake(account.id, b"two")
    record = InboundRecord(project_id=None, route_rule="unknown_sender")
    plan = filing._plan

    def plan_then_file_elsewhere(items, cursor):
        made = plan(items, cursor)
        if len(items) == 2:  # the other process: files the first intake on its own
            monkeypatch.setattr(filing, "_plan", plan)
            [elsewhere] = filing.file_inbound([items[0]])
            assert elsewhere.new
        return made

    monkeypatch.setattr(filing, "_plan", plan_then_file_elsewhere)
    filed = filing.file_inbound([(early, record), (late, record)])
    assert [f.intake_id for f in filed] == [late]  # the first was done when the lock was taken
    assert Entry.select().count() == 2
    assert {i.state for i in Intake.select()} == {"done"}


def test_search_finds_words_in_subject_body_addresses_and_attachment_names(storage_db):
    account = accounts.create_account("Agency")
    other = accounts.create_account("Other")

    def store(subject, text, sender, when, attachment=None, account_id=account.id):
        intake_id = record_intake(account_id, subject.encode() + text.encode())
        files = (
            (AttachmentRecord(attachment, attachment, "text/plain", b"x"),) if attachment else ()
        )
        return file_record(
            intake_id,
            InboundRecord(
                project_id=None,
                route_rule="unknown_sender",
                subject=subject,
                text=text,
                from_address=sender,
                occurred_at=when,
                attachments=tuple(files),
            ),
        ).id

    nov = dt.datetime(2026, 11, 20)
    dec = dt.datetime(2026, 12, 5)
    hours = store("Opening hours", "Please change the opening hours", "anna@bakery.test", nov)
    logo = store("New logo", "Attached the logo", "bob@shop.test", dec, "logo-final.svg")
    store("Opening hours", "same words, other account", "x@y.test", nov, account_id=other.id)

    def ids(words, **kw):
        return [e.id for e in search_entries(account.id, words, **kw)]

    assert ids("opening hours") == [hours]
    assert ids("OPENING") == [hours]
    assert ids("logo") == [logo]
    assert ids("logo-final.svg") == [logo]
    assert ids("bakery") == [hours]
    assert ids("hours logo") == []
    assert ids("") == [logo, hours]
    assert ids("", after=dt.datetime(2026, 12, 1)) == [logo]
    assert ids("", before=dt.datetime(2026, 12, 1)) == [hours]
    assert ids('"quoted" words:with*specials') == []


def test_routing_lookups_ignore_case_and_archived_projects(storage_db):
    account = accounts.create_account("Agency")
    live = domain_projects.create_project(
        account.id, "Live", customer_addresses=["anna@bakery.test"]
    )
    old = domain_projects.create_project(account.id, "Old", status="archived")
    # an address on two projects, as the command line could store it before the one rule
    insert_address(old, "anna@bakery.test", "customer")
    facts = RoutingFacts({(account.id, "ANNA@bakery.test")}, set())
    assert facts.projects_with_address(account.id, "ANNA@bakery.test") == [live.id]
    assert facts.projects_with_domain(account.id, "bakery.test") == [live.id]
    elsewhere = RoutingFacts({(account.id + 1, "anna@bakery.test")}, set())
    assert elsewhere.projects_with_address(account.id + 1, "anna@bakery.test") == []


def test_postgresql_connections_are_pooled_to_the_configured_size(pg_url):
    import threading

    from playhouse.pool import PooledPostgresqlDatabase

    db = open_database(pg_url, pool_size=2)
    assert isinstance(db, PooledPostgresqlDatabase)
    migrate(db)
    accounts.create_account("Agency")
    seen = []

    def query():
        seen.append(Entry.select().count())
        db.close()  # hand the connection back to the pool

    threads = [threading.Thread(target=query) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [0] * 6
    assert len(db._in_use) + len(db._connections) <= 2
    db.close_all()


def test_an_entry_of_distinct_words_in_every_field_is_indexed_within_postgresqls_limit(storage_db):
    """Text of distinct short words (CJK letters, long 4-byte addresses) makes up to 3 bytes of
    tsvector per byte; PostgreSQL refuses one over 1 MB, which once left the mail unfiled."""
    account = accounts.create_account("Agency")
    cjk = " ".join(chr(0x4E00 + i // 150) + chr(0x4E00 + i % 150) for i in range(100_000))
    wide = "名" * 200

    def many(tag: str) -> tuple[tuple[str, str], ...]:
        return tuple((f"{wide}{tag}{i}", f"{wide}{tag}{i}@x.test") for i in range(200))

    record = InboundRecord(
        project_id=None,
        route_rule="unknown_sender",
        subject="Zeitplan " + cjk[:990],
        text="Anfang " + cjk,
        from_address="anna@bakery.test",
        to=many("t"),
        cc=many("c"),
        reply_to=many("r"),
        occurred_at=dt.datetime(2026, 12, 1),
    )
    entry = file_record(record_intake(account.id, b"Subject: big\r\n\r\nx"), record)
    assert Entry.get_by_id(entry.id).text == record.text  # the entry keeps all of it
    assert [e.id for e in search_entries(account.id, "anfang")] == [entry.id]
    assert [e.id for e in search_entries(account.id, "zeitplan")] == [entry.id]
