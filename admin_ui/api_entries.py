"""API views of entries: list and search, one entry, its raw message, done, assign, discard."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

from flask import Response, current_app, g

from admin_ui import api_schemas as schemas
from admin_ui.api_request import ApiError, api, api_user, no_content, not_found
from admin_ui.api_schemas import MAX_ID
from domain import entries as domain_entries
from domain.routing import decision_of, explain
from domain.time_zones import effective_zone
from domain.translatable import N_
from domain.users import may_delete_entries
from storage.entries import parse_warnings_of
from storage.intake import load_raw
from storage.models import Attachment, Entry, Project, RawMessage
from storage.projects import project_of_account
from storage.query import QuerySyntaxError, parse_query
from storage.search import search
from storage.timeline import entry_of_account

# A page skips spam; give up filling it after this many queries and let the cursor go on.
SPAM_SKIP_ROUNDS = 10


@api.query(schemas.EntryQuery)
@api.response(200, schemas.EntryPage, description="A page of entries.")
@api.alt_response(404, "NotFound")
def list_entries(query: dict):
    """List or search entries, newest first"""
    user = api_user()
    account_id = user.account_id
    try:
        words = parse_query(query.get("q", ""))
    except QuerySyntaxError as error:
        raise ApiError(400, error.message_id, **error.values) from None
    project_id = query.get("project_id")
    unassigned = query["unassigned"]
    if unassigned and project_id is not None:
        raise ApiError(400, N_("ask for project_id or unassigned=true, not both"))
    include_spam = query["include_spam"]
    limit = query["limit"]
    key = decode_cursor(query.get("cursor"))
    if project_id is not None:
        project_or_404(project_id)
    entries: list[Entry] = []
    for _round in range(SPAM_SKIP_ROUNDS):
        page = search(
            account_id,
            words,
            project_id=project_id,
            unassigned=unassigned,
            limit=limit - len(entries),
            before_key=key,
            zone=effective_zone(user),  # after:/before: are the user's local days
        )
        entries += [entry for entry in page.entries if include_spam or not entry.spam]
        key = page.next_key
        if key is None or len(entries) >= limit:
            break
    return {"entries": entries_json(entries), "next_cursor": encode_cursor(key)}


@api.response(200, schemas.Entry, description="The entry.")
def get_entry(entry_id: int):
    """One entry"""
    return entry_json(entry_or_404(entry_id))


@api.response(
    200,
    {"type": "string", "format": "binary"},
    content_type="message/rfc822",
    description="The raw message.",
)
def entry_raw(entry_id: int):
    """The received message as it arrived"""
    entry = entry_or_404(entry_id)
    try:
        raw = load_raw(entry.raw_sha256) if entry.raw_sha256 else None
    except RawMessage.DoesNotExist:
        raw = None
    if raw is None:
        raise ApiError(404, N_("this entry has no raw message (it was not received by mail)"))
    return Response(
        raw,
        mimetype="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="entry-{entry.id}.eml"'},
    )


@api.response(200, schemas.Entry, description="The entry.")
def mark_done(entry_id: int):
    """Tick an entry done"""
    entry = domain_entries.set_done(entry_or_404(entry_id), api_user().id, True)
    return entry_json(entry)


@api.response(200, schemas.Entry, description="The entry.")
def mark_open(entry_id: int):
    """Untick an entry (open again)"""
    entry = domain_entries.set_done(entry_or_404(entry_id), api_user().id, False)
    return entry_json(entry)


@api.body(schemas.EntryAssign)
@api.response(
    200,
    schemas.EntryAssigned,
    description="The entry, and how many more mails from its sender were filed with it.",
)
def assign_entry(entry_id: int, body: dict):
    """File an entry under a project (remember_sender: with the sender's other waiting mail)"""
    entry = entry_or_404(entry_id)
    project = project_or_404(body["project_id"])
    remember = body["remember_sender"]
    assignment = domain_entries.assign_mail(entry, project, api_user().id, remember)
    return {**entry_json(assignment.entry), "also_filed": len(assignment.also)}


@api.body(schemas.EntryDiscard, required=False)
@api.response(200, schemas.Entry, description="The entry.")
def discard_entry(entry_id: int, body: dict):
    """Discard an entry as spam"""
    entry = entry_or_404(entry_id)
    free_mail = current_app.config["POSTROOM_SETTINGS"].spam.free_mail_domains
    discarded = domain_entries.discard_spam(
        entry, api_user().id, body.get("block"), free_mail_domains=free_mail
    )
    return entry_json(discarded)


@api.response(204, description="Done; no content.")
def delete_entry(entry_id: int):
    """Delete an entry (owner or admin)"""
    entry = entry_or_404(entry_id)
    if not may_delete_entries(api_user()):
        raise ApiError(403, N_("only an owner or admin may delete an entry; discard it instead"))
    domain_entries.delete_entry(entry, api_user().id)
    return no_content()


# --- lookups scoped to the token user's account ----------------------------------------------
# admin_ui.api's guard looks up the entry or project of the path before the body is read (a
# wrong id is a 404 before a wrong body is a 422); the view gets the same object from g.
def entry_or_404(entry_id: int) -> Entry:
    entry = g.get("entry")
    if entry is not None and entry.id == entry_id:
        return entry
    if entry_id <= MAX_ID:
        entry = entry_of_account(api_user().account_id, entry_id)
    if entry is None:
        raise not_found("entry")
    g.entry = entry
    return entry


def project_or_404(project_id: int) -> Project:
    project = g.get("project")
    if project is not None and project.id == project_id:
        return project
    if project_id <= MAX_ID:
        project = project_of_account(api_user().account_id, project_id)
    if project is None:
        raise not_found("project")
    return project


# --- the cursor: the keyset (occurred_at, id) of the last entry seen, opaque to clients ------
def encode_cursor(key: tuple | None) -> str | None:
    if key is None:
        return None
    when, entry_id = key
    text = json.dumps([when.isoformat(), entry_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, int] | None:
    if not cursor:
        return None
    try:
        if len(cursor) > 200:
            raise ValueError(cursor)
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, entry_id = json.loads(text)
        if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id > MAX_ID:
            raise ValueError(entry_id)
        return dt.datetime.fromisoformat(when).replace(tzinfo=None), entry_id
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise ApiError(
            400, N_("cursor is not valid: pass next_cursor of the previous page")
        ) from None


# --- JSON shapes -----------------------------------------------------------------------------
def entry_json(entry: Entry) -> dict:
    return entries_json([entry])[0]


def entries_json(entries: list[Entry]) -> list[dict]:
    """Entries as the API shows them; the attachments of all of them in one query."""
    files: dict[int, list[dict]] = {entry.id: [] for entry in entries}
    fields = (
        Attachment.id,
        Attachment.entry,
        Attachment.filename,
        Attachment.content_type,
        Attachment.size,
    )
    if entries:
        query = Attachment.select(*fields).where(Attachment.entry.in_(list(files)))
        for row in query.order_by(Attachment.id):
            files[row.entry_id].append(
                {
                    "id": row.id,
                    "filename": row.filename,
                    "content_type": row.content_type,
                    "size": row.size,
                }
            )
    return [_entry_fields(entry, files[entry.id]) for entry in entries]


def _entry_fields(entry: Entry, attachments: list[dict]) -> dict:
    return {
        "id": entry.id,
        "project_id": entry.project_id,
        "kind": entry.kind,
        "status": entry.status,
        "category": entry.category,
        "subject": entry.subject,
        "from": entry.from_address,
        "from_name": entry.from_name,
        "to": _addresses(entry.to_addresses),
        "cc": _addresses(entry.cc_addresses),
        "text": entry.text,
        "has_attachments": bool(entry.has_attachments),
        "attachments": attachments,
        "route_reason": explain(decision_of(entry)),
        "route": decision_of(entry).as_json(),
        "candidates": [int(c) for c in entry.candidate_ids],
        "parse_error": entry.parse_error,
        "parse_warnings": parse_warnings_of(entry),
        "message_id": entry.message_id,
        "occurred_at": entry.occurred_at,
        "received_at": entry.received_at,
        "done_at": entry.done_at,
        "spam": bool(entry.spam),
        "auto_submitted": bool(entry.auto_submitted),
        "bounce": bool(entry.is_bounce),
        "send_problem": entry.send_problem or None,
        "has_raw": entry.raw_sha256 is not None,
    }


def _addresses(stored: str) -> list[dict]:
    return [
        {"name": str(item.get("name") or ""), "address": str(item.get("address") or "")}
        for item in json.loads(stored or "[]")
    ]
