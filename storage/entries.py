"""Entries: list them, store an attachment, mark an intake failed.

Received mail is filed (and filed again by reprocess) by storage.filing alone."""

from __future__ import annotations

import hashlib
import json

from storage.models import Attachment, Entry, Intake


def add_attachment(
    entry_id: int,
    filename: str,
    original_filename: str,
    content_type: str,
    data: bytes,
    *,
    content_id: str | None = None,
    inline: bool = False,
) -> Attachment:
    """Store one file of an entry with its size and SHA-256."""
    return Attachment.create(
        entry=entry_id,
        filename=filename,
        original_filename=original_filename,
        content_type=content_type[:255],
        size=len(data),
        content_id=content_id,
        inline=inline,
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def mark_intake_failed(intake_id: int, error: str) -> None:
    """Record that processing an intake failed; the raw message stays for reprocess."""
    Intake.update(state="failed", error=error[:2000]).where(Intake.id == intake_id).execute()


def list_entries(
    account_id: int | None = None,
    project_id: int | None = None,
    unassigned: bool = False,
    limit: int | None = None,
) -> list[Entry]:
    """Return entries newest first, filtered by account and project (or unassigned)."""
    query = Entry.select().order_by(Entry.occurred_at.desc(), Entry.id.desc())
    if account_id is not None:
        query = query.where(Entry.account == account_id)
    if project_id is not None:
        query = query.where(Entry.project == project_id)
    elif unassigned:
        query = query.where(Entry.project.is_null())
    if limit:
        query = query.limit(limit)
    return list(query)


def attachment_names(entry_ids: list[int]) -> dict[int, list[str]]:
    """Return safe attachment file names per entry id."""
    names: dict[int, list[str]] = {i: [] for i in entry_ids}
    if not entry_ids:
        return names
    query = (
        Attachment.select(Attachment.entry, Attachment.filename)
        .where(Attachment.entry.in_(entry_ids))
        .order_by(Attachment.id)
    )
    for row in query:
        names[row.entry_id].append(row.filename)
    return names


def parse_warnings_of(entry: Entry) -> list[dict[str, str]]:
    """The parse warnings an entry holds (JSON written at filing), each item, code and
    detail as text; anything else stored there is left out, never an error."""
    try:
        found = json.loads(entry.parse_warnings or "[]")
    except (ValueError, RecursionError):
        return []
    keys = ("item", "code", "detail")
    return [
        {key: str(w.get(key) or "") for key in keys}
        for w in (found if isinstance(found, list) else [])
        if isinstance(w, dict)
    ]
