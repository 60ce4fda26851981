"""The way a mail came before it reached postroom: its Received headers, read by mail-parser."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

import mailparser

log = logging.getLogger(__name__)
MAX_HOPS = 40
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
    if not head:
        return []
    header = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    if b"received:" not in header.lower():
        return []
    try:
        received = mailparser.parse_from_bytes(header + b"\r\n\r\n").received
    except Exception as error:  # noqa: BLE001 - a header it cannot read shows no hops
        log.info("Received headers not readable: %s", error)
        return []
    found = [_hop(number, fields) for number, fields in enumerate(received[:MAX_HOPS], 1)]
    return [hop for hop in found if hop.sender or hop.receiver]


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
