"""Turn raw message bytes into a ParsedMail; the only module that imports mail-parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class ParseError(Exception):
    """The message cannot be parsed; it is stored raw with this reason."""


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # safe: no path parts, no control characters, bounded length
    original_filename: str  # as the sender wrote it, decoded; for display only
    content_type: str
    data: bytes
    content_id: str | None = None  # without <>, for cid: references
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    subject: str = ""
    from_: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    date: datetime | None = None  # timezone-aware, UTC
    message_id: str | None = None  # without <>
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    text: str = ""
    html: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    auto_submitted: bool = False
    is_bounce: bool = False
    is_list: bool = False
    defects: tuple[str, ...] = field(default=())


def parse_message(raw: bytes) -> ParsedMail:
    raise NotImplementedError
