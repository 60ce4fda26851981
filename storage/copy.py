"""Copy every row from one database to another (SQLite to PostgreSQL, say), then verify."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable

from peewee import Database, PostgresqlDatabase

from storage.models import ALL_MODELS, Attachment, Entry, Participant, RawMessage

BATCH = 500


class CopyError(Exception):
    """The copy cannot start or did not come out equal; the message says why."""


def copy_database(
    source: Database, target: Database, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy all tables into an empty, migrated target; return rows per table."""
    counts: dict[str, int] = {}
    with target.bind_ctx(ALL_MODELS):
        filled = [m._meta.table_name for m in ALL_MODELS if m.select().exists()]
    if filled:
        raise CopyError(f"the target database is not empty (rows in {', '.join(filled)})")
    for model in ALL_MODELS:  # in dependency order
        copied = 0
        with source.bind_ctx(ALL_MODELS):
            query = model.select().order_by(*model._meta.get_primary_keys()).dicts()
            rows = query.iterator()
            batch: list[dict] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH:
                    copied += _insert(target, model, batch)
                    batch = []
                    if progress:
                        progress(model._meta.table_name, copied)
            if batch:
                copied += _insert(target, model, batch)
        counts[model._meta.table_name] = copied
        if progress:
            progress(model._meta.table_name, copied)
    if isinstance(target, PostgresqlDatabase):
        _reset_sequences(target)
    _rebuild_index(target)
    if isinstance(target, PostgresqlDatabase):
        # Freshly written tables have no visibility map yet: until autovacuum comes round,
        # every index-only scan of a search visits the table too (a search measured 875 ms
        # at 1,000,000 entries before, 37 ms after; docs/benchmarks.md).
        target.execute_sql("VACUUM ANALYZE")
    return counts


def _insert(target: Database, model, rows: list[dict]) -> int:
    with target.bind_ctx(ALL_MODELS), target.atomic():
        model.insert_many(rows).execute()
    return len(rows)


def _reset_sequences(target: Database) -> None:
    for model in ALL_MODELS:
        primary = model._meta.primary_key
        if primary is None or primary.field_type not in ("AUTO", "BIGAUTO"):
            continue
        table, column = model._meta.table_name, primary.column_name
        # names come from our models, never from input
        sequence = f"pg_get_serial_sequence('\"{table}\"', '{column}')"
        highest = f'(SELECT MAX("{column}") FROM "{table}")'  # noqa: S608
        statement = f"SELECT setval({sequence}, COALESCE({highest}, 0) + 1, false)"
        target.execute_sql(statement)


def _rebuild_index(target: Database) -> None:
    """Index every entry again on the target (the index tables differ between backends)."""
    from storage.models import database
    from storage.search import index_entry

    previous = database.obj
    database.initialize(target)
    try:
        for entry in Entry.select(Entry.id, Entry.subject, Entry.text).iterator():
            addresses = " ".join(
                p.address
                for p in Participant.select(Participant.address).where(
                    Participant.entry == entry.id
                )
            )
            names = " ".join(
                a.filename
                for a in Attachment.select(Attachment.filename).where(Attachment.entry == entry.id)
            )
            index_entry(
                entry.id,
                subject=entry.subject,
                body=entry.text,
                addresses=addresses,
                attachments=names,
            )
    finally:
        database.initialize(previous)


def fingerprint(db: Database) -> dict[str, object]:
    """Counts of every table and hashes of the raw messages and attachments, to compare."""
    with db.bind_ctx(ALL_MODELS):
        result: dict[str, object] = {m._meta.table_name: m.select().count() for m in ALL_MODELS}
        raw = hashlib.sha256()
        for row in RawMessage.select().order_by(RawMessage.sha256).iterator():
            data = bytes(row.data)
            data = zlib.decompress(data) if row.compression == "zlib" else data
            if hashlib.sha256(data).hexdigest() != row.sha256:
                raise CopyError(f"raw message {row.sha256} does not match its hash")
            raw.update(row.sha256.encode())
        files = hashlib.sha256()
        for row in Attachment.select().order_by(Attachment.id).iterator():
            if hashlib.sha256(bytes(row.data)).hexdigest() != row.sha256:
                raise CopyError(f"attachment {row.id} does not match its hash")
            files.update(f"{row.id}:{row.sha256}".encode())
        entries = hashlib.sha256()
        for row in Entry.select(Entry.id, Entry.subject, Entry.project).order_by(Entry.id):
            entries.update(f"{row.id}:{row.project_id}:{row.subject}".encode())
    result["raw_messages_sha256"] = raw.hexdigest()
    result["attachments_sha256"] = files.hexdigest()
    result["entries_sha256"] = entries.hexdigest()
    return result
