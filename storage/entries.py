"""Write inbound entries with their participants, attachments, index row and event."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

from storage.db import write_transaction
from storage.filing import (
    AttachmentRecord,
    InboundRecord,
    addresses_json,
    bounded,
    file_inbound,
    participants_of,
)
from storage.models import (
    Attachment,
    CustomerAddress,
    Entry,
    Intake,
    Participant,
    Project,
    User,
    utcnow,
)
from storage.search import index_entry, remember_correspondents, unindex_entry


def store_inbound(intake_id: int, record: InboundRecord) -> Entry:
    """File an intake as an entry; a second recipient of the same account reuses the entry."""
    filed = file_inbound([(intake_id, record)])
    if filed:
        return Entry.get_by_id(filed[0].entry_id)
    return Entry.get_by_id(Intake.get_by_id(intake_id).entry_id)  # filed before


def replace_content(entry: Entry, record: InboundRecord) -> Entry:
    """Rewrite a stored entry from a new parse (reprocess); its project is kept if filed."""
    record = bounded(record)
    with write_transaction():
        Attachment.delete().where(Attachment.entry == entry.id).execute()
        Participant.delete().where(Participant.entry == entry.id).execute()
        unindex_entry(entry.id)
        if entry.project_id is not None:
            record = replace(record, project_id=entry.project_id, route_reason=entry.route_reason)
        intake = Intake.get_or_none(Intake.entry == entry.id)
        _fill(entry, record, intake)
    return entry


def _fill(entry: Entry, record: InboundRecord, intake: Intake | None) -> None:
    entry.project = record.project_id
    entry.route_reason = record.route_reason
    entry.candidates = json.dumps(list(record.candidates))
    entry.parse_error = record.parse_error
    entry.subject = record.subject
    entry.from_address = record.from_address.lower()
    entry.from_name = record.from_name
    entry.to_addresses = addresses_json(record.to)
    entry.cc_addresses = addresses_json(record.cc)
    entry.text = record.text
    entry.html = record.html
    entry.html_safe = record.html_safe
    entry.html_note = record.html_note or None
    entry.has_attachments = any(not a.inline for a in record.attachments)
    entry.occurred_at = record.occurred_at or (intake.received_at if intake else utcnow())
    entry.message_id = record.message_id
    entry.in_reply_to = " ".join(record.in_reply_to)
    entry.references = " ".join(record.references)
    entry.auto_submitted = record.auto_submitted
    entry.is_bounce = record.is_bounce
    entry.is_list = record.is_list
    entry.spam = record.spam
    if record.spam:
        entry.status = "done"
    entry.category = _category(entry.account_id, record.project_id, entry.from_address)
    if record.project_id is not None:
        project = Project.get_by_id(record.project_id)
        entry.project_status = project.status
    entry.save()
    participants = participants_of(record)
    if participants:
        Participant.insert_many(
            [
                {"entry": entry.id, "role": role, "name": name, "address": address}
                for role, name, address in participants
            ]
        ).execute()
        remember_correspondents((entry.account_id, a, n) for _, n, a in participants)
    for item in record.attachments:
        add_attachment(
            entry.id,
            item.filename,
            item.original_filename,
            item.content_type,
            item.data,
            content_id=item.content_id,
            inline=item.inline,
        )
    index_entry(
        entry.id,
        subject=record.subject,
        body=record.text,
        addresses=" ".join(a for _, _, a in participants),
        attachments=" ".join(a.filename for a in record.attachments),
    )


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


def _category(account_id: int, project_id: int | None, sender: str) -> str:
    """Customer or partner by the project's addresses, internal for the team, else external."""
    if not sender:
        return "external"
    if project_id is not None:
        row = CustomerAddress.get_or_none(
            (CustomerAddress.project == project_id) & (CustomerAddress.address == sender)
        )
        if row is not None:
            return row.kind
    if User.select().where((User.account == account_id) & (User.email == sender)).exists():
        return "internal"
    return "external"


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


__all__ = ["AttachmentRecord", "InboundRecord", "add_attachment", "store_inbound"]
