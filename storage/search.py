"""Full-text index and search over entries: SQLite FTS5 or PostgreSQL tsvector, one API."""

from __future__ import annotations

import datetime as dt

from peewee import SQL

from storage.db import is_postgres
from storage.models import Entry, database

# PostgreSQL refuses a tsvector over 1 MB; index the head of very long bodies only.
MAX_INDEXED_CHARS = 200_000


def index_entry(
    entry_id: int, *, subject: str, body: str, addresses: str, attachments: str
) -> None:
    """Add or replace the index row of an entry."""
    body = body[:MAX_INDEXED_CHARS]
    addresses = _expand_addresses(addresses)
    if is_postgres():
        database.execute_sql(
            "INSERT INTO entry_fts (entry_id, document) VALUES (%s, "
            "setweight(to_tsvector('simple', %s), 'A') || to_tsvector('simple', %s) || "
            "to_tsvector('simple', %s) || to_tsvector('simple', %s)) "
            "ON CONFLICT (entry_id) DO UPDATE SET document = EXCLUDED.document",
            (entry_id, subject, body, addresses, attachments),
        )
    else:
        unindex_entry(entry_id)
        database.execute_sql(
            "INSERT INTO entry_fts (rowid, subject, body, addresses, attachments)"
            " VALUES (?, ?, ?, ?, ?)",
            (entry_id, subject, body, addresses, attachments),
        )


def _expand_addresses(addresses: str) -> str:
    """Add each address's local part and domain words, so `bakery` finds anna@bakery.test."""
    words = []
    for address in addresses.split():
        local, _, domain = address.partition("@")
        words += [address, local, domain, *domain.split(".")]
    return " ".join(w for w in words if w)


def unindex_entry(entry_id: int) -> None:
    """Remove an entry's index row."""
    if is_postgres():
        database.execute_sql("DELETE FROM entry_fts WHERE entry_id = %s", (entry_id,))
    else:
        database.execute_sql("DELETE FROM entry_fts WHERE rowid = ?", (entry_id,))


def _fts5_query(words: str) -> str:
    tokens = [w for w in words.split() if w.strip('"')]
    return " ".join('"' + w.replace('"', '""') + '"' for w in tokens)


def search_entries(
    account_id: int,
    words: str = "",
    *,
    project_id: int | None = None,
    unassigned: bool = False,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    limit: int = 50,
) -> list[Entry]:
    """Return the account's entries containing all words, newest first, within a date range."""
    query = Entry.select().where(Entry.account == account_id)
    if words.strip():
        if is_postgres():
            match = SQL(
                "(SELECT entry_id FROM entry_fts WHERE document @@ plainto_tsquery('simple', %s))",
                [words],
            )
        else:
            match = SQL(
                "(SELECT rowid FROM entry_fts WHERE entry_fts MATCH ?)", [_fts5_query(words)]
            )
        query = query.where(Entry.id.in_(match))
    if project_id is not None:
        query = query.where(Entry.project == project_id)
    elif unassigned:
        query = query.where(Entry.project.is_null())
    if after is not None:
        query = query.where(Entry.occurred_at >= after)
    if before is not None:
        query = query.where(Entry.occurred_at < before)
    return list(query.order_by(Entry.occurred_at.desc(), Entry.id.desc()).limit(limit))
