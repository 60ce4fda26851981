"""What the team does with entries: tick done, assign, discard, notes, project changes."""

from __future__ import annotations

import datetime as dt
import json
import re

from peewee import fn

from storage.db import write_transaction
from storage.models import (
    Activity,
    BlockRule,
    CustomerAddress,
    Entry,
    Event,
    Project,
    User,
    utcnow,
)

ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")


class ProtocolError(ValueError):
    """A change the user asked for cannot be made; the message says why."""


def _log(account_id, action, *, entry=None, project=None, user=None, detail="") -> None:
    Activity.create(
        account=account_id, entry=entry, project=project, user=user, action=action, detail=detail
    )


# --- lists ---------------------------------------------------------------------------------
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


def open_ticket_count(account_id: int) -> int:
    return (
        Entry.select()
        .where(
            (Entry.account == account_id)
            & (Entry.status == "open")
            & Entry.project.is_null(False)
            & (Entry.spam == False)  # noqa: E712
        )
        .count()
    )


def unassigned(account_id: int, limit: int = 50, before: tuple | None = None) -> list[Entry]:
    """Mail that matched no project, newest first (spam left out)."""
    query = Entry.select().where(
        (Entry.account == account_id) & Entry.project.is_null() & (Entry.spam == False)  # noqa: E712
    )
    return list(_page(query, limit, before))


def unassigned_count(account_id: int) -> int:
    return (
        Entry.select()
        .where((Entry.account == account_id) & Entry.project.is_null() & (Entry.spam == False))  # noqa: E712
        .count()
    )


def _page(query, limit: int, before: tuple | None):
    if before is not None:
        when, entry_id = before
        query = query.where(
            (Entry.occurred_at < when) | ((Entry.occurred_at == when) & (Entry.id < entry_id))
        )
    return query.order_by(Entry.occurred_at.desc(), Entry.id.desc()).limit(limit)


def entry_of_account(account_id: int, entry_id: int) -> Entry | None:
    return Entry.get_or_none((Entry.id == entry_id) & (Entry.account == account_id))


def projects_of_account(account_id: int, words: str = "", limit: int = 200) -> list[Project]:
    """Projects by name or domain words, active first, by name."""
    query = Project.select().where(Project.account == account_id)
    for word in words.split():
        pattern = f"%{_like_escape(word.lower())}%"
        query = query.where((fn.LOWER(Project.name) ** pattern) | (Project.domain**pattern))
    archived = Project.status == "archived"
    return list(query.order_by(archived, fn.LOWER(Project.name)).limit(limit))


def _like_escape(text: str) -> str:
    """Drop LIKE wildcards from user words (a search for names needs none)."""
    return text.replace("\\", "").replace("%", "").replace("_", "")


# --- changes -------------------------------------------------------------------------------
def set_done(entry: Entry, user_id: int | None, done: bool) -> Entry:
    """Tick or untick an entry, recording who and when."""
    with write_transaction():
        entry.status = "done" if done else "open"
        entry.done_by = user_id if done else None
        entry.done_at = utcnow() if done else None
        entry.save()
        _log(entry.account_id, "done" if done else "reopened", entry=entry.id,
             project=entry.project_id, user=user_id)  # fmt: skip
    return entry


def assign(entry: Entry, project: Project, user_id: int | None, remember_sender: bool) -> Entry:
    """File an unassigned entry under a project; optionally store its sender as customer."""
    if project.account_id != entry.account_id:
        raise ProtocolError("that project belongs to another account")
    with write_transaction():
        entry.project = project.id
        entry.project_status = project.status
        entry.spam = False
        entry.route_reason = "assigned by hand"
        entry.candidates = "[]"
        if remember_sender and entry.from_address:
            add_customer_address(project, entry.from_address, user_id=user_id, check_unique=False)
            entry.category = "customer"
        entry.save()
        _log(entry.account_id, "assigned", entry=entry.id, project=project.id, user=user_id,
             detail="and remembered the sender" if remember_sender else "")  # fmt: skip
    return entry


def discard_spam(entry: Entry, user_id: int | None, block: str | None = None) -> Entry:
    """Mark as spam; `block` "sender" or "domain" sends later mail from there to spam."""
    with write_transaction():
        entry.spam = True
        entry.status = "done"
        entry.project = None
        entry.save()
        pattern = None
        if block in ("sender", "domain") and entry.from_address:
            address = entry.from_address.lower()
            pattern = address if block == "sender" else "@" + address.rpartition("@")[2]
            BlockRule.insert(
                account=entry.account_id, pattern=pattern
            ).on_conflict_ignore().execute()
        _log(entry.account_id, "discarded", entry=entry.id, user=user_id,
             detail=f"blocked {pattern}" if pattern else "")  # fmt: skip
    return entry


