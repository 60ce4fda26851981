"""Filing in tests through the product's own paths: storage.filing for a record made by
hand, the ingest pipeline (parse, route, file) for a raw message."""

from __future__ import annotations

from smtpd_ingest.parser_pool import InlineParser
from smtpd_ingest.pipeline import process_intake
from storage.filing import InboundRecord, file_inbound
from storage.models import Entry, Intake


def file_record(intake_id: int, record: InboundRecord) -> Entry:
    """File an intake as the record says (its entry, if it was filed before)."""
    filed = file_inbound([(intake_id, record)])
    return Entry.get_by_id(filed[0].entry_id if filed else Intake.get_by_id(intake_id).entry_id)


def file_intake(intake_id: int) -> Entry:
    """Parse, route and file an intake as a running ingest does."""
    filed = process_intake(intake_id, InlineParser())
    return Entry.get_by_id(filed.entry_id if filed else Intake.get_by_id(intake_id).entry_id)
