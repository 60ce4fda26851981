"""Entries and what the team does with them: done and open, assign (and remember the sender),
discard as spam (and block), delete; notes and calls written by hand; system entries and the
events other tools report on a project.

Rules held here, for the CLI, the UI and the API alike:
- done records who and when; open clears both;
- mail is assigned only to a project of its own account; remembering the sender stores it as
  a customer address of that project (domain.projects: at most one project per address),
  makes the entry customer mail, and files the sender's other waiting unassigned mail there too;
- spam is done and belongs to no project; blocking sends later mail from the sender (or its
  domain) to spam (domain.blocks);
- an entry written by hand is a note (internal) or a call (from the customer) with text;
  @names in a note are mentions; a call starts open, a note only when it needs action, a
  system entry done unless the account says otherwise (domain.open_rules);
- a project event is one of PROJECT_EVENTS; only a status_change may name a status, which it
  sets on the project in the same transaction.
Every change is written to the activity log in the same transaction.
The bulk actions (set_done_many, assign_many, discard_spam_many, delete_many) change many
entries of the acting user's account in one transaction, one activity record per entry
changed; an id of another account refuses the lot.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from domain import blocks, open_rules, projects
from domain.categories import ASSIGNED_AND_REMEMBERED, category
from domain.errors import Forbidden, Invalid, NotFound
from domain.routing import Rule
from domain.users import may_change_anything, may_delete_entries
from storage import entry_updates as store
from storage.activity import log
from storage.db import write_transaction
from storage.models import MAX_ID, Entry, Project, User, utcnow

MANUAL_KINDS = ("note", "call")
PROJECT_EVENTS = ("status_change", "change_request", "requirements_submitted", "file_upload")
MENTION = re.compile(r"@([\w.-]+)")

BAD_KIND = "kind must be note or call"
EMPTY_TEXT = "the text is empty"
EMPTY_SUBJECT = "the subject is empty"
EMPTY_STATUS = "the status is empty"
BAD_EVENT = "the event type must be one of {kinds}"
STATUS_ONLY_ON_CHANGE = "a status belongs to a status_change event only"
OTHER_ACCOUNT = "that project belongs to another account"
SAME_SENDER = "with the other mail from its sender"
READ_ONLY = "read-only users may not change anything"
DELETE_FOR_GOOD = "only an owner or admin may delete an entry; discard it instead"
NOT_OURS = "some of these entries do not exist or belong to another account"
TOO_MANY = "at most {limit} entries at once"
NONE_CHOSEN = "no entries chosen"

# A bulk action changes at most this many entries (in one transaction), read CHUNK at a time.
BULK_LIMIT = 10_000
CHUNK = 200


def set_done(entry: Entry, user_id: int | None, done: bool) -> Entry:
    """Tick or untick an entry, recording who and when."""
    with write_transaction():
        _set_done(entry, user_id, done)
    return entry


def _set_done(entry: Entry, user_id: int | None, done: bool) -> None:
    """Tick or untick in the caller's transaction, with its activity record."""
    store.set_status(
        entry,
        "done" if done else "open",
        user_id if done else None,
        utcnow() if done else None,
    )
    log(
        entry.account_id,
        "done" if done else "reopened",
        entry=entry.id,
        project=entry.project_id,
        user=user_id,
    )


@dataclass(frozen=True)
class Assignment:
    """An entry filed by hand, and the sender's other waiting mail filed with it."""

    entry: Entry
    also: tuple[Entry, ...] = ()


def assign(entry: Entry, project: Project, user_id: int | None, remember_sender: bool) -> Entry:
    """File an entry under a project by hand; optionally store its sender as customer (and
    file the sender's other waiting unassigned mail with it, see assign_mail)."""
    return assign_mail(entry, project, user_id, remember_sender).entry


def assign_mail(
    entry: Entry, project: Project, user_id: int | None, remember_sender: bool
) -> Assignment:
    """File an entry under a project by hand; optionally store its sender as customer.

    Remembering the sender also files every other unassigned mail of the account from that
    address (spam left out) under the project, in the same transaction, with an activity
    record for each: mail from a customer address belongs to its project.
    """
    if project.account_id != entry.account_id:
        raise NotFound(OTHER_ACCOUNT)
    remembered = remember_sender and bool(entry.from_address)
    also: list[Entry] = []
    with write_transaction():
        if remembered:
            projects.remember_sender(project, entry.from_address, user_id)
            also = _waiting_from(entry)
        for filed in (entry, *also):
            store.file_under(
                filed,
                project,
                route_rule=Rule.BY_HAND.value,
                category=ASSIGNED_AND_REMEMBERED if remembered else None,
            )
            log(
                filed.account_id,
                "assigned",
                entry=filed.id,
                project=project.id,
                user=user_id,
                detail=(
                    ("and remembered the sender" if filed is entry else SAME_SENDER)
                    if remember_sender
                    else ""
                ),
                params=(
                    {"remembered": "sender" if filed is entry else "same_sender"}
                    if remember_sender
                    else {}
                ),
            )
    return Assignment(entry, tuple(also))


