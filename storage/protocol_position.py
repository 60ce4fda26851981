"""Where an entry stands in a project's protocol: the page that holds it, and the entries of a
filtered protocol for its bulk form.

A protocol page is a keyset page of storage.search.search (newest first, by occurred_at and
id, PAGE entries a page): page n starts after the (n-1)·PAGE-th entry. The entry's page is
found by counting the entries before it in that order, with the same search and filters the
page uses; the count stops at POSITION_LIMIT, so a link costs the same in a protocol of a
million entries (an entry further down opens a page that starts with it, unnumbered).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.models import Entry
from storage.search import _ORDER, _select

if TYPE_CHECKING:
    from storage.query import SearchQuery

# Entries counted before a linked one at most (200 pages of 50).
POSITION_LIMIT = 10_000


@dataclass(frozen=True)
class EntryPage:
    """The page of the protocol holding an entry: its number (1 = newest; None: further than
    POSITION_LIMIT, the page then starts with the entry) and the before_key it starts after
    (None: the newest page)."""

    number: int | None
    before_key: tuple | None


def _protocol(
    account_id: int,
    project_id: int,
    query: SearchQuery,
    categories: tuple[str, ...],
    zone: dt.tzinfo | None,
):
    """The protocol's entries matching query (its days those of zone) and categories."""
    days = {} if zone is None else {"zone": zone}
    select = _select(account_id, query, project_id=project_id, unassigned=False, **days)
    if categories:
        select = select.where(Entry.category.in_(list(categories)))
    return select


def page_of_entry(
    account_id: int,
    project_id: int,
    query: SearchQuery,
    entry: Entry,
    *,
    page_size: int,
    categories: tuple[str, ...] = (),
    zone: dt.tzinfo | None = None,
) -> EntryPage | None:
    """The protocol page (filtered by query and categories) that holds entry, or None when the
    entry is not in it (another project, or left out by the filters). zone: as the page's."""
    select = _protocol(account_id, project_id, query, categories, zone)
    if not select.where(Entry.id == entry.id).exists():
        return None
    when, entry_id = entry.occurred_at, entry.id
    newer = select.where(
        (Entry.occurred_at > when) | ((Entry.occurred_at == when) & (Entry.id > entry_id))
    )
    counted = newer.select(Entry.id).order_by().limit(POSITION_LIMIT).count()
    if counted >= POSITION_LIMIT:
        return EntryPage(None, (when, entry_id + 1))  # a page that starts with the entry
    index = counted // page_size
    if index == 0:
        return EntryPage(1, None)
    marker = (
        select.select(Entry.occurred_at, Entry.id)
        .order_by(*_ORDER)
        .offset(index * page_size - 1)
        .limit(1)
        .tuples()
    )
    return EntryPage(index + 1, tuple(marker[0]))


def matching_ids(
    account_id: int,
    project_id: int,
    query: SearchQuery,
    *,
    upto: int,
    limit: int,
    categories: tuple[str, ...] = (),
    zone: dt.tzinfo | None = None,
) -> list[int]:
    """Ids of the protocol's entries matching query and categories, up to id `upto`, at most
    `limit` of them (newest first): "select all N matching" of the protocol's bulk form."""
    select = _protocol(account_id, project_id, query, categories, zone).where(Entry.id <= upto)
    return [row[0] for row in select.select(Entry.id).limit(limit).tuples()]


def matching_count(
    account_id: int,
    project_id: int,
    query: SearchQuery,
    *,
    limit: int,
    categories: tuple[str, ...] = (),
    zone: dt.tzinfo | None = None,
) -> int:
    """How many entries the filtered protocol holds, counting no further than `limit`."""
    select = _protocol(account_id, project_id, query, categories, zone)
    return select.select(Entry.id).order_by().limit(limit).count()
