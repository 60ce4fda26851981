"""Keep the database tidy: purge old spam and outbox rows, optimise the index, back up SQLite.

Each function does one small, bounded piece of work in short transactions, so ingest keeps its
write lock waits short (SQLite) while the worker cleans up.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from peewee import fn

from storage.db import MAIL_SCHEMA, is_sqlite, mail_store_path, write_transaction
from storage.models import Activity, Entry, Event, Intake, RawMessage, database
from storage.search import unindex_entry

PURGE_BATCH = 200


@dataclass(frozen=True)
class Purged:
    entries: int = 0
    raw_messages: int = 0


def purge_spam(cutoff: dt.datetime, batch: int = PURGE_BATCH) -> Purged:
    """Delete mail discarded as spam that arrived before `cutoff`, with what only it used.

    Only entries flagged spam are touched (never unassigned or filed mail); one discarded
    after the cutoff waits its full time from the discard. Their intake records go with them,
    then each raw message that no intake and no entry (of any account) still names.
    """
    entries = raws = 0
    while True:
        recently_discarded = Activity.select(Activity.entry).where(
            (Activity.action == "discarded")
            & (Activity.created_at >= cutoff)
            & Activity.entry.is_null(False)
        )
        ids = [
            entry_id
            for (entry_id,) in Entry.select(Entry.id)
            .where(
                (Entry.spam == True)  # noqa: E712
                & (Entry.kind == "inbound")
                & (Entry.received_at < cutoff)
                & Entry.id.not_in(recently_discarded)
            )
            .order_by(Entry.id)
            .limit(batch)
            .tuples()
        ]
        if not ids:
            return Purged(entries, raws)
        shas = {
            sha
            for (sha,) in Entry.select(Entry.raw_sha256)
            .where(Entry.id.in_(ids) & Entry.raw_sha256.is_null(False))
            .tuples()
        }
        # On SQLite the intakes and raw mail are another file, committed on its own: the
        # intakes go first, so that a crash leaves no intake naming a deleted entry (the
        # entries are still spam and go at the next run).
        with write_transaction(MAIL_SCHEMA):
            of_intakes = Intake.select(Intake.raw).where(Intake.entry.in_(ids)).tuples()
            shas |= {sha for (sha,) in of_intakes}
            Intake.delete().where(Intake.entry.in_(ids)).execute()
        with write_transaction():
            for entry_id in ids:
                unindex_entry(entry_id)
            entries += Entry.delete().where(Entry.id.in_(ids)).execute()
        with write_transaction(MAIL_SCHEMA):
            raws += delete_unused_raw(shas)


def delete_unused_raw(shas: set[str]) -> int:
    """Delete those raw messages that no intake and no entry refers to any more."""
    if not shas:
        return 0
    still_used = Intake.select(Intake.raw).where(Intake.raw.in_(shas))
    named = Entry.select(Entry.raw_sha256).where(Entry.raw_sha256.in_(shas))
    return (
        RawMessage.delete()
        .where(
            RawMessage.sha256.in_(shas)
            & RawMessage.sha256.not_in(still_used)
            & RawMessage.sha256.not_in(named)
        )
        .execute()
    )


def purge_processed_events(cutoff: dt.datetime, batch: int = 1000) -> int:
    """Delete outbox rows handled before `cutoff`; their notifications go with them."""
    deleted = 0
    while True:
        ids = Event.select(Event.id).where(Event.processed_at < cutoff).limit(batch)
        with write_transaction():
            count = Event.delete().where(Event.id.in_(ids)).execute()
        deleted += count
        if count < batch:
            return deleted


def last_intake_at() -> dt.datetime | None:
    """When the newest delivery arrived (None: never)."""
    return Intake.select(fn.MAX(Intake.received_at)).scalar()


def optimise_search_index() -> bool:
    """Merge the SQLite FTS5 index into one b-tree and refresh planner statistics.

    Heavy on a large index (it rewrites it): call only while no mail arrives. PostgreSQL's
    autovacuum looks after its own index, so there this does nothing and returns False.
    """
    if not is_sqlite():
        return False
    with write_transaction():
        database.execute_sql("INSERT INTO entry_fts(entry_fts) VALUES('optimize')")
    database.execute_sql("PRAGMA optimize")
    return True


def backup_sqlite(target: Path) -> list[Path]:
    """Copy the open SQLite database to `target`, and its received-mail file next to it (as
    `mail_store_path(target)`), with SQLite's online backup; return the files written.

    Readers and writers carry on meanwhile (WAL). Both copies are one consistent snapshot: the
    copying connection reads both files in one transaction, which the backup steps use.
    """
    if not is_sqlite():
        raise RuntimeError("online backup is for SQLite only")
    main = Path(database.obj.database)
    files = [(target, "main"), (mail_store_path(target), MAIL_SCHEMA)]
    source = sqlite3.connect(str(main), isolation_level=None)
    try:
        source.execute(f"ATTACH DATABASE ? AS {MAIL_SCHEMA}", (str(mail_store_path(main)),))
        source.execute("BEGIN")
        # The snapshot of each file starts with its first read: the mail file's first. The
        # filing process commits entries (main) before it marks their intakes done (mail),
        # so every intake done in the copy has its entry in the copy too.
        for _, schema in reversed(files):
            source.execute(f"SELECT count(*) FROM {schema}.sqlite_master").fetchone()  # noqa: S608 - main or mail
        for path, schema in files:
            copy = sqlite3.connect(str(path))
            try:
                source.backup(copy, name=schema)
                copy.execute("PRAGMA journal_mode=DELETE")
                copy.commit()
            finally:
                copy.close()
        source.execute("COMMIT")
    finally:
        source.close()
    return [path for path, _ in files]
