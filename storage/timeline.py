"""The lists of entries the team works from: Tickets, unassigned mail, a project's timeline
(the "Protokoll" of the UI), their counts, and one entry of an account."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from peewee import fn

from storage.db import is_sqlite
from storage.models import MAX_ID, Entry, Intake, Project, database
from storage.search import search

if TYPE_CHECKING:
    from storage.query import SearchQuery
    from storage.search import SearchPage


def entry_of_account(account_id: int, entry_id: int) -> Entry | None:
    if not 0 < entry_id <= MAX_ID:
        return None
    return Entry.get_or_none((Entry.id == entry_id) & (Entry.account == account_id))


def tickets(account_id: int, limit: int = 50, before: tuple | None = None) -> list[Entry]:
    """Open entries filed under a project, newest first."""
    query = (
        Entry.select(Entry, Project)
        .join(Project)
        .where(
            (Entry.account == account_id) & (Entry.status == "open") & (Entry.spam == False)  # noqa: E712
        )
    )
    return list(_page(query, limit, before))


def unassigned(account_id: int, limit: int = 50, before: tuple | None = None) -> list[Entry]:
    """Mail that matched no project, newest first (spam left out)."""
    query = Entry.select().where(
        (Entry.account == account_id) & Entry.project.is_null() & (Entry.spam == False)  # noqa: E712
    )
    return list(_page(query, limit, before))


def _page(query, limit: int, before: tuple | None):
    if before is not None:
        when, entry_id = before
        query = query.where(
            (Entry.occurred_at < when) | ((Entry.occurred_at == when) & (Entry.id < entry_id))
        )
    return query.order_by(Entry.occurred_at.desc(), Entry.id.desc()).limit(limit)


def timeline_page(
    account_id: int,
    project_id: int,
    query: SearchQuery | str,
    *,
    categories: tuple[str, ...] = (),
    limit: int = 50,
    before_key: tuple | None = None,
    zone: dt.tzinfo = dt.UTC,
) -> SearchPage:
    """One page of a project's timeline, optionally of some entry categories only; dates in
    the query are days of zone."""
    return search(
        account_id,
        query,
        project_id=project_id,
        limit=limit,
        before_key=before_key,
        categories=categories,
        zone=zone,
    )


def intakes_of_entry(entry_id: int) -> list[Intake]:
    """The deliveries that produced an entry (one per recipient), oldest first."""
    return list(Intake.select().where(Intake.entry == entry_id).order_by(Intake.id))


# --- counts --------------------------------------------------------------------------------
# The navigation shows counts on every page; counting stops here, so a page costs the same
# at a hundred open entries as at a million (the view shows "999+").
COUNT_LIMIT = 1000
# Predicates and names of the partial indexes of migration 0004, which hold exactly the rows
# counted. SQLite's planner prefers a wider index for them (and then reads every row to check
# `spam`), so on SQLite the count names its index.
_OPEN_FILED = ("entry_open_filed", "status = 'open' AND project_id IS NOT NULL AND NOT spam")
_UNASSIGNED = ("entry_unassigned", "project_id IS NULL AND NOT spam")
# The Unassigned count means mail that waits for someone: done mail (an archive imported as
# done, mail ticked done without a project) stays on the page but is not counted. It reads
# the index on (account, project, status, occurred_at) (0002), where open unassigned mail is
# one range: entry_unassigned would read every done row of an imported archive on each page.
_WAITING_UNASSIGNED = (
    "entry_account_project_status",
    "project_id IS NULL AND status = 'open' AND NOT spam",
)


def open_ticket_count(account_id: int, limit: int | None = COUNT_LIMIT) -> int:
    """Count open filed entries, at most `limit` (None: all)."""
    return _count(_OPEN_FILED, account_id, limit)


def unassigned_count(
    account_id: int, limit: int | None = COUNT_LIMIT, *, waiting_only: bool = True
) -> int:
    """Count unassigned mail that waits (open; spam left out), at most `limit` (None: all).

    With waiting_only=False, count every row the Unassigned page lists (done mail too)."""
    return _count(_WAITING_UNASSIGNED if waiting_only else _UNASSIGNED, account_id, limit)


def _count(partial_index: tuple[str, str], account_id: int, limit: int | None) -> int:
    """The number of the account's rows matching an index's predicate (index, predicate),
    reading at most `limit` of them."""
    index, predicate = partial_index
    hint = f"INDEXED BY {index}" if is_sqlite() else ""
    param = database.param
    rows = f"SELECT 1 FROM entry {hint} WHERE account_id = {param} AND {predicate}"  # noqa: S608
    params: list = [account_id]
    if limit is not None:
        rows += f" LIMIT {param}"
        params.append(limit)
    sql = f"SELECT COUNT(*) FROM ({rows}) AS counted"  # noqa: S608 - fixed pieces only, as above
    return database.execute_sql(sql, params).fetchone()[0]


def open_counts_by_project(account_id: int) -> dict[int, int]:
    """Number of open entries per project of the account (projects without any left out)."""
    rows = (
        Entry.select(Entry.project, fn.COUNT(Entry.id).alias("open"))
        .where(
            (Entry.account == account_id)
            & (Entry.status == "open")
            & Entry.project.is_null(False)
            & (Entry.spam == False)  # noqa: E712
        )
        .group_by(Entry.project)
        .tuples()
    )
    return dict(rows)
