"""Full-text index and search over entries: SQLite FTS5 or PostgreSQL tsvector, one API.

`search` runs a query in the syntax of storage.query on either backend with the same meaning.
German keywords (`von:`, `betreff:`, `ist:offen`, storage.query_aliases) are parsed into the
English terms, so nothing here knows the language a query was typed in.
User text never becomes SQL or match syntax: every word or phrase is one bound parameter, on
SQLite a double-quoted FTS5 string (a literal, whatever it contains), on PostgreSQL the input
of phraseto_tsquery('simple', …); addresses and names are matched with LIKE patterns whose
wildcards are escaped.

Known differences of the two indexes (tokenizers, not this module): SQLite folds diacritics
(`grusse` finds "Grüße" there, not on PostgreSQL), and PostgreSQL keeps file names, hosts
and URLs as one token each (`final` finds "logo-final.svg" on SQLite only).
"""

from __future__ import annotations

import datetime as dt
import operator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce

from peewee import SQL, NodeList, Value, fn

from storage.db import is_postgres, native_sql
from storage.models import Correspondent, Entry, Participant, Project, database
from storage.query import TEXT, SearchQuery, Term, parse_query

# PostgreSQL refuses a tsvector over 1 MB, and text of distinct short words (CJK letters, say)
# makes up to 3 bytes of tsvector per byte of UTF-8: the fields of one entry are indexed up to
# these many UTF-8 bytes (the head of a very long body; the stored entry keeps all of it).
MAX_INDEXED_BYTES = 300_000
FIELD_BYTES = {"subject": 8_000, "attachments": 16_000, "addresses": 64_000}


def _fit(subject: str, body: str, addresses: str, attachments: str) -> tuple[str, str, str, str]:
    """Cut the fields to the index budget, counted in UTF-8 bytes (the body gets the rest)."""
    subject = _head(subject, FIELD_BYTES["subject"])
    attachments = _head(attachments, FIELD_BYTES["attachments"])
    addresses = _head(_expand_addresses(addresses), FIELD_BYTES["addresses"])
    used = sum(len(field.encode()) for field in (subject, attachments, addresses))
    return subject, _head(body, MAX_INDEXED_BYTES - used), addresses, attachments


def _head(text: str, limit: int) -> str:
    """The longest start of `text` that is at most `limit` bytes of UTF-8."""
    if len(text) * 4 <= limit:
        return text
    return text.encode()[:limit].decode("utf-8", "ignore")


def index_entry(
    entry_id: int, *, subject: str, body: str, addresses: str, attachments: str
) -> None:
    """Add or replace the index row of an entry."""
    subject, body, addresses, attachments = _fit(subject, body, addresses, attachments)
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


