"""What the team does with entries: tick done, assign, discard, notes, project changes."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from peewee import JOIN, fn

from storage.accounts import MAX_ID
from storage.db import MAIL_SCHEMA, is_sqlite, write_transaction
from storage.models import (
    Activity,
    Attachment,
    BlockRule,
    CustomerAddress,
    Entry,
    Event,
    Intake,
    Project,
    User,
    database,
    utcnow,
)

if TYPE_CHECKING:
    from storage.query import SearchQuery
    from storage.search import SearchPage

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


# The navigation shows counts on every page; counting stops here, so a page costs the same
# at a hundred open entries as at a million (the view shows "999+").
COUNT_LIMIT = 1000
# Predicates and names of the partial indexes of migration 0004, which hold exactly the rows
# counted. SQLite's planner prefers a wider index for them (and then reads every row to check
# `spam`), so on SQLite the count names its index.
_OPEN_FILED = ("entry_open_filed", "status = 'open' AND project_id IS NOT NULL AND NOT spam")
_UNASSIGNED = ("entry_unassigned", "project_id IS NULL AND NOT spam")


def open_ticket_count(account_id: int, limit: int | None = COUNT_LIMIT) -> int:
    """Count open filed entries, at most `limit` (None: all)."""
    return _count(_OPEN_FILED, account_id, limit)


def unassigned_count(account_id: int, limit: int | None = COUNT_LIMIT) -> int:
    """Count unassigned mail (spam left out), at most `limit` (None: all)."""
    return _count(_UNASSIGNED, account_id, limit)


def _count(partial_index: tuple[str, str], account_id: int, limit: int | None) -> int:
    """The number of the account's rows of a partial index, reading at most `limit` of them."""
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


def entry_of_account(account_id: int, entry_id: int) -> Entry | None:
    if not 0 < entry_id <= MAX_ID:
        return None
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
        _log(
            entry.account_id,
            "done" if done else "reopened",
            entry=entry.id,
            project=entry.project_id,
            user=user_id,
        )
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
        _log(
            entry.account_id,
            "assigned",
            entry=entry.id,
            project=project.id,
            user=user_id,
            detail="and remembered the sender" if remember_sender else "",
        )
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
        _log(
            entry.account_id,
            "discarded",
            entry=entry.id,
            user=user_id,
            detail=f"blocked {pattern}" if pattern else "",
        )
    return entry


def delete_entry(entry: Entry, user_id: int | None) -> None:
    """Delete an entry with its index row; the activity log keeps who did it."""
    from storage.search import unindex_entry

    if is_sqlite():
        # What PostgreSQL's ON DELETE SET NULL does: SQLite keeps no key across its two
        # files. First and on its own, so that a crash never leaves an intake naming a
        # deleted entry (ids are used again).
        with write_transaction(MAIL_SCHEMA):
            Intake.update(entry=None).where(Intake.entry == entry.id).execute()
    with write_transaction():
        _log(
            entry.account_id,
            "deleted",
            project=entry.project_id,
            user=user_id,
            detail=f"entry {entry.id}: {entry.subject[:200]}",
        )
        unindex_entry(entry.id)
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
        index_entry(
            entry.id, subject=entry.subject, body=text, addresses=user.email, attachments=""
        )
        mentions = sorted(set(re.findall(r"@([\w.-]+)", text))) if kind == "note" else []
        if mentions:
            Event.create(
                account=project.account_id,
                kind="mention",
                entry=entry.id,
                project=project.id,
                payload=json.dumps({"names": mentions}),
            )
    return entry


def system_entry(
    project: Project,
    subject: str,
    text: str = "",
    user_id: int | None = None,
    event: str | None = None,
    payload: dict | None = None,
) -> Entry:
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
            Event.create(
                account=project.account_id,
                kind=event,
                entry=entry.id,
                project=project.id,
                payload=json.dumps(payload or {}),
            )
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
    _log(project.account_id, "address_added", project=project.id, user=user_id, detail=normalized)
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
        _log(
            project.account_id,
            "address_removed",
            project=project.id,
            user=user_id,
            detail=address.strip().lower(),
        )


