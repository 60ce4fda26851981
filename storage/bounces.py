"""Bounces of outbound mail: which outbound entry a bounce answers, and the bounce recorded.

A bounce is matched (smtpd_ingest/pipeline.py) by the VERP envelope sender it was sent to
(domain.bounces), else by the Message-ID of the returned message, else by a failed
recipient that recent mail of the account went to. record_bounce runs inside the filing
transaction that files the bounce itself (storage.filing), so the two are one change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from peewee import fn

from storage.activity import as_params
from storage.db import select_in
from storage.models import Activity, Entry, Event, OutboundMessage

MAX_IDS = 20  # Message-IDs and recipients of one bounce looked up, at most
RECENT_DAYS = 30  # a bounce found by its recipient only answers mail this new


def outbound_target(entry_id: int) -> tuple[int, int | None] | None:
    """(account id, project id) of an outbound entry, None if there is none with that id."""
    row = (
        Entry.select(Entry.account, Entry.project)
        .where((Entry.id == entry_id) & (Entry.kind == "outbound"))
        .tuples()
        .first()
    )
    return (row[0], row[1]) if row else None


def intake_recipients(intake_ids: list[int]) -> dict[int, str]:
    """The recipient each intake was delivered to."""
    rows = select_in("SELECT id, recipient FROM intake WHERE id IN", intake_ids)
    return dict(rows)


def match_outbound(
    account_id: int,
    *,
    entry_id: int | None = None,
    message_ids: Iterable[str] = (),
    recipients: Iterable[str] = (),
    now: dt.datetime,
) -> tuple[int, int | None] | None:
    """(entry id, project id) of the account's outbound mail a bounce answers, or None:
    the entry named by its VERP address, else the one whose Message-ID it returns, else the
    newest mail of the last RECENT_DAYS sent to one of its failed recipients."""
    outbound = (Entry.account == account_id) & (Entry.kind == "outbound")
    if entry_id is not None:
        row = Entry.select(Entry.id, Entry.project).where(outbound & (Entry.id == entry_id))
        found = row.tuples().first()
        if found:
            return found[0], found[1]
    ids = list(dict.fromkeys(i for i in message_ids if i))[:MAX_IDS]
    if ids:
        query = Entry.select(Entry.id, Entry.project).where(outbound & Entry.message_id.in_(ids))
        found = query.order_by(Entry.id.desc()).tuples().first()
        if found:
            return found[0], found[1]
    addresses = list(dict.fromkeys(a.lower() for a in recipients if a))[:MAX_IDS]
    if addresses:
        found = recent_mail_to(account_id, addresses, now).tuples().first()
        if found:
            return found[0], found[1]
    return None


def recent_mail_to(account_id: int, addresses: list[str], now: dt.datetime):
    """The account's mail of the last RECENT_DAYS sent to one of these (lower-case)
    addresses, newest first, as (entry id, project id); read through the index
    outbound_message_recipient (account_id, lower(to_address)), migration 0017."""
    since = now - dt.timedelta(days=RECENT_DAYS)
    return (
        OutboundMessage.select(Entry.id, Entry.project)
        .join(Entry, on=(OutboundMessage.entry == Entry.id))
        .where(
            (OutboundMessage.account == account_id)
            & fn.LOWER(OutboundMessage.to_address).in_(addresses)
            & (OutboundMessage.created_at >= since)
            & (OutboundMessage.state != "queued")
        )
        .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
    )


def record_bounce(
    outbound_entry_id: int,
    bounce_entry_id: int,
    *,
    status: str,
    detail: str,
    recipient: str,
    now: dt.datetime,
) -> None:
    """Mark the outbound entry bounced, inside the caller's write transaction: the reason on
    its queue row, the entry open again with a 'bounced' badge, an activity record, and an
    event (kind outbound_bounced) that tells its author (payload user_id)."""
    entry = Entry.get_or_none((Entry.id == outbound_entry_id) & (Entry.kind == "outbound"))
    if entry is None:
        return
    status, detail, recipient = status[:32], detail[:2000], recipient[:255]
    OutboundMessage.update(
        bounced_at=now,
        bounce_status=status,
        bounce_detail=detail,
        bounce_recipient=recipient,
        bounce_entry=bounce_entry_id,
    ).where(OutboundMessage.entry == entry.id).execute()
    Entry.update(status="open", done_by=None, done_at=None, send_problem="bounced").where(
        Entry.id == entry.id
    ).execute()
    words = " ".join(part for part in (status, detail) if part)
    Activity.create(
        account=entry.account_id,
        entry=entry.id,
        project=entry.project_id,
        action="bounced",
        detail=f"{recipient}: {words}"[:500] if recipient else words[:500],
        params=as_params({"recipient": recipient, "reason": words[:500]}),
        created_at=now,
    )
    payload = {
        "user_id": entry.author_id,
        "to": recipient,
        "subject": entry.subject,
        "status": status,
        "error": detail,
        "bounce_entry_id": bounce_entry_id,
    }
    Event.create(
        account=entry.account_id,
        kind="outbound_bounced",
        entry=entry.id,
        project=entry.project_id,
        payload=json.dumps(payload),
        created_at=now,
    )


@dataclass(frozen=True)
class BounceMark:
    """A bounce matched to the outbound entry it returns, to record when it is filed."""

    outbound_entry_id: int
    status: str = ""
    detail: str = ""
    recipient: str = ""
