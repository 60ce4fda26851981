"""Receiving and filing in tests through the product's own paths: storage.intake records
a delivery as the listener does, storage.filing files a record made by hand, the ingest
pipeline (parse, route, file) files a raw message."""

from __future__ import annotations

import datetime as dt
import hashlib

from smtpd_ingest.parser_pool import InlineParser
from smtpd_ingest.pipeline import process_intake
from storage.filing import InboundRecord, file_inbound
from storage.intake import Delivery, IntakeBatchItem, record_batch
from storage.models import Entry, Intake

RECEIVED_AT = dt.datetime(2026, 11, 27, 9, 0)  # when a delivery of the tests came, unless said


def record_intake(
    account_id: int,
    raw: bytes,
    *,
    recipient: str = "inbox@in.example",
    project_hint: int | None = None,
    received_at: dt.datetime = RECEIVED_AT,
    holder: str | None = None,
) -> int:
    """Record one accepted delivery as the listener does (claimed by `holder`, if given);
    return its intake id (the existing one for a repeated delivery)."""
    digest = hashlib.sha256(raw).hexdigest()
    delivery = Delivery(
        queue_id=f"Q{digest[:10]}",
        account_id=account_id,
        recipient=recipient,
        project_hint=project_hint,
        mail_from="a@b.test",
        peer="127.0.0.1:1",
        helo="mta",
        protocol="lmtp",
        received_at=received_at,
    )
    [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))], holder)
    return recorded.intake_id


def receive(account_id: int, raw: bytes, project_hint: int | None = None) -> Entry:
    """Record, parse, route and file a message in this process, as a running ingest does."""
    return file_intake(record_intake(account_id, raw, project_hint=project_hint))


def file_record(intake_id: int, record: InboundRecord) -> Entry:
    """File an intake as the record says (its entry, if it was filed before)."""
    filed = file_inbound([(intake_id, record)])
    return Entry.get_by_id(filed[0].entry_id if filed else Intake.get_by_id(intake_id).entry_id)


def file_intake(intake_id: int) -> Entry:
    """Parse, route and file an intake as a running ingest does."""
    filed = process_intake(intake_id, InlineParser())
    return Entry.get_by_id(filed.entry_id if filed else Intake.get_by_id(intake_id).entry_id)