def activity_of_entry(entry_id: int) -> list[Activity]:
    return list(Activity.select().where(Activity.entry == entry_id).order_by(Activity.id))


# --- project pages -------------------------------------------------------------------------
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


MAX_ADDRESS_CHARS = 254  # RFC 5321's limit on a path


def create_project_with_addresses(
    account_id: int,
    name: str,
    *,
    domain: str = "",
    status: str = "lead",
    contact_name: str = "",
    addresses: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
    user_id: int | None = None,
) -> Project:
    """Create a project and its (address, kind) pairs, all or nothing.

    Raises ProtocolError whose args hold one message per refused address (or the name).
    """
    from storage.accounts import create_project

    if not name.strip():
        raise ProtocolError("a project needs a name")
    with write_transaction():
        project = create_project(
            account_id,
            name.strip(),
            domain=domain,
            status=status,
            contact_name=contact_name.strip(),
        )
        problems = []
        for address, kind in addresses:
            if len(address) > MAX_ADDRESS_CHARS:
                problems.append(f"too long for an email address: {address[:40]}…")
                continue
            try:
                add_customer_address(project, address, kind=kind, user_id=user_id)
            except ProtocolError as error:
                problems.append(str(error))
        if problems:
            raise ProtocolError(*problems)  # leaving the block rolls the project back
        _log(account_id, "project_created", project=project.id, user=user_id, detail=project.name)
    return project


def attachments_of_project(account_id: int, project_id: int, limit: int = 500) -> list[Attachment]:
    """Attachments of a project's entries (without their bytes), newest entry first.

    Each row carries its entry as `row.entry` (id, occurred_at, subject, kind).
    """
    return list(
        Attachment.select(
            Attachment.id,
            Attachment.entry,
            Attachment.filename,
            Attachment.content_type,
            Attachment.size,
            Attachment.inline,
            Entry.id,
            Entry.occurred_at,
            Entry.subject,
            Entry.kind,
        )
        .join(Entry)
        .where((Entry.account == account_id) & (Entry.project == project_id))
        .order_by(Entry.occurred_at.desc(), Entry.id.desc(), Attachment.id)
        .limit(limit)
    )


def protocol_page(
    account_id: int,
    project_id: int,
    query: SearchQuery | str,
    *,
    categories: tuple[str, ...] = (),
    limit: int = 50,
    before_key: tuple | None = None,
) -> SearchPage:
    """One page of a project's protocol, optionally of some entry categories only."""
    from storage.search import search

    return search(
        account_id,
        query,
        project_id=project_id,
        limit=limit,
        before_key=before_key,
        categories=categories,
    )


# --- what the entry pages show ------------------------------------------------------------
def projects_by_ids(account_id: int, project_ids: list[int]) -> dict[int, Project]:
    """The account's projects among these ids (candidates of unassigned mail), by id."""
    if not project_ids:
        return {}
    query = Project.select().where(
        (Project.account == account_id) & Project.id.in_(sorted(set(project_ids)))
    )
    return {project.id: project for project in query}


def attachments_of_entry(entry_id: int) -> list[Attachment]:
    """The entry's attachments without their bytes, for a list."""
    fields = [f for f in Attachment._meta.sorted_fields if f is not Attachment.data]
    query = Attachment.select(*fields).where(Attachment.entry == entry_id)
    return list(query.order_by(Attachment.inline, Attachment.id))


def attachment_of_entry(entry_id: int, attachment_id: int) -> Attachment | None:
    return Attachment.get_or_none((Attachment.id == attachment_id) & (Attachment.entry == entry_id))