def delete_entry(entry: Entry, user_id: int | None) -> None:
    with write_transaction():
        _log(entry.account_id, "deleted", project=entry.project_id, user=user_id,
             detail=f"entry {entry.id}: {entry.subject[:200]}")  # fmt: skip
        entry.delete_instance()


def add_manual_entry(
    project: Project,
    user: User,
    *,
    kind: str,
    text: str,
    subject: str = "",
    occurred_at: dt.datetime | None = None,
) -> Entry:
    """Add an internal note or a message from the customer (call, SMS, talk) to a protocol."""
    from storage.search import index_entry

    if kind not in ("note", "call"):
        raise ProtocolError("kind must be note or call")
    if not text.strip():
        raise ProtocolError("the text is empty")
    with write_transaction():
        entry = Entry.create(
            account=project.account_id,
            project=project.id,
            kind=kind,
            status="open",
            subject=subject.strip()[:500],
            text=text,
            author=user.id,
            from_name=user.name or user.email,
            from_address=user.email,
            occurred_at=occurred_at or utcnow(),
            project_status=project.status,
            category="internal" if kind == "note" else "customer",
            route_reason="added by hand",
        )
        index_entry(entry.id, subject=entry.subject, body=text, addresses=user.email,
                    attachments="")  # fmt: skip
        mentions = sorted(set(re.findall(r"@([\w.-]+)", text))) if kind == "note" else []
        if mentions:
            Event.create(account=project.account_id, kind="mention", entry=entry.id,
                         project=project.id, payload=json.dumps({"names": mentions}))  # fmt: skip
    return entry


def system_entry(project: Project, subject: str, text: str = "", user_id: int | None = None,
                 event: str | None = None, payload: dict | None = None) -> Entry:  # fmt: skip
    """Write a system entry (status change, change request …) and its event row."""
    from storage.search import index_entry

    with write_transaction():
        entry = Entry.create(
            account=project.account_id,
            project=project.id,
            kind="system",
            status="open",
            subject=subject[:500],
            text=text,
            author=user_id,
            occurred_at=utcnow(),
            project_status=project.status,
            category="internal",
            route_reason="system",
        )
        index_entry(entry.id, subject=entry.subject, body=text, addresses="", attachments="")
        if event:
            Event.create(account=project.account_id, kind=event, entry=entry.id,
                         project=project.id, payload=json.dumps(payload or {}))  # fmt: skip
    return entry


def update_project(project: Project, user_id: int | None, **fields) -> Project:
    """Change a project's fields; a status change writes a system entry."""
    allowed = {"name", "domain", "status", "contact_name"}
    unknown = set(fields) - allowed
    if unknown:
        raise ProtocolError(f"unknown project fields: {', '.join(sorted(unknown))}")
    if "name" in fields and not str(fields["name"]).strip():
        raise ProtocolError("a project needs a name")
    old_status = project.status
    with write_transaction():
        for key, value in fields.items():
            value = str(value).strip()
            setattr(project, key, value.lower() if key == "domain" else value)
        project.save()
        if "status" in fields and project.status != old_status:
            system_entry(
                project,
                f"Status changed from {old_status} to {project.status}",
                user_id=user_id,
                event="status_change",
                payload={"from": old_status, "to": project.status},
            )
    return project


def add_customer_address(
    project: Project,
    address: str,
    *,
    kind: str = "customer",
    user_id: int | None = None,
    check_unique: bool = True,
) -> CustomerAddress:
    """Store a validated, lower-cased customer address; one project per address and account."""
    normalized = address.strip().lower()
    if not ADDRESS.match(normalized):
        raise ProtocolError(f"not a valid email address: {address!r}")
    if kind not in ("customer", "partner"):
        raise ProtocolError("kind must be customer or partner")
    other = (
        CustomerAddress.select(CustomerAddress, Project)
        .join(Project)
        .where(
            (CustomerAddress.account == project.account_id)
            & (CustomerAddress.address == normalized)
        )
        .first()
    )
    if other is not None and other.project_id == project.id:
        return other
    if other is not None and check_unique:
        raise ProtocolError(f"{normalized} is already a customer address of {other.project.name}")
    row = CustomerAddress.create(
        account=project.account_id, project=project.id, address=normalized, kind=kind
    )
    _log(project.account_id, "address_added", project=project.id, user=user_id,
         detail=normalized)  # fmt: skip
    return row


def remove_customer_address(project: Project, address: str, user_id: int | None = None) -> None:
    deleted = (
        CustomerAddress.delete()
        .where(
            (CustomerAddress.project == project.id)
            & (CustomerAddress.address == address.strip().lower())
        )
        .execute()
    )
    if deleted:
        _log(project.account_id, "address_removed", project=project.id, user=user_id,
             detail=address.strip().lower())  # fmt: skip


def activity_of_entry(entry_id: int) -> list[Activity]:
    return list(Activity.select().where(Activity.entry == entry_id).order_by(Activity.id))
