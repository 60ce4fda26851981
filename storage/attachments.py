"""Attachments as pages show them: an entry's list, one for download, inline images, a
project's files."""

from __future__ import annotations

from urllib.parse import unquote

from storage.models import Attachment, Entry


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
