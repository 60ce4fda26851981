"""Record accepted deliveries durably: the raw message and one intake row per recipient."""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

from storage.db import is_postgres, write_transaction
from storage.models import Intake, RawMessage, database, utcnow


@dataclass(frozen=True)
class Delivery:
    """The envelope of a message for one recipient, as the listener saw it."""

    queue_id: str
    account_id: int
    recipient: str
    project_hint: int | None
    mail_from: str
    peer: str
    helo: str
    protocol: str
    received_at: dt.datetime


@dataclass(frozen=True)
class IntakeBatchItem:
    """One message of a group commit: its bytes and its deliveries."""

    sha256: str
    size: int
    raw: bytes
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True)
class Recorded:
    intake_id: int
    is_new: bool


def compress_raw(raw: bytes) -> bytes:
    """Compress a raw message for storage (zlib releases the GIL on large input)."""
    return zlib.compress(raw, 3)


def load_raw(sha256: str) -> bytes:
    """Return the raw bytes of a stored message."""
    row = RawMessage.get_by_id(sha256)
    data = bytes(row.data)
    return zlib.decompress(data) if row.compression == "zlib" else data


def record_batch(items: list[IntakeBatchItem]) -> list[list[Recorded]]:
    """Store a batch of messages in one transaction; repeated deliveries are kept once."""
    results: list[list[Recorded]] = []
    compressed = [compress_raw(item.raw) for item in items]  # outside the write lock
    with write_transaction():
        for item, data in zip(items, compressed, strict=True):
            RawMessage.insert(
                sha256=item.sha256,
                size=item.size,
                compression="zlib",
                data=data,
                created_at=utcnow(),
            ).on_conflict_ignore().execute()
            results.append([_record_delivery(item.sha256, d) for d in item.deliveries])
    return results


def _record_delivery(sha256: str, delivery: Delivery) -> Recorded:
    query = Intake.insert(
        queue_id=delivery.queue_id,
        raw=sha256,
        account=delivery.account_id,
        recipient=delivery.recipient,
        project_hint=delivery.project_hint,
        mail_from=delivery.mail_from,
        peer=delivery.peer,
        helo=delivery.helo,
        protocol=delivery.protocol,
        received_at=delivery.received_at,
    ).on_conflict_ignore()
    if is_postgres():
        cursor = database.execute(query.returning(Intake.id))
        row = cursor.fetchone()
        if row:
            return Recorded(row[0], True)
    else:
        cursor = database.execute(query)
        if cursor.rowcount == 1:
            return Recorded(cursor.lastrowid, True)
    existing = Intake.get((Intake.raw == sha256) & (Intake.recipient == delivery.recipient))
    return Recorded(existing.id, False)


def pending_intake_ids() -> list[int]:
    """Return the ids of all intakes still waiting for parse and route (after a crash, say)."""
    query = Intake.select(Intake.id).where(Intake.state == "pending").order_by(Intake.id)
    return [intake_id for (intake_id,) in query.tuples().iterator()]