def index_entries(rows) -> None:
    """Index many new entries at once: rows of (entry_id, subject, body, addresses, attachments).

    For bulk loads (imports, benchmarks) of entries that have no index row yet; one statement
    per backend call instead of one per entry.
    """
    rows = [(entry_id, *_fit(*fields)) for entry_id, *fields in rows]
    if not rows:
        return
    if is_postgres():
        columns = [list(column) for column in zip(*rows, strict=True)]
        database.execute_sql(
            "INSERT INTO entry_fts (entry_id, document) SELECT i, "
            "setweight(to_tsvector('simple', s), 'A') || to_tsvector('simple', b) || "
            "to_tsvector('simple', a) || to_tsvector('simple', f) "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])"
            " AS r(i, s, b, a, f)",
            columns,
        )
    else:
        database.cursor().executemany(
            "INSERT INTO entry_fts (rowid, subject, body, addresses, attachments)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def remember_correspondents(rows) -> None:
    """Note the (account_id, address, name) rows of new participants as correspondents.

    Call it in the transaction that stores the participants. Rows go in sorted, so that two
    transactions adding the same correspondents take their locks in the same order.
    """
    rows = sorted({(account_id, address, name) for account_id, address, name in rows if address})
    if rows:
        database.cursor().executemany(
            native_sql(
                "INSERT INTO correspondent (account_id, address, name) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING"
            ),
            rows,
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


_ORDER = (Entry.occurred_at.desc(), Entry.id.desc())
ADDRESS_ROLES = {"from": ("from",), "to": ("to", "cc")}
MAX_LIMIT = 1000


@dataclass(frozen=True)
class SearchPage:
    """One page of results, newest first; next_key is the before_key of the next page."""

    entries: list[Entry]
    next_key: tuple | None


def search(
    account_id: int,
    query: SearchQuery | str,
    *,
    project_id: int | None = None,
    unassigned: bool = False,
    limit: int = 50,
    before_key: tuple | None = None,
    categories: tuple[str, ...] = (),
    zone: dt.tzinfo = dt.UTC,
) -> SearchPage:
    """Return a page of the account's entries matching query, by (occurred_at, id) descending.

    query is a SearchQuery or text to parse (which may raise QuerySyntaxError). project_id
    limits to one project, else unassigned=True to entries without one. before_key is the
    (occurred_at, id) of the last entry of the previous page (a datetime or its ISO text, an
    int): this page holds the entries strictly after it in the order. next_key is None on
    the last page. categories keeps entries of those categories (customer, partner, …).
    zone is the searcher's time zone: after:/before: name its days (local_day_start).
    """
    if isinstance(query, str):
        query = parse_query(query)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    with _serial_plans():
        return _search(
            account_id, query, project_id, unassigned, limit, before_key, categories, zone
        )


def _search(account_id, query, project_id, unassigned, limit, before_key, categories, zone):
    match = None if is_postgres() else _fts5_match(query)
    select = _select(
        account_id,
        query,
        project_id=project_id,
        unassigned=unassigned,
        fts5=match is None,
        zone=zone,
    )
    if categories:
        select = select.where(Entry.category.in_(list(categories)))
    if before_key is not None:
        select = _older_than(select, _key(before_key))
    rows = _fetch(select, limit + 1) if match is None else _fetch_fts5(select, match, limit + 1)
    if len(rows) <= limit:
        return SearchPage(rows, None)
    rows = rows[:limit]
    return SearchPage(rows, (rows[-1].occurred_at, rows[-1].id))


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
    """Return the account's entries containing all words, newest first, within a date range.

    The words are literal (no search syntax); `search` understands filters.
    """
    query = SearchQuery(tuple(Term(TEXT, word) for word in words.split()))
    select = _select(account_id, query, project_id=project_id, unassigned=unassigned)
    if after is not None:
        select = select.where(Entry.occurred_at >= after)
    if before is not None:
        select = select.where(Entry.occurred_at < before)
    with _serial_plans():
        return _fetch(select, limit)


@contextmanager
def _serial_plans():
    """On PostgreSQL, run a search's queries in a transaction whose plans start no workers.

    A page is the first 50 rows of an index walked in order; PostgreSQL's planner, costing
    the whole walk, chose Gather Merge with two parallel workers for it, and starting them
    took 20-50 ms on a busy machine (the walk itself 1-6 ms) - most of a search's time.
    SET LOCAL ends with the transaction.
    """
    if not is_postgres():
        yield
        return
    with database.atomic():
        database.execute_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def _fetch(select, limit: int) -> list[Entry]:
    """Rows of the first `limit` ids of select: the sort carries ids only, not whole rows."""
    page = select.select(Entry.id).limit(limit)
    return list(Entry.select().where(Entry.id.in_(page)).order_by(*_ORDER))


def _older_than(select, key: tuple[dt.datetime, int]):
    """The rows of select after key in the order (occurred_at, id) descending."""
    when, entry_id = key
    return select.where(
        (Entry.occurred_at <= when) & ((Entry.occurred_at < when) | (Entry.id < entry_id))
    )


# A word with fewer matches than this in the whole index is searched from its matches;
# a commoner one from the newest rows of the scope, a window at a time (_fetch_fts5).
FEW_MATCHES = 2_000
FIRST_WINDOW = 250
WINDOW_GROWTH = 8
WINDOWS = 2


def _fetch_fts5(select, match: str, limit: int) -> list[Entry]:
    """The first `limit` rows of select that match the FTS5 query, newest first.

    `+id IN (all matches)` makes SQLite collect every match of a common word (a third of a
    million rowids at a million entries) before it reads the first row. So a query with few
    matches (counted up to FEW_MATCHES) starts from them: a rowid lookup each, then a sort.
    A common one takes the newest rows of select (an index walk) a window at a time and asks
    FTS5 only for the matches within the window's rowid range, which a rowid constraint lets
    it seek to: rows arrive mostly in rowid order, so the range is narrow, and a common word
    fills the page from the first window. Only a word common in the index but rare in this
    scope gets past the windows, to the one query over all its matches.
    """
    if _fts5_count(match, FEW_MATCHES) < FEW_MATCHES:
        return _fetch(select.where(Entry.id.in_(_fts5_select(match))), limit)
    found: list[int] = []
    window = FIRST_WINDOW
    for _ in range(WINDOWS):
        rows = list(select.select(Entry.occurred_at, Entry.id).limit(window).tuples())
        if rows:
            ids = [entry_id for _, entry_id in rows]
            matches = _fts5_ids_between(match, min(ids), max(ids))
            found += [entry_id for entry_id in ids if entry_id in matches]
        if len(found) >= limit or len(rows) < window:
            return _rows_of(found[:limit])
        select = _older_than(select, rows[-1])
        window *= WINDOW_GROWTH
    rest = select.where(NodeList((SQL("+"), Entry.id)).in_(_fts5_select(match)))
    found += [row.id for row in rest.select(Entry.id).limit(limit - len(found))]
    return _rows_of(found)


def _fts5_count(match: str, limit: int) -> int:
    """The number of index rows matching, counting no further than limit."""
    cursor = database.execute_sql(
        "SELECT count(*) FROM (SELECT rowid FROM entry_fts WHERE entry_fts MATCH ? LIMIT ?)",
        (match, limit),
    )
    return cursor.fetchone()[0]


def _fts5_ids_between(match: str, low: int, high: int) -> set[int]:
    cursor = database.execute_sql(
        "SELECT rowid FROM entry_fts WHERE entry_fts MATCH ? AND rowid BETWEEN ? AND ?",
        (match, low, high),
    )
    return {row[0] for row in cursor}


def _rows_of(ids: list[int]) -> list[Entry]:
    return list(Entry.select().where(Entry.id.in_(ids)).order_by(*_ORDER)) if ids else []


def _key(before_key: tuple) -> tuple[dt.datetime, int]:
    try:
        when, entry_id = before_key
        if isinstance(when, str):
            when = dt.datetime.fromisoformat(when)
        if not isinstance(when, dt.datetime) or isinstance(entry_id, bool):
            raise TypeError(when)
        if when.tzinfo is not None:  # stored times are naive UTC
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        entry_id = int(entry_id)
        if not 0 <= entry_id < 2**63:
            raise ValueError(entry_id)
        return when, entry_id
    except (TypeError, ValueError):
        raise ValueError(f"before_key must be (occurred_at, id), not {before_key!r}") from None


def _select(
    account_id: int,
    query: SearchQuery,
    *,
    project_id: int | None,
    unassigned: bool,
    fts5: bool = True,
    zone: dt.tzinfo = dt.UTC,
):
    """The entries matching query, ordered newest first, without a limit.

    fts5=False leaves out the words and phrases that must match on SQLite (_fts5_match's),
    for _fetch_fts5 to check.
    """
    conditions = [Entry.account == account_id]
    if project_id is not None:
        conditions.append(Entry.project == project_id)
    elif unassigned:
        conditions.append(Entry.project.is_null())
    scope = list(conditions)
    conditions += _text_conditions(query, with_positive=fts5 or is_postgres())
    for term in query.terms:
        if term.field in (TEXT, "subject"):
            continue
        condition = _filter_condition(account_id, term, scope, zone)
        conditions.append(_negate(term, condition) if term.negated else condition)
    return Entry.select().where(reduce(operator.and_, conditions)).order_by(*_ORDER)


def _searchable(term: Term) -> bool:
    """A word or phrase without a letter or digit can match no index token: leave it out."""
    return any(c.isalnum() for c in str(term.value))


def _text_terms(query: SearchQuery) -> list[Term]:
    return [t for t in query.terms if t.field in (TEXT, "subject") and _searchable(t)]


def _fts5_match(query: SearchQuery) -> str | None:
    """The FTS5 query all of whose words and phrases must match, or None if there are none."""
    positive = [t for t in _text_terms(query) if not t.negated]
    return " AND ".join(_fts5_term(t) for t in positive) if positive else None


def _text_conditions(query: SearchQuery, *, with_positive: bool = True) -> list:
    terms = _text_terms(query)
    positive = [t for t in terms if not t.negated] if with_positive else []
    negative = [t for t in terms if t.negated]
    conditions = []
    if is_postgres():
        if positive:
            conditions.append(Entry.id.in_(_pg_match(positive, any_term=False)))
        if negative:
            conditions.append(~fn.EXISTS(_pg_match(negative, any_term=True, correlate=True)))
    else:
        if positive:
            match = " AND ".join(_fts5_term(t) for t in positive)
            # `+id`: SQLite then walks the (account, project, occurred_at) index in order and
            # checks each id against the match list, instead of sorting every match
            conditions.append(NodeList((SQL("+"), Entry.id)).in_(_fts5_select(match)))
        if negative:
            match = " OR ".join(_fts5_term(t) for t in negative)
            conditions.append(Entry.id.not_in(_fts5_select(match)))
    return conditions


def _fts5_string(text: str) -> str:
    """An FTS5 string: within double quotes every character is literal text."""
    return '"' + text.replace('"', '""') + '"'


def _fts5_term(term: Term) -> str:
    string = _fts5_string(str(term.value))
    return f"(subject : {string})" if term.field == "subject" else string


def _fts5_select(match: str):
    return SQL("(SELECT rowid FROM entry_fts WHERE entry_fts MATCH ?)", [match])


_TSQUERY = "phraseto_tsquery('simple', %s)"
_SUBJECT_ONLY = "ts_filter(document, '{a}')"  # the subject is indexed with weight A


def _pg_match(terms: list[Term], *, any_term: bool, correlate: bool = False):
    """The entry_fts rows matching all (or any) terms; each term is a bound parameter.

    The SQL text is assembled from fixed pieces only; user text goes in params.
    """
    subject = [str(t.value) for t in terms if t.field == "subject"]
    if any_term:
        parts, params = [], []
        for term in terms:
            if term.field == "subject":
                parts.append(f"(document @@ {_TSQUERY} AND {_SUBJECT_ONLY} @@ {_TSQUERY})")
                params += [str(term.value)] * 2
            else:
                parts.append(f"document @@ {_TSQUERY}")
                params.append(str(term.value))
        where = " OR ".join(parts)
    else:
        # all words in one tsquery, so that one GIN index scan finds the candidates
        where = f"document @@ ({' && '.join(_TSQUERY for _ in terms)})"
        params = [str(t.value) for t in terms]
        if subject:
            where += f" AND {_SUBJECT_ONLY} @@ ({' && '.join(_TSQUERY for _ in subject)})"
            params += subject
    if not correlate:
        return SQL(f"(SELECT entry_id FROM entry_fts WHERE {where})", params)  # noqa: S608
    return NodeList(
        (
            SQL("(SELECT 1 FROM entry_fts WHERE entry_fts.entry_id ="),
            Entry.id,
            SQL(f"AND ({where}))", params),
        )
    )


def _like(field, text: str):
    """field contains text, case-insensitive, with LIKE wildcards in text taken literally."""
    pattern = "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    operator_ = "ILIKE" if is_postgres() else "LIKE"  # SQLite's LIKE ignores ASCII case
    return NodeList((field, SQL(operator_), Value(pattern), SQL("ESCAPE '!'")))


def local_day_start(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """The first moment of a day in zone, as stored times are (naive UTC).

    Each day is converted on its own, so a day of a DST change is 23 or 25 hours long; a
    midnight the clocks skip starts the day at the change (fold=0 reads it with the offset
    before), a midnight that comes twice starts it at the first. A day at the ends of the
    calendar that has no UTC moment starts at the calendar's end.
    """
    try:
        start = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    except OverflowError:
        return dt.datetime.min if day.year == dt.MINYEAR else dt.datetime.max
    return start.replace(tzinfo=None)


def _filter_condition(account_id: int, term: Term, scope: list, zone: dt.tzinfo = dt.UTC):
    field, value = term.field, term.value
    if field in ADDRESS_ROLES:
        return _address_condition(account_id, ADDRESS_ROLES[field], str(value), scope)
    if field == "has":
        return Entry.has_attachments == True  # noqa: E712
    if field == "is":
        return Entry.status == value
    if field == "kind":
        return Entry.kind.in_(list(value))
    if field == "project":
        if term.project_id is not None:
            return Entry.project == term.project_id
        names = Project.select(Project.id).where(
            (Project.account == account_id) & _like(Project.name, str(value))
        )
        return Entry.project.in_(names)
    # after: from the day's first local moment on (the day itself included); before: up to
    # it (the day itself left out)
    day = local_day_start(value, zone)
    return Entry.occurred_at >= day if field == "after" else Entry.occurred_at < day


# More correspondents than this matching a from:/to: text: match participants by pattern alone.
MANY_CORRESPONDENTS = 500
# Fewer participant rows than this: search from them (an index lookup each), else walk the
# newest entries of the scope and check each one's participants.
FEW_PARTICIPANTS = 2_000
# PostgreSQL, many in scope: up to this many participants in all, their entry ids are hashed
# (a few MB, within the default work_mem) and the scope's newest entries checked against them.
HASHED_PARTICIPANTS = 10_000


def _address_condition(account_id: int, roles: tuple[str, ...], text: str, scope: list):
    """Entries with a participant in one of roles whose address or name contains text.

    The account's correspondents say first which addresses can match at all: none, and the
    condition is false without reading an entry. Their participants are counted within the
    scope (the account, the project): few, and the entries are found from them, through the
    address index; many, and the newest entries of the scope are checked one by one, as the
    page fills from the first of them.
    """
    participant = Participant.alias()
    matches = _like(participant.address, text) | _like(participant.name, text)
    address_matches = _like(Correspondent.address, text)
    found = Correspondent.select(Correspondent.address, address_matches).where(
        (Correspondent.account == account_id) & (address_matches | _like(Correspondent.name, text))
    )
    rows = list(found.tuples())
    addresses = sorted({address for address, _ in rows})
    if not addresses:
        return SQL("1 = 0")
    where = participant.role.in_(roles) & matches
    if len(addresses) <= MANY_CORRESPONDENTS:
        by_address = participant.role.in_(roles) & _named(participant, rows, text)
        named = participant.select(participant.entry).where(by_address)
        if _few_in_scope(participant, roles, addresses, by_address, scope):
            return Entry.id.in_(named)
        if is_postgres() and named.limit(HASHED_PARTICIPANTS).count() < HASHED_PARTICIPANTS:
            # `IS TRUE` keeps the planner from making the IN a join: it hashes the
            # participants' entry ids once and checks the scope's newest entries against
            # them, in the order of the page (16 ms instead of 70 for a sender of 5,800)
            return NodeList((Entry.id.in_(named), SQL("IS TRUE")), parens=True)
    # the addresses stay out of this one: with them, PostgreSQL's planner chose to collect
    # every participant of a frequent sender first (350 ms instead of 50 at 1,000,000 entries)
    return fn.EXISTS(participant.select(SQL("1")).where((participant.entry == Entry.id) & where))


def _named(participant, correspondents, text: str):
    """Participants with one of the correspondents' addresses whose address or name has text.

    The same as `address IN (all) AND (address LIKE text OR name LIKE text)`, written so
    that PostgreSQL's planner sees how many rows there are: an address that contains the
    text matches by itself (a participant's address is its correspondent's, the same
    string), only the others need their participant's name to contain it. With the LIKEs on
    every row the planner counted 23 participants of a sender who has 5,800 and chose to
    read each one's entry instead of the scope's newest entries.
    """
    by_address = sorted({address for address, hit in correspondents if hit})
    by_name = sorted({address for address, hit in correspondents if not hit} - set(by_address))
    parts = [participant.address.in_(by_address)] if by_address else []
    if by_name:
        parts.append(participant.address.in_(by_name) & _like(participant.name, text))
    return reduce(operator.or_, parts)


def _few_in_scope(participant, roles: tuple[str, ...], addresses: list[str], where, scope) -> bool:
    """Whether fewer than FEW_PARTICIPANTS entries of the scope name one of the addresses.

    A sender is counted by the entries' own sender column (index entry_account_sender),
    which is quick however many entries outside the scope have that sender; other roles
    by their participants, with the entry of each. Only the road depends on the count.
    """
    if roles == ("from",):
        rows = Entry.select(SQL("1")).where(
            reduce(operator.and_, [Entry.from_address.in_(addresses), *scope])
        )
    else:
        rows = (
            participant.select(SQL("1"))
            .join(Entry, on=participant.entry == Entry.id)
            .where(reduce(operator.and_, [where, *scope]))
        )
    return rows.limit(FEW_PARTICIPANTS).count() < FEW_PARTICIPANTS


def _negate(term: Term, condition):
    if term.field == "project":  # NOT IN and != are never true for a NULL project
        return Entry.project.is_null() | ~condition
    return ~condition
