"""Persist the team's changes to entries: status, project, spam, deletion, and the entries
written by hand or by the system (with their index rows and event rows).

What may change and what it means is decided in domain/entries.py; these functions write it
in the caller's transaction (except release_intakes, which is a transaction of its own).
"""

from __future__ import annotations

import datetime as dt
import json

from storage.activity import as_params
from storage.db import MAIL_SCHEMA, is_sqlite, write_transaction
from storage.models import Entry, Event, Intake, Project, utcnow
from storage.search import index_entry, unindex_entry


def set_status(entry: Entry, status: str, done_by: int | None, done_at: dt.datetime | None):
    entry.status = status
    entry.done_by = done_by
    entry.done_at = done_at
    entry.save()
    return entry


def file_under(entry: Entry, project: Project, *, route_rule: str, category: str | None):
    """File the entry under the project (no longer spam, no candidates left); route_rule a
    domain.routing.Rule."""
    entry.project = project.id
    entry.project_status = project.status
    entry.spam = False
    entry.route_rule = route_rule
    entry.route_detail = ""
    entry.candidates = "[]"
    if category is not None:
        entry.category = category
    entry.save()
    return entry


def mark_spam(entry: Entry) -> Entry:
    """Spam is done and belongs to no project."""
    entry.spam = True
    entry.status = "done"
    entry.project = None
    entry.save()
    return entry


def release_intakes(entry_id: int) -> None:
    """On SQLite, what PostgreSQL's ON DELETE SET NULL does for intakes naming an entry.

    SQLite keeps no key across its two files. Call it first and on its own, before the entry
    is deleted, so that a crash never leaves an intake naming a deleted entry (ids are used
    again). On PostgreSQL it does nothing.
    """
    if is_sqlite():
        with write_transaction(MAIL_SCHEMA):
            Intake.update(entry=None).where(Intake.entry == entry_id).execute()


def delete_entry(entry: Entry) -> None:
    """Delete the entry with its index row."""
    unindex_entry(entry.id)
    entry.delete_instance()


def insert_entry(project: Project, *, addresses: str = "", **fields) -> Entry:
    """A new entry of the project (a note, a call, a system entry) with its index row; open
    unless fields say status="done" (then done now, by fields' done_by if given)."""
    status = fields.pop("status", "open")
    if status == "done":
        fields.setdefault("done_at", utcnow())
    entry = Entry.create(
        account=project.account_id,
        project=project.id,
        status=status,
        project_status=project.status,
        **fields,
    )
    index_entry(
        entry.id, subject=entry.subject, body=entry.text, addresses=addresses, attachments=""
    )
    return entry


def insert_event(project: Project, kind: str, entry: Entry | None, payload: dict) -> Event:
    """An outbox row the worker may notify about."""
    return Event.create(
        account=project.account_id,
        kind=kind,
        entry=entry.id if entry is not None else None,
        project=project.id,
        payload=json.dumps(payload),
    )


def insert_system_entry(
    project: Project,
    subject: str,
    text: str = "",
    user_id: int | None = None,
    event: str | None = None,
    payload: dict | None = None,
    *,
    route_rule: str,
    category: str,
    status: str = "open",
    event_kind: str | None = None,
    event_params: dict | None = None,
) -> Entry:
    """Write a system entry (status change, change request, a failed mail …) and its event;
    route_rule and category as domain.routing and domain.categories decide, the status as
    domain.open_rules does. event_kind and event_params name what happened for
    admin_ui.event_text (the subject and text keep the English words as well)."""
    with write_transaction():
        entry = insert_entry(
            project,
            status=status,
            kind="system",
            subject=subject[:500],
            text=text,
            event_kind=event_kind,
            event_params=as_params(event_params),
            author=user_id,
            occurred_at=utcnow(),
            category=category,
            route_rule=route_rule,
            route_detail="",
        )
        if event:
            insert_event(project, event, entry, payload or {})
    return entry