def inline_parts(entry_id: int, content_ids: list[str]) -> dict[str, tuple[str, bytes]]:
    """(content type, bytes) of the entry's parts with these Content-IDs (a cid: image may
    name one %-encoded), in one query; the ids not found are left out."""
    wanted = {form for content_id in content_ids for form in (content_id, unquote(content_id))}
    if not wanted:
        return {}
    rows = (
        Attachment.select(Attachment.content_id, Attachment.content_type, Attachment.data)
        .where((Attachment.entry == entry_id) & Attachment.content_id.in_(sorted(wanted)))
        .order_by(Attachment.id)
    )
    parts: dict[str, tuple[str, bytes]] = {}
    for row in rows:
        parts.setdefault(row.content_id, (row.content_type.lower(), bytes(row.data)))
    found = {}
    for content_id in content_ids:
        part = parts.get(content_id) or parts.get(unquote(content_id))
        if part is not None:
            found[content_id] = part
    return found


def intakes_of_entry(entry_id: int) -> list[Intake]:
    """The deliveries that produced an entry (one per recipient), oldest first."""
    return list(Intake.select().where(Intake.entry == entry_id).order_by(Intake.id))


def activity_with_users(entry_id: int) -> list[Activity]:
    """An entry's activity, oldest first, with each user loaded in the same query."""
    query = (
        Activity.select(Activity, User)
        .join(User, JOIN.LEFT_OUTER)
        .where(Activity.entry == entry_id)
        .order_by(Activity.id)
    )
    return list(query)


# --- for the REST API ----------------------------------------------------------------------
PROJECT_EVENTS = ("status_change", "change_request", "requirements_submitted", "file_upload")
MAIL_KINDS = ("inbound", "outbound")


def project_of_address(account_id: int, address: str) -> Project | None:
    """Return the project of the account that stores this customer address, if any."""
    row = (
        CustomerAddress.select(CustomerAddress, Project)
        .join(Project)
        .where(
            (CustomerAddress.account == account_id)
            & (CustomerAddress.address == address.strip().lower())
        )
        .first()
    )
    return row.project if row is not None else None


def record_project_event(
    project: Project,
    kind: str,
    subject: str,
    *,
    text: str = "",
    status: str | None = None,
    data: dict | None = None,
    user_id: int | None = None,
) -> Entry:
    """Write the system entry and event row of something another tool reports on a project.

    A status_change that names a status also sets the project's status, in the same
    transaction; its payload carries "from" and "to" like `update_project`'s.
    """
    if kind not in PROJECT_EVENTS:
        raise ProtocolError(f"the event type must be one of {', '.join(PROJECT_EVENTS)}")
    if status is not None and kind != "status_change":
        raise ProtocolError("a status belongs to a status_change event only")
    if not subject.strip():
        raise ProtocolError("the subject is empty")
    payload: dict = {"data": data or {}}
    with write_transaction():
        if status is not None:
            status = status.strip()
            if not status:
                raise ProtocolError("the status is empty")
            payload.update({"from": project.status, "to": status})
            project.status = status
            project.save()
        return system_entry(
            project, subject.strip(), text, user_id=user_id, event=kind, payload=payload
        )


def delete_project(project: Project, user_id: int | None) -> None:
    """Delete a project: its mail stays, as unassigned; its notes, calls and system entries go."""
    from storage.search import unindex_entry

    with write_transaction():
        own = Entry.select(Entry.id).where(
            (Entry.project == project.id) & Entry.kind.not_in(MAIL_KINDS)
        )
        own_ids = [row.id for row in own]
        for entry_id in own_ids:
            unindex_entry(entry_id)
        if own_ids:
            Entry.delete().where(Entry.id.in_(own_ids)).execute()
        Entry.update(
            project=None, route_reason=f"project {project.name[:200]} was deleted", candidates="[]"
        ).where(Entry.project == project.id).execute()
        # the kept mail keeps its history (done, assigned …), which would go with the project
        Activity.update(project=None).where(
            (Activity.project == project.id) & Activity.entry.is_null(False)
        ).execute()
        _log(
            project.account_id,
            "project_deleted",
            user=user_id,
            detail=f"project {project.id}: {project.name[:200]}",
        )
        project.delete_instance()
