"""Import mail from mbox files, maildirs and .eml files through the ingest pipeline.

Imported mail is routed as live mail is (domain.routing), but it never notifies anyone (no
event rows are written), and what domain.archive calls old is filed done, so that a year's
archive does not land in the team's Tickets. The import holds its own claim on the intakes it
records (storage.intake), so that a running ingest does not take them up and file them as
live mail meanwhile; a message it cannot file is quarantined (`postroom reprocess`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mailbox
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from domain.archive import filed_done
from smtpd_ingest.handler import new_queue_id
from smtpd_ingest.pipeline import Parser, assemble_records
from storage.entries import mark_intake_failed
from storage.filing import Filed, InboundRecord, file_inbound
from storage.intake import Delivery, IntakeBatchItem, beat, new_holder, record_batch, release

log = logging.getLogger("postroom.import")

BATCH = 200
CLAIM_SECONDS = 600.0  # the import's lease on its intakes, renewed every batch


@dataclass
class ImportCounts:
    """What an import did with the messages it read."""

    read: int = 0
    filed: int = 0  # new entries filed under a project
    unassigned: int = 0  # new entries no project took
    spam: int = 0  # new entries discarded as spam (a blocked sender)
    already_stored: int = 0  # stored before (an earlier import, or live mail)
    failed: int = 0  # unreadable, or could not be filed (quarantined)
    done: int = 0  # of the new entries not spam: filed done (old, or --as-done)

    @property
    def new(self) -> int:
        """New entries of any kind."""
        return self.filed + self.unassigned + self.spam

    def add(self, other: ImportCounts) -> None:
        """Add another batch's counts to these."""
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        """The counts by name, for --json."""
        return asdict(self)


def iter_messages(paths: list[Path]) -> Iterator[tuple[str, bytes | None]]:
    """Yield (source name, raw bytes) for every message found under the paths; None for the
    bytes of a source that cannot be read (logged, counted failed)."""
    for path in paths:
        try:
            yield from _messages_of(path)
        except OSError as error:
            log.error("import: cannot read %s: %s", path, error)
            yield str(path), None


def _messages_of(path: Path) -> Iterator[tuple[str, bytes | None]]:
    """The messages of one path: a maildir, a folder of files, an mbox or one message."""
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in box.iterkeys():
            yield f"{path}:{key}", box.get_bytes(key)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            try:
                yield str(child), child.read_bytes()
            except OSError as error:
                log.error("import: cannot read %s: %s", child, error)
                yield str(child), None
    elif _is_mbox(path):
        box = mailbox.mbox(path, factory=None, create=False)
        for key in box.iterkeys():
            yield f"{path}:{key}", box.get_bytes(key)
    else:
        yield str(path), path.read_bytes()


def count_messages(paths: list[Path]) -> int:
    """Count messages cheaply, for the progress bar."""
    total = 0
    for path in paths:
        if path.is_dir() and (path / "cur").is_dir():
            total += sum(1 for _ in (path / "cur").iterdir()) + sum(
                1 for _ in (path / "new").iterdir()
            )
        elif path.is_dir():
            total += sum(1 for p in path.rglob("*") if p.is_file())
        elif _is_mbox(path):
            with open(path, "rb") as handle:
                total += sum(1 for line in handle if line.startswith(b"From "))
        else:
            total += 1
    return total


def _is_mbox(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(5) == b"From "


def import_messages(
    account_id: int,
    recipient: str,
    messages: Iterator[tuple[str, bytes | None]],
    parser: Parser,
    *,
    cutoff: dt.datetime | None = None,
    as_done: bool = False,
) -> Iterator[ImportCounts]:
    """Store and file messages in batches, notifying nobody; yield each batch's counts.

    A mail dated before `cutoff` (naive UTC; None: none), or any with `as_done`, is filed done
    (domain.archive). A pipeline: while the parser processes work on one batch, this process
    stores the raw messages of the next and files the one before.
    """
    holder = new_holder()
    in_flight: tuple | None = None
    try:
        for batch, unreadable in _batches(account_id, recipient, messages):
            beat(holder, CLAIM_SECONDS)
            recorded = record_batch(batch, holder)
            new = [
                (item, rows[0].intake_id)
                for item, rows in zip(batch, recorded, strict=True)
                if rows[0].is_new
            ]
            read = len(batch) + unreadable
            started = (read, unreadable, new, parser.submit_many([item.raw for item, _ in new]))
            if in_flight is not None:
                yield _file(in_flight, parser, holder, cutoff, as_done)
            in_flight = started
        if in_flight is not None:
            yield _file(in_flight, parser, holder, cutoff, as_done)
    finally:
        release(holder)


def _batches(
    account_id: int, recipient: str, messages: Iterator[tuple[str, bytes | None]]
) -> Iterator[tuple[list[IntakeBatchItem], int]]:
    """The readable messages in batches to store, each with the number of unreadable ones."""
    batch: list[IntakeBatchItem] = []
    unreadable = 0
    for _source, raw in messages:
        if raw is None:
            unreadable += 1
            continue
        delivery = Delivery(
            queue_id=new_queue_id(),
            account_id=account_id,
            recipient=recipient,
            project_hint=None,
            mail_from="",
            peer="import",
            helo="",
            protocol="import",
            received_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
        digest = hashlib.sha256(raw).hexdigest()
        batch.append(IntakeBatchItem(digest, len(raw), raw, (delivery,)))
        if len(batch) >= BATCH:
            yield batch, unreadable
            batch, unreadable = [], 0
    if batch or unreadable:
        yield batch, unreadable


def _file(
    in_flight: tuple, parser: Parser, holder: str, cutoff: dt.datetime | None, as_done: bool
) -> ImportCounts:
    """Collect a batch's parse results and file its new messages in one transaction."""
    read, unreadable, new, pending = in_flight
    parsed = parser.collect(pending)
    records = assemble_records(
        [
            (item.deliveries[0].account_id, item.raw, None, result)
            for (item, _), result in zip(new, parsed, strict=True)
        ]
    )
    items = [
        (
            intake_id,
            record
            if record.done  # an auto-reply starts done anyway (domain.open_rules)
            else replace(record, done=filed_done(record.occurred_at, cutoff, as_done=as_done)),
        )
        for (_, intake_id), record in zip(new, records, strict=True)
    ]
    counts = ImportCounts(read=read, failed=unreadable, already_stored=read - unreadable - len(new))
    filed, failed = _file_items(items, holder)
    counts.failed += failed
    record_of = dict(items)
    for one in filed:
        record = record_of[one.intake_id]
        if not one.new:
            counts.already_stored += 1
            continue
        if record.spam:
            counts.spam += 1
            continue
        if one.project_id is not None:
            counts.filed += 1
        else:
            counts.unassigned += 1
        counts.done += record.done
    return counts


def _file_items(items: list[tuple[int, InboundRecord]], holder: str) -> tuple[list[Filed], int]:
    """File a batch in one transaction; if that fails, each message alone, quarantining those
    that still fail. Return what was filed and how many failed."""
    try:
        return file_inbound(items, holder, notify=False), 0
    except Exception:  # one bad message must not cost the batch
        log.exception("import: a batch of %d could not be filed; filing one by one", len(items))
    filed: list[Filed] = []
    failed = 0
    for intake_id, record in items:
        try:
            filed += file_inbound([(intake_id, record)], holder, notify=False)
        except Exception as error:  # counted, and kept for `postroom reprocess`
            log.exception("import: intake %s could not be filed", intake_id)
            mark_intake_failed(intake_id, f"import: {error}")
            failed += 1
    return filed, failed
