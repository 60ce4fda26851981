"""File many parsed intakes as entries in one transaction, in plain SQL.

This is the hot path of ingest and import: one round of reads for the whole batch (intakes,
existing entries, customer addresses, team addresses, project states), then inserts with
executemany. Where each message goes, and why, was decided before (domain.routing) and is
stored as given, with one exception of naming: a reply routed to the thread of a message of
the same batch (InboundRecord.joins) names that message's entry, whose id is known once it is
inserted. Reprocess (refile) writes an entry's content again through the same rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from storage.bounces import BounceMark, record_bounce
from storage.db import MAIL_SCHEMA, is_sqlite, native_sql, select_in, write_transaction
from storage.intake import hold
from storage.models import Entry, database, utcnow
from storage.search import index_entries, remember_correspondents, unindex_entry


@dataclass(frozen=True)
class AttachmentRecord:
    filename: str
    original_filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class InboundRecord:
    """Everything parse and route found out about one received message."""

    project_id: int | None
    route_rule: str  # domain.routing.Rule
    route_detail: str = ""
    candidates: tuple[int, ...] = ()
    category: str = "external"
    joins: str | None = None  # a thread of this batch: the Message-ID answered (its entry's id
    # becomes route_detail)
    parse_error: str | None = None
    parse_warnings: tuple[tuple[str, str, str], ...] = ()  # (item, code, detail)
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    to: tuple[tuple[str, str], ...] = ()  # (name, address)
    cc: tuple[tuple[str, str], ...] = ()
    reply_to: tuple[tuple[str, str], ...] = ()
    text: str = ""
    html: str = ""
    html_safe: str | None = None  # the HTML sanitised at filing; None: sanitise when shown
    html_note: str = ""  # why html_safe differs from html (a code the entry page words)
    occurred_at: object = None
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    auto_submitted: bool = False
    is_bounce: bool = False
    is_list: bool = False
    spam: bool = False
    attachments: tuple[AttachmentRecord, ...] = field(default=())
    done: bool = False  # filed done (archive import of old mail): nobody needs to act on it
    bounce: BounceMark | None = None  # a bounce of our mail: recorded on that outbound entry


MAX_SUBJECT = 998  # characters of a subject kept (RFC 5322's line); the raw keeps it all
MAX_NAME = 255  # of a display name, an address and a file's name as the sender wrote it
MAX_ADDRESSES = 200  # kept of each of To, Cc and Reply-To (a tsvector holds at most 1 MB)


def bounded(record: InboundRecord) -> InboundRecord:
    """Cut what a stranger's headers gave to the lengths stored; the raw message keeps all."""

    def pairs(found: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple(
            (name[:MAX_NAME], address[:MAX_NAME]) for name, address in found[:MAX_ADDRESSES]
        )

    return replace(
        record,
        subject=record.subject[:MAX_SUBJECT],
        from_name=record.from_name[:MAX_NAME],
        from_address=record.from_address[:MAX_NAME],
        to=pairs(record.to),
        cc=pairs(record.cc),
        reply_to=pairs(record.reply_to),
        attachments=tuple(
            replace(a, original_filename=a.original_filename[:MAX_NAME]) for a in record.attachments
        ),
    )


_ENTRY_FIELDS = [f for f in Entry._meta.sorted_fields if f.name != "id"]
_QUOTED = ['"' + f.column_name + '"' for f in _ENTRY_FIELDS]  # "references" is an SQL keyword
_INSERT_ENTRY = (
    f"INSERT INTO entry ({', '.join(_QUOTED)})"  # noqa: S608 - column names of the model
    f" VALUES ({', '.join('?' * len(_ENTRY_FIELDS))}) RETURNING id"
)
_INSERT_PARTICIPANT = "INSERT INTO participant (entry_id, role, address, name) VALUES (?, ?, ?, ?)"
_INSERT_ATTACHMENT = (
    "INSERT INTO attachment (entry_id, filename, original_filename, content_type, size,"
    " content_id, inline, sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO event (account_id, kind, entry_id, project_id, payload, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INTAKE_DONE = "UPDATE intake SET state = 'done', entry_id = ?, error = NULL WHERE id = ?"


@dataclass(frozen=True)
class Filed:
    """What became of one intake."""

    intake_id: int
    entry_id: int
    project_id: int | None
    route_rule: str
    route_detail: str
    candidates: tuple[int, ...]
    parse_error: str | None
    new: bool  # False: a second recipient of the same account, filed to the existing entry


def file_inbound(
    items: Sequence[tuple[int, InboundRecord]],
    holder: str | None = None,
    *,
    notify: bool = True,
) -> list[Filed]:
    """File (intake id, record) pairs in one write transaction; intakes already done are skipped,
    and with a holder (an ingest process) those it no longer claims (storage.intake.hold).
    With notify=False (an archive import) no event row is written, so nobody is notified.

    The batch is worked out before the write lock is taken (the reads, every row to insert),
    so that the lock, which the web and worker processes need too, is held short; under the
    lock the intakes and entries it was worked out from are read again, and if they changed
    meanwhile (another process filed some), it is worked out again there.

    On SQLite the entries go to the main file and the intakes' "done" to the received-mail
    file, in a transaction of their own once the entries are committed (on disk, with
    synchronous=FULL), so the listener never waits while entries are written. A crash in
    between leaves the intakes pending, and filing them again finds their entries (by account
    and message) and only marks them done.
    """
    if not items:
        return []
    items = [(intake_id, bounded(record)) for intake_id, record in items]
    plan = _plan(items, database.cursor())
    separate = is_sqlite()
    with write_transaction("main"):
        cursor = database.cursor()
        if holder is not None:  # only the intakes still claimed: one statement a batch
            held = hold(cursor, [intake_id for intake_id, _ in items], holder)
            items = [item for item in items if item[0] in held]
        if _snapshot(items, cursor) != plan.snapshot:
            plan = _plan(items, cursor)
        if not notify:
            plan.events.clear()
            plan.bounces.clear()  # an archive's old bounces change nothing sent since
        filed, done = _execute(plan, cursor)
        if done and not separate:
            cursor.executemany(native_sql(_INTAKE_DONE), done)
    if done and separate:
        with write_transaction(MAIL_SCHEMA):
            database.cursor().executemany(_INTAKE_DONE, done)
    return filed


@dataclass
class _Plan:
    """Rows to insert for a batch. An entry is named by its id if it exists, else by -(n + 1)
    for the n-th of `entries`, whose ids the inserts return."""

    snapshot: tuple  # the intakes and existing entries this plan was made from
    entries: list[list] = field(default_factory=list)  # values of the new entries, in order
    filed: list[tuple] = field(default_factory=list)  # Filed's fields, entry named as above
    participants: list[tuple] = field(default_factory=list)
    correspondents: list[tuple] = field(default_factory=list)
    attachments: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    index: list[tuple] = field(default_factory=list)
    done: list[tuple] = field(default_factory=list)
    replies: dict[int, int] = field(default_factory=dict)  # new entry -> the one it answers
    bounces: list[tuple[int, BounceMark]] = field(default_factory=list)  # (new entry, mark)


def _snapshot(items: Sequence[tuple[int, InboundRecord]], cursor) -> tuple:
    """The batch's intakes (with their state) and the entries that exist for their messages."""
    intakes = select_in(
        "SELECT id, account_id, sha256, received_at, state FROM intake WHERE id IN",
        sorted(i for i, _ in items),
        cursor=cursor,
    )
    existing = []
    for account_id in sorted({row[1] for row in intakes}):  # the indexes lead with the account
        shas = sorted({row[2] for row in intakes if row[1] == account_id})
        select = (
            "SELECT account_id, raw_sha256, id, project_id, route_rule, route_detail,"
            " candidates, parse_error"
            " FROM entry WHERE account_id = ? AND raw_sha256 IN"
        )
        existing += select_in(select, shas, account_id, cursor=cursor)
    return tuple(sorted(intakes)), tuple(sorted(existing))


def _plan(items: Sequence[tuple[int, InboundRecord]], cursor) -> _Plan:
    snapshot = _snapshot(items, cursor)
    intakes, found = snapshot
    intake_of = {row[0]: row for row in intakes}
    existing = {(row[0], row[1]): row[2:] for row in found}
    project_ids = list({r.project_id for _, r in items if r.project_id is not None})
    select = "SELECT id, status FROM project WHERE id IN"
    project_status = dict(select_in(select, project_ids, cursor=cursor))
    threads: dict[tuple[int, str], int] = {}  # (account, Message-ID) -> its entry, this batch
    plan = _Plan(snapshot)
    now = utcnow()
    for intake_id, record in items:
        intake = intake_of.get(intake_id)
        if intake is None:
            continue
        _, account_id, sha256, received_at, state = intake
        known = existing.get((account_id, sha256))
        if known is not None and known[1] is not None and record.message_id:
            threads[(account_id, record.message_id)] = known[0]
        if state == "done":
            continue
        if known is not None:
            entry, project_id, rule, detail, candidates, parse_error = known
            candidates = tuple(json.loads(candidates or "[]"))
            plan.filed.append(
                (intake_id, entry, project_id, rule, detail, candidates, parse_error, False)
            )
            plan.done.append((entry, intake_id))
            continue
        answered = threads.get((account_id, record.joins)) if record.joins else None
        if answered is not None and answered > 0:  # filed before: its id is known
            record = replace(record, route_detail=str(answered))
        values = _entry_values(record, account_id, sha256, received_at, project_status, now)
        plan.entries.append([values[f.name] for f in _ENTRY_FIELDS])
        entry = -len(plan.entries)
        if answered is not None and answered < 0:
            plan.replies[entry] = answered
        existing[(account_id, sha256)] = (
            entry,
            record.project_id,
            record.route_rule,
            record.route_detail,
            values["candidates"],
            record.parse_error,
        )
        if record.message_id and record.project_id is not None:
            threads[(account_id, record.message_id)] = entry
        _add_parts(plan, entry, account_id, record)
        if record.bounce is not None and not record.spam:
            plan.bounces.append((entry, record.bounce))  # its author is told (outbound_bounced)
        elif not record.spam:
            kind = "customer_mail" if record.project_id else "unassigned_mail"
            payload = json.dumps(
                {"auto_submitted": record.auto_submitted, "bounce": record.is_bounce}
            )
            plan.events.append((account_id, kind, entry, record.project_id, payload, now))
        plan.done.append((entry, intake_id))
        plan.filed.append(
            (
                intake_id,
                entry,
                record.project_id,
                record.route_rule,
                record.route_detail,
                record.candidates,
                record.parse_error,
                True,
            )
        )
    return plan


def _add_parts(plan: _Plan, entry: int, account_id: int, record: InboundRecord) -> None:
    """The rows of an entry's participants, correspondents, attachments and index."""
    people = participants_of(record)
    plan.participants += [(entry, role, addr, name) for role, name, addr in people]
    plan.correspondents += [(account_id, addr, name) for _, name, addr in people]
    plan.attachments += [
        (
            entry,
            a.filename,
            a.original_filename,
            a.content_type[:255],
            len(a.data),
            a.content_id,
            a.inline,
            hashlib.sha256(a.data).hexdigest(),
            a.data,
        )
        for a in record.attachments
    ]
    plan.index.append(
        (
            entry,
            record.subject,
            record.text,
            " ".join(a for _, _, a in people),
            " ".join(a.filename for a in record.attachments),
        )
    )


def _execute(plan: _Plan, cursor) -> tuple[list[Filed], list[tuple]]:
    """Insert what the plan holds, naming each new entry by the id its insert returned;
    return what was filed and the (entry id, intake id) pairs to mark done."""
    ids: list[int] = []
    for values in plan.entries:
        answered = plan.replies.get(-len(ids) - 1)
        if answered is not None:  # inserted before: its id is known now
            values[_DETAIL_COLUMN] = str(ids[-answered - 1])
        cursor.execute(native_sql(_INSERT_ENTRY), values)
        ids.append(cursor.fetchone()[0])
    _insert_parts(plan, ids, cursor)
    now = utcnow()
    for bounce_entry, mark in _named(plan.bounces, 0, ids):
        record_bounce(
            mark.outbound_entry_id,
            bounce_entry,
            status=mark.status,
            detail=mark.detail,
            recipient=mark.recipient,
            now=now,
        )
    filed = []
    for row in plan.filed:
        intake_id, entry, project_id, rule, detail, candidates, parse_error, new = row
        if entry < 0:
            detail = plan.entries[-entry - 1][_DETAIL_COLUMN]
            entry = ids[-entry - 1]
        filed.append(
            Filed(intake_id, entry, project_id, rule, detail, candidates, parse_error, new)
        )
    return filed, _named(plan.done, 0, ids)


def _named(rows: list[tuple], position: int, ids: list[int]) -> list[tuple]:
    """Rows with the entry at `position` named by its id (see _Plan)."""
    return [
        (
            *row[:position],
            ids[-row[position] - 1] if row[position] < 0 else row[position],
            *row[position + 1 :],
        )
        for row in rows
    ]


def _insert_parts(plan: _Plan, ids: list[int], cursor) -> None:
    for statement, rows in (
        (_INSERT_PARTICIPANT, _named(plan.participants, 0, ids)),
        (_INSERT_ATTACHMENT, _named(plan.attachments, 0, ids)),
        (_INSERT_EVENT, _named(plan.events, 2, ids)),
    ):
        if rows:
            cursor.executemany(native_sql(statement), rows)
    remember_correspondents(plan.correspondents)
    index_entries(_named(plan.index, 0, ids))


_DETAIL_COLUMN = [f.name for f in _ENTRY_FIELDS].index("route_detail")
_KEPT_ON_REFILE = {
    "account",
    "kind",
    "status",
    "received_at",
    "raw_sha256",
    "author",
    "done_by",
    "done_at",
    "project_status",
    "route_reason",
}
_REFILED = [f for f in _ENTRY_FIELDS if f.name not in _KEPT_ON_REFILE]
_ENTRY_OF = "SELECT account_id, raw_sha256, received_at FROM entry WHERE id = ?"


def refile(entry_id: int, record: InboundRecord) -> None:
    """Write a filed entry again from a new parse and routing (`postroom reprocess`), with
    the rows live filing writes: its content, decision, category, participants, attachments
    and index row. Its status stays (spam: done), and who did it and when, and no event is
    written again."""
    record = bounded(record)
    with write_transaction():
        cursor = database.cursor()
        cursor.execute(native_sql(_ENTRY_OF), (entry_id,))
        account_id, sha256, received_at = cursor.fetchone()
        project_ids = [record.project_id] if record.project_id is not None else []
        status = dict(select_in("SELECT id, status FROM project WHERE id IN", project_ids))
        values = _entry_values(record, account_id, sha256, received_at, status)
        columns = [(f.column_name, values[f.name]) for f in _REFILED]
        if record.project_id is not None:
            columns.append(("project_status", values["project_status"]))
        if record.spam:
            columns.append(("status", "done"))
        sets = ", ".join(f'"{name}" = ?' for name, _ in columns)
        update = f"UPDATE entry SET {sets} WHERE id = ?"  # noqa: S608 - columns of the model
        cursor.execute(native_sql(update), [value for _, value in columns] + [entry_id])
        for table in ("attachment", "participant"):
            delete = f"DELETE FROM {table} WHERE entry_id = ?"  # noqa: S608 - our tables
            cursor.execute(native_sql(delete), (entry_id,))
        unindex_entry(entry_id)
        plan = _Plan(snapshot=())
        _add_parts(plan, entry_id, account_id, record)
        _insert_parts(plan, [], cursor)


def participants_of(record: InboundRecord) -> list[tuple[str, str, str]]:
    """(role, name, address) of everyone the mail names, as stored: lower-case, cut to fit."""
    people = [("from", record.from_name, record.from_address)] if record.from_address else []
    people += [("to", n, a) for n, a in record.to]
    people += [("cc", n, a) for n, a in record.cc]
    people += [("reply_to", n, a) for n, a in record.reply_to]
    return [(role, name[:255], address.lower()[:255]) for role, name, address in people]


def _entry_values(
    record: InboundRecord,
    account_id: int,
    sha256: str,
    received_at,
    project_status: dict,
    now=None,
) -> dict:
    """The entry's column values; a record filed done (not spam) is done since `now`."""
    done = record.spam or record.done
    values = {
        "account": account_id,
        "project": record.project_id,
        "kind": "inbound",
        "status": "done" if done else "open",
        "route_reason": "",
        "route_rule": record.route_rule,
        "route_detail": record.route_detail,
        "candidates": json.dumps(list(record.candidates)),
        "auto_submitted": record.auto_submitted,
        "is_bounce": record.is_bounce,
        "is_list": record.is_list,
        "parse_error": record.parse_error,
        "parse_warnings": _warnings_json(record.parse_warnings),
        "subject": record.subject,
        "from_address": record.from_address.lower(),
        "from_name": record.from_name,
        "to_addresses": addresses_json(record.to),
        "cc_addresses": addresses_json(record.cc),
        "text": record.text,
        "html": record.html,
        "html_safe": record.html_safe,
        "html_note": record.html_note or None,
        "has_attachments": any(not a.inline for a in record.attachments),
        "occurred_at": record.occurred_at or received_at,
        "received_at": received_at,
        "message_id": record.message_id,
        "in_reply_to": " ".join(record.in_reply_to),
        "references": " ".join(record.references),
        "raw_sha256": sha256,
        "author": None,
        "project_status": project_status.get(record.project_id),
        "done_by": None,
        "done_at": now if record.done and not record.spam else None,
        "category": record.category,
        "spam": record.spam,
        "send_problem": "",
        "event_kind": None,
        "event_params": None,
    }
    return {f.name: f.db_value(values[f.name]) for f in _ENTRY_FIELDS}


def addresses_json(pairs: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([{"name": name, "address": address} for name, address in pairs])


def _warnings_json(warnings: tuple[tuple[str, str, str], ...]) -> str | None:
    """The parse warnings as stored: None when there are none."""
    if not warnings:
        return None
    keys = ("item", "code", "detail")
    return json.dumps([dict(zip(keys, w, strict=True)) for w in warnings])
