"""Import mail from mbox files, maildirs and .eml files through the ingest pipeline."""

from __future__ import annotations

import datetime as dt
import hashlib
import mailbox
from collections.abc import Iterator
from pathlib import Path

from smtpd_ingest.handler import new_queue_id
from smtpd_ingest.pipeline import Parser, assemble_records
from storage.filing import file_inbound
from storage.intake import Delivery, IntakeBatchItem, record_batch

BATCH = 200


def iter_messages(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """Yield (source name, raw bytes) for every message found under the paths."""
    for path in paths:
        if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in box.iterkeys():
                yield f"{path}:{key}", box.get_bytes(key)
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield str(child), child.read_bytes()
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
    account_id: int, recipient: str, messages: Iterator[tuple[str, bytes]], parser: Parser
) -> Iterator[tuple[int, int]]:
    """Store and file messages in batches; yield (messages done, new entries) per batch.

    A pipeline: while the parser processes work on one batch, this process stores the raw
    messages of the next and files the one before.
    """
    in_flight: tuple | None = None
    for batch in _batches(account_id, recipient, messages):
        recorded = record_batch(batch)
        new = [
            (item, rows[0].intake_id)
            for item, rows in zip(batch, recorded, strict=True)
            if rows[0].is_new
        ]
        started = (len(batch), new, parser.submit_many([item.raw for item, _ in new]))
        if in_flight is not None:
            yield _file(in_flight, parser)
        in_flight = started
    if in_flight is not None:
        yield _file(in_flight, parser)


def _batches(
    account_id: int, recipient: str, messages: Iterator[tuple[str, bytes]]
) -> Iterator[list[IntakeBatchItem]]:
    batch: list[IntakeBatchItem] = []
    for _source, raw in messages:
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
            yield batch
            batch = []
    if batch:
        yield batch


def _file(in_flight: tuple, parser: Parser) -> tuple[int, int]:
    """Collect a batch's parse results and file its new messages in one transaction."""
    count, new, pending = in_flight
    parsed = parser.collect(pending)
    records = assemble_records(
        [
            (item.deliveries[0].account_id, item.raw, None, result)
            for (item, _), result in zip(new, parsed, strict=True)
        ]
    )
    file_inbound([(i, r) for (_, i), r in zip(new, records, strict=True)])
    return count, len(new)
