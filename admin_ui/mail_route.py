"""The way a mail came before it reached postroom: its Received headers, read by mail-parser.

mail-parser's reading of one Received header costs time growing with the square of its
length (a search per clause found), so it gets at most MAX_HOPS of them (the newest: those
nearest postroom), each cut to MAX_RECEIVED bytes: its work per view is bounded whatever
the mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import mailparser

log = logging.getLogger(__name__)
MAX_HOPS = 40
MAX_RECEIVED = 2_000  # bytes read of each Received header (a real one is a few hundred)
MAX_TEXT = 200  # characters shown of each part of a hop


@dataclass(frozen=True)
class Hop:
    """One Received header, oldest first: which server handed the mail to which, when."""

    number: int
    sender: str  # the "from" part: the server that handed the mail on
    receiver: str  # the "by" part: the server that took it
    protocol: str  # the "with" part: ESMTP, ESMTPS, LMTP, …
    when: dt.datetime | None  # naive UTC, as stored times are
    delay: float | None  # seconds after the hop before, if both dates were readable


def hops(head: bytes | None) -> list[Hop]:
    """The hops recorded in a message's header block (the raw message's start will do)."""
    block = received_block(head or b"")
    if not block:
        return []
    try:
        received = mailparser.parse_from_bytes(block).received
    except Exception as error:  # noqa: BLE001 - a header it cannot read shows no hops
        log.info("Received headers not readable: %s", error)
        return []
    found = [_hop(number, fields) for number, fields in enumerate(received[:MAX_HOPS], 1)]
    return [hop for hop in found if hop.sender or hop.receiver]


def received_block(head: bytes) -> bytes:
    """The newest MAX_HOPS Received headers of a header block, each cut to MAX_RECEIVED
    bytes, as a header block of their own ("" if there is none); one pass over the lines."""
    fields: list[bytes] = []
    current: list[bytes] | None = None  # the lines of the Received header being read
    size = 0
    for line in head.split(b"\n"):
        line = line.removesuffix(b"\r")
        if not line:  # the end of the header block
            break
        if line[:1] in (b" ", b"\t"):  # a folded line goes with the header above it
            if current is not None and size + 2 < MAX_RECEIVED:  # 2: the CRLF before it
                current.append(line[: MAX_RECEIVED - size - 2])
                size += len(current[-1]) + 2
            continue
        if current is not None:
            fields.append(b"\r\n".join(current))
            current = None
            if len(fields) == MAX_HOPS:
                break
        name, colon, _ = line.partition(b":")
        if colon and name.strip().lower() == b"received":
            current, size = [line[:MAX_RECEIVED]], min(len(line), MAX_RECEIVED)
    if current is not None:
        fields.append(b"\r\n".join(current))
    return b"".join(field + b"\r\n" for field in fields) + b"\r\n" if fields else b""


def _hop(number: int, fields: dict) -> Hop:
    delay = fields.get("delay")
    return Hop(
        number=number,
        sender=_text(fields.get("from")),
        receiver=_text(fields.get("by")),
        protocol=_text(fields.get("with")),
        when=_when(fields.get("date_utc")),
        delay=float(delay) if isinstance(delay, int | float) and number > 1 else None,
    )


def _text(value: object) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _when(value: object) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when