def _waiting_from(entry: Entry) -> list[Entry]:
    """The account's other unassigned mail (spam left out) from the entry's sender."""
    query = Entry.select().where(
        (Entry.account == entry.account_id)
        & Entry.project.is_null()
        & (Entry.spam == False)  # noqa: E712
        & (Entry.from_address == entry.from_address)
        & (Entry.id != entry.id)
    )
    return list(query.order_by(Entry.id))


def discard_spam(
    entry: Entry,
    user_id: int | None,
    block: str | None = None,
    free_mail_domains: Iterable[str] = blocks.FREE_MAIL_DOMAINS,
) -> Entry:
    """Mark as spam; `block` "sender" or "domain" sends later mail from there to spam (never a
    whole domain of `free_mail_domains`, the configured `[spam] free_mail_domains`)."""
    with write_transaction():
        store.mark_spam(entry)
        pattern = None
        if block in blocks.SCOPES and entry.from_address:
            pattern = blocks.block_sender(
                entry.account_id, entry.from_address, block, free_mail_domains=free_mail_domains
            )
        log(
            entry.account_id,
            "discarded",
            entry=entry.id,
            user=user_id,
            detail=f"blocked {pattern}" if pattern else "",
            params={"blocked": pattern} if pattern else {},
        )
    return entry


# --- many entries at once (the bulk actions of Tickets and Unassigned) ------------------------
# Each takes the acting user and the ids chosen, refuses the lot if the user may not or one id
# is not of the user's account, changes them in one transaction with one activity record per
# entry changed, and returns how many it changed (an entry already so is left as it is).
def set_done_many(user: User, entry_ids: Iterable[int], done: bool) -> int:
    """Tick (or untick) many entries."""
    _may_change(user)
    changed = 0
    with write_transaction():
        for entry in _entries_of(user, entry_ids):
            if (entry.status == "done") != done:
                _set_done(entry, user.id, done)
                changed += 1
    return changed


def assign_many(user: User, entry_ids: Iterable[int], project: Project) -> int:
    """File many entries under a project by hand (their senders are not remembered)."""
    _may_change(user)
    if project.account_id != user.account_id:
        raise NotFound(OTHER_ACCOUNT)
    changed = 0
    with write_transaction():
        for entry in _entries_of(user, entry_ids):
            if entry.project_id == project.id and not entry.spam:
                continue
            store.file_under(entry, project, route_rule=Rule.BY_HAND.value, category=None)
            log(entry.account_id, "assigned", entry=entry.id, project=project.id, user=user.id)
            changed += 1
    return changed


def discard_spam_many(user: User, entry_ids: Iterable[int]) -> int:
    """Discard many entries as spam (nothing is blocked)."""
    _may_change(user)
    changed = 0
    with write_transaction():
        for entry in _entries_of(user, entry_ids):
            if not entry.spam:
                store.mark_spam(entry)
                log(entry.account_id, "discarded", entry=entry.id, user=user.id)
                changed += 1
    return changed


def delete_many(user: User, entry_ids: Iterable[int]) -> int:
    """Delete many entries for good (owners and admins only)."""
    _may_change(user)
    if not may_delete_entries(user):
        raise Forbidden(DELETE_FOR_GOOD)
    ids = [entry.id for entry in _entries_of(user, entry_ids)]
    for entry_id in ids:  # on its own, first: see storage.entry_updates.release_intakes
        store.release_intakes(entry_id)
    with write_transaction():
        for entry in _entries_of(user, ids):
            _log_deletion(entry, user.id)
            store.delete_entry(entry)
    return len(ids)


def _may_change(user: User) -> None:
    """Refuse a read-only user (Forbidden)."""
    if not may_change_anything(user):
        raise Forbidden(READ_ONLY)


def _entries_of(user: User, entry_ids: Iterable[int]) -> Iterator[Entry]:
    """The entries of these ids, CHUNK at a time; NotFound if one is not of the user's account
    (raised inside the caller's transaction, so nothing of the lot is kept)."""
    ids = sorted(set(entry_ids))
    if not ids:
        raise Invalid(NONE_CHOSEN)
    if len(ids) > BULK_LIMIT:
        raise Invalid(TOO_MANY.format(limit=BULK_LIMIT))
    if not 0 < ids[0] <= ids[-1] <= MAX_ID:
        raise NotFound(NOT_OURS)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = list(Entry.select().where((Entry.account == user.account_id) & Entry.id.in_(chunk)))
        if len(found) != len(chunk):
            raise NotFound(NOT_OURS)
        yield from found


def delete_entry(entry: Entry, user_id: int | None) -> None:
    """Delete an entry with its index row; the activity log keeps who did it."""
    store.release_intakes(entry.id)
    with write_transaction():
        _log_deletion(entry, user_id)
        store.delete_entry(entry)


