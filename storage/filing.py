"""File many parsed intakes as entries in one transaction, in plain SQL.

This is the hot path of ingest and import: one round of reads for the whole batch (intakes,
existing entries, customer addresses, team addresses, project states), then inserts with
executemany. A reply to a message filed earlier in the same batch joins its thread, as it
would have done had the two arrived in separate batches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from storage.db import native_sql, write_transaction
from storage.models import Entry, database, utcnow
from storage.search import index_entries, remember_correspondents


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
    route_reason: str
    candidates: tuple[int, ...] = ()
    parse_error: str | None = None
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    to: tuple[tuple[str, str], ...] = ()  # (name, address)
    cc: tuple[tuple[str, str], ...] = ()
    reply_to: tuple[tuple[str, str], ...] = ()
    text: str = ""
    html: str = ""
    occurred_at: object = None
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    auto_submitted: bool = False
    is_bounce: bool = False
    is_list: bool = False
    spam: bool = False
    attachments: tuple[AttachmentRecord, ...] = field(default=())


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
    route_reason: str
    parse_error: str | None
    new: bool  # False: a second recipient of the same account, filed to the existing entry


def file_inbound(items: Sequence[tuple[int, InboundRecord]]) -> list[Filed]:
    """File (intake id, record) pairs in one write transaction; intakes already done are skipped."""
    if not items:
        return []
    with write_transaction():
        return _file(items, database.cursor())


def _file(items: Sequence[tuple[int, InboundRecord]], cursor) -> list[Filed]:
    intakes = _rows(
        cursor,
        "SELECT id, account_id, sha256, received_at, state FROM intake WHERE id IN",
        [i for i, _ in items],
    )
    intake_of = {row[0]: row for row in intakes}
    senders = list({r.from_address.lower() for _, r in items if r.from_address})
    existing, kinds, team = {}, {}, set()
    for account_id in {row[1] for row in intakes}:  # the indexes lead with the account
        shas = list({row[2] for row in intakes if row[1] == account_id})
        select = (
            "SELECT account_id, raw_sha256, id, project_id, route_reason, parse_error"
            " FROM entry WHERE account_id = ? AND raw_sha256 IN"
        )
        existing |= {(row[0], row[1]): row[2:] for row in _rows(cursor, select, shas, account_id)}
        select = "SELECT project_id, address, kind FROM customer_address"
        select += " WHERE account_id = ? AND address IN"
        kinds |= {(row[0], row[1]): row[2] for row in _rows(cursor, select, senders, account_id)}
        select = 'SELECT account_id, email FROM "user" WHERE account_id = ? AND email IN'
        team |= {(row[0], row[1]) for row in _rows(cursor, select, senders, account_id)}
    project_ids = list({r.project_id for _, r in items if r.project_id is not None})
    project_status = dict(_rows(cursor, "SELECT id, status FROM project WHERE id IN", project_ids))
    threads: dict[tuple[int, str], tuple[int, int | None]] = {}  # filed in this batch

    filed: list[Filed] = []
    participants, correspondents, attachments, events, index, done = [], [], [], [], [], []
    now = utcnow()
    for intake_id, record in items:
        intake = intake_of.get(intake_id)
        if intake is None or intake[4] == "done":
            continue
        _, account_id, sha256, received_at, _ = intake
        known = existing.get((account_id, sha256))
        if known is not None:
            entry_id, project_id, reason, parse_error = known
            filed.append(Filed(intake_id, entry_id, project_id, reason, parse_error, False))
            done.append((entry_id, intake_id))
            continue
        record = _join_thread(record, account_id, threads)
        sender = record.from_address.lower()
        values = _entry_values(record, account_id, sha256, received_at, sender, kinds, team,
                               project_status)  # fmt: skip
        cursor.execute(native_sql(_INSERT_ENTRY), [values[f.name] for f in _ENTRY_FIELDS])
        entry_id = cursor.fetchone()[0]
        existing[(account_id, sha256)] = (entry_id, record.project_id, record.route_reason,
                                          record.parse_error)  # fmt: skip
        if record.message_id and record.project_id is not None:
            threads[(account_id, record.message_id)] = (entry_id, record.project_id)
        people = participants_of(record)
        participants += [(entry_id, role, addr, name) for role, name, addr in people]
        correspondents += [(account_id, addr, name) for _, name, addr in people]
        attachments += [(entry_id, a.filename, a.original_filename, a.content_type[:255],
                         len(a.data), a.content_id, a.inline, hashlib.sha256(a.data).hexdigest(),
                         a.data) for a in record.attachments]  # fmt: skip
        if not record.spam:
            kind = "customer_mail" if record.project_id else "unassigned_mail"
            payload = json.dumps({"auto_submitted": record.auto_submitted,
                                  "bounce": record.is_bounce})  # fmt: skip
            events.append((account_id, kind, entry_id, record.project_id, payload, now))
        index.append((entry_id, record.subject, record.text, " ".join(a for _, _, a in people),
                      " ".join(a.filename for a in record.attachments)))  # fmt: skip
        done.append((entry_id, intake_id))
        filed.append(Filed(intake_id, entry_id, record.project_id, record.route_reason,
                           record.parse_error, True))  # fmt: skip
    for statement, rows in (
        (_INSERT_PARTICIPANT, participants),
        (_INSERT_ATTACHMENT, attachments),
        (_INSERT_EVENT, events),
        (_INTAKE_DONE, done),
    ):
        if rows:
            cursor.executemany(native_sql(statement), rows)
    remember_correspondents(correspondents)
    index_entries(index)
    return filed


def _rows(cursor, select: str, keys: list, *first) -> list[tuple]:
    """Run `select ... IN (keys)` in chunks the drivers accept; `first` fills earlier ?s."""
    rows: list[tuple] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        cursor.execute(native_sql(f"{select} ({', '.join('?' * len(chunk))})"), [*first, *chunk])
        rows += cursor.fetchall()
    return rows


def _join_thread(record: InboundRecord, account_id: int, threads: dict) -> InboundRecord:
    """Route a reply to a message of this same batch as its thread (routing saw it not yet)."""
    if not threads or record.route_reason.startswith(("thread:", "blocked:")):
        return record
    for message_id in (*record.in_reply_to, *record.references):
        found = threads.get((account_id, message_id))
        if found is not None:
            return replace(record, project_id=found[1], candidates=(),
                           route_reason=f"thread: reply to entry {found[0]}")  # fmt: skip
    return record


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
    sender: str,
    kinds: dict,
    team: set,
    project_status: dict,
) -> dict:
    if not sender:
        category = "external"
    elif (record.project_id, sender) in kinds:
        category = kinds[(record.project_id, sender)]
    elif (account_id, sender) in team:
        category = "internal"
    else:
        category = "external"
    values = {
        "account": account_id,
        "project": record.project_id,
        "kind": "inbound",
        "status": "done" if record.spam else "open",
        "route_reason": record.route_reason,
        "candidates": json.dumps(list(record.candidates)),
        "auto_submitted": record.auto_submitted,
        "is_bounce": record.is_bounce,
        "is_list": record.is_list,
        "parse_error": record.parse_error,
        "subject": record.subject,
        "from_address": sender,
        "from_name": record.from_name,
        "to_addresses": addresses_json(record.to),
        "cc_addresses": addresses_json(record.cc),
        "text": record.text,
        "html": record.html,
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
        "done_at": None,
        "category": category,
        "spam": record.spam,
    }
    return {f.name: f.db_value(values[f.name]) for f in _ENTRY_FIELDS}


def addresses_json(pairs: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([{"name": name, "address": address} for name, address in pairs])
