"""Read a message's header fields: addresses, dates, message ids and sender flags."""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message

from smtpd_ingest.mime_text import decode_words, header_text

BRACKETED_ID = re.compile(r"<([^<>]*)>")
_ID_SEPARATORS = re.compile(r"[\s<>,;\"()]+")  # one character class: linear
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Address:
    name: str
    address: str


def first_headers(part: Message) -> dict[str, str]:
    """Map each lowercased header name to its first raw value."""
    index: dict[str, str] = {}
    for name, value in part.raw_items():
        index.setdefault(name.strip().lower(), value)
    return index


def addresses(raw: str | None) -> tuple[Address, ...]:
    """Parse an address header into Addresses, dropping entries without an address."""
    if raw is None:
        return ()
    try:
        pairs = email.utils.getaddresses([header_text(raw)])
    except RecursionError:  # thousands of nested comments or groups: no usable address
        return ()
    return tuple(
        Address(name=decode_words(name).strip(), address=address.strip())
        for name, address in pairs
        if address.strip()
    )


def date(raw: str | None) -> datetime | None:
    """Parse a Date header into an aware UTC datetime, or None if missing or unparseable."""
    if raw is None:
        return None
    text = _COMMENT.sub(" ", header_text(raw))
    try:
        value = email.utils.parsedate_to_datetime(text)
        if value.tzinfo is None:  # "-0000": the zone is unknown, the time is UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def ids(raw: str | None) -> tuple[str, ...]:
    """Extract message ids without <> from a header, tolerating missing brackets."""
    if raw is None:
        return ()
    text = header_text(raw)
    found = ["".join(i.split()) for i in BRACKETED_ID.findall(text)]
    if not any(found):  # words with an @ inside
        found = [word for word in _ID_SEPARATORS.split(text) if "@" in word[1:-1]]
    return tuple(dict.fromkeys(i for i in found if i))


def message_id(raw: str | None) -> str | None:
    """Return the Message-ID without <>, or None if the header is missing or empty."""
    found = ids(raw)
    if found:
        return found[0]
    words = header_text(raw).strip().strip("<>").split()
    return words[0] if words else None


def token(raw: str | None) -> str:
    """Return a header's first word, lowercased, without parameters or quotes."""
    return header_text(raw).split(";", 1)[0].strip().strip("\"'").lower()


def is_auto_submitted(headers: dict[str, str]) -> bool:
    """Tell whether the mail was sent by a program (RFC 3834 and common variants)."""
    if "auto-submitted" in headers and token(headers["auto-submitted"]) != "no":
        return True
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return True
    return token(headers.get("precedence")) == "auto_reply"