def _log_deletion(entry: Entry, user_id: int | None) -> None:
    """The activity record of a deleted entry: on its project, naming the entry in words."""
    log(
        entry.account_id,
        "deleted",
        project=entry.project_id,
        user=user_id,
        detail=f"entry {entry.id}: {entry.subject[:200]}",
        params={"entry_id": entry.id, "subject": entry.subject[:200]},
    )


def add_manual_entry(
    project: Project,
    user: User,
    *,
    kind: str,
    text: str,
    subject: str = "",
    occurred_at: dt.datetime | None = None,
    needs_action: bool | None = None,
) -> Entry:
    """Add an internal note or a message from the customer (call, SMS, talk) to a timeline.

    A call starts open; a note only when `needs_action` (None: the account's default for the
    box, domain.open_rules), else done by its author at once.
    """
    if kind not in MANUAL_KINDS:
        raise Invalid(BAD_KIND)
    if not text.strip():
        raise Invalid(EMPTY_TEXT)
    starts_open = open_rules.manual_starts_open(
        open_rules.defaults_of(project.account_id), kind, needs_action
    )
    done = {} if starts_open else {"status": "done", "done_by": user.id}
    with write_transaction():
        entry = store.insert_entry(
            project,
            **done,
            addresses=user.email,
            kind=kind,
            subject=subject.strip()[:500],
            text=text,
            author=user.id,
            from_name=user.name or user.email,
            from_address=user.email,
            occurred_at=occurred_at or utcnow(),
            category=category(kind),
            route_rule=Rule.ADDED_BY_HAND.value,
            route_detail="",
        )
        mentions = sorted(set(MENTION.findall(text))) if kind == "note" else []
        if mentions:
            store.insert_event(project, "mention", entry, {"names": mentions})
    return entry


def system_entry(
    project: Project,
    subject: str,
    text: str = "",
    user_id: int | None = None,
    event: str | None = None,
    payload: dict | None = None,
    *,
    event_kind: str | None = None,
    event_params: dict | None = None,
) -> Entry:
    """Write a system entry (status change, change request …) and its event row; it starts
    done unless the account's settings say open (domain.open_rules). A system entry postroom
    words itself names its event_kind and event_params (admin_ui.event_text words it in the
    reader's language; subject and text hold the English too); one whose words another tool
    reported (record_project_event) has none and is shown as reported."""
    starts_open = open_rules.defaults_of(project.account_id).system
    return store.insert_system_entry(
        project,
        subject,
        text,
        user_id=user_id,
        event=event,
        payload=payload,
        route_rule=Rule.SYSTEM.value,
        category=category("system"),
        status="open" if starts_open else "done",
        event_kind=event_kind,
        event_params=event_params,
    )


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
    transaction; its payload carries "from" and "to" like update_project's.
    """
    if kind not in PROJECT_EVENTS:
        raise Invalid(BAD_EVENT.format(kinds=", ".join(PROJECT_EVENTS)))
    if status is not None and kind != "status_change":
        raise Invalid(STATUS_ONLY_ON_CHANGE)
    if not subject.strip():
        raise Invalid(EMPTY_SUBJECT)
    payload: dict = {"data": data or {}}
    with write_transaction():
        if status is not None:
            status = status.strip()
            if not status:
                raise Invalid(EMPTY_STATUS)
            payload.update({"from": project.status, "to": status})
            projects.set_status(project, status)
        return system_entry(
            project, subject.strip(), text, user_id=user_id, event=kind, payload=payload
        )


NOT_SPAM = "that entry is not in spam"


def not_spam(user: User, entry: Entry, project: Project | None = None) -> Entry:
    """Take an entry out of spam: open again, back in Unassigned, or filed under `project`.

    Mail a block rule sent to spam is then listed as from an unknown sender (the rule stays;
    Settings removes it). One activity record, "not_spam", names the project if any.
    """
    from storage.blocks import release_from_spam

    _may_change(user)
    if entry.account_id != user.account_id:
        raise NotFound(NOT_OURS)
    if project is not None and project.account_id != user.account_id:
        raise NotFound(OTHER_ACCOUNT)
    with write_transaction():
        entry = Entry.get_by_id(entry.id)
        if not entry.spam:
            raise Invalid(NOT_SPAM)
        if entry.route_rule == Rule.BLOCKED.value:
            rule, detail = (
                (Rule.UNKNOWN_SENDER.value, entry.from_address)
                if entry.from_address
                else (Rule.NO_SENDER.value, "")
            )
        else:
            rule, detail = entry.route_rule, entry.route_detail
        release_from_spam(entry, route_rule=rule, route_detail=detail)
        if project is not None:
            store.file_under(entry, project, route_rule=Rule.BY_HAND.value, category=None)
        log(
            entry.account_id,
            "not_spam",
            entry=entry.id,
            project=project and project.id,
            user=user.id,
        )
    return entry
