"""Read a message's header fields: addresses, dates, message ids and sender flags.

Address lists are read by the email package's header registry (`email.policy.default`):
groups, quoted names, comments, RFC 2047 names. Where it raises (deep comments end in a
RecursionError, some input in an IndexError) or a header is too long for it (its parser
copies the rest of the header at every token: 16 KB of quotes took 3 s, 4 KB 0.19 s), that
header alone is read by `split_addresses`, a linear scan, and the mail carries a ParseWarning
that says so. The plain shape of most headers never reaches the registry (plain_headers).
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.policy import default

from smtpd_ingest import plain_headers
from smtpd_ingest.mime_text import decode_words, header_text, one_line

MAX_REGISTRY_CHARS = 4096  # an address header longer than this is read by split_addresses
REGISTRY_BUDGET_CHARS = 8192  # of address headers per mail the registry reads (see addresses)
MAX_ADDRESS_SOURCE = 1 << 20  # characters of one address header read (1,000 addresses fit)
MAX_ADDRESSES = 1000  # read of one header; storage keeps fewer (storage.filing.MAX_ADDRESSES)

# ParseWarning codes: what went wrong with one item of a mail that was otherwise read
HEADER_UNREADABLE = "header_unreadable"  # the registry failed; read by the simple reader
HEADER_TOO_LONG = "header_too_long"  # too long for the registry; read by the simple reader
PART_UNREADABLE = "part_unreadable"  # a MIME part's content could not be decoded

BRACKETED_ID = re.compile(r"<([^<>]*)>")
_ID_SEPARATORS = re.compile(r"[\s<>,;\"()]+")  # one character class: linear
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class ParseWarning:
    """One item of a mail that could not be read as written; the rest of the mail was."""

    item: str  # a header's name as postroom names it ("To"), or "part 3 (image/png)"
    code: str  # HEADER_UNREADABLE, HEADER_TOO_LONG, PART_UNREADABLE
    detail: str = ""  # what failed, for the operator (an exception's name and message)


def first_headers(part: Message) -> dict[str, str]:
    """Map each lowercased header name to its first raw value."""
    index: dict[str, str] = {}
    for name, value in part.raw_items():
        index.setdefault(name.strip().lower(), value)
    return index


def addresses(
    raw: str | None,
    label: str = "",
    warnings: list[ParseWarning] | None = None,
    budget: list[int] | None = None,
) -> tuple[Address, ...]:
    """Read an address header into Addresses (entries without an address dropped): the plain
    shape by plain_headers, the rest by the registry, and when the registry cannot (it fails,
    the header is longer than MAX_REGISTRY_CHARS, or the mail's `budget` of characters for
    it is spent) by split_addresses, with a warning naming `label`."""
    if raw is None:
        return ()
    text = header_text(raw[:MAX_ADDRESS_SOURCE])
    code, detail = HEADER_TOO_LONG, f"{len(text):,} characters"
    plain = plain_headers.addresses(text)
    if plain is not None:
        return tuple(Address(one_line(n), one_line(a)) for n, a in plain[:MAX_ADDRESSES])
    if budget is not None:
        budget[0] -= len(text)
    if len(text) <= MAX_REGISTRY_CHARS and (budget is None or budget[0] >= 0):
        try:
            header = default.header_factory(label or "to", text)
            found = _registry_addresses(header.addresses)
            if not any("\ufffd" in a.name for a in found):
                return tuple(found)
            return split_addresses(text)  # a broken or undecodable word: kept as written
        except Exception as exc:  # noqa: BLE001 - any failure costs this header only
            code, detail = HEADER_UNREADABLE, describe(exc)
    if warnings is not None:
        warnings.append(ParseWarning(label or "address", code, detail))
    return split_addresses(text)


def _registry_addresses(found) -> list[Address]:
    kept = []
    for item in found[:MAX_ADDRESSES]:
        address = one_line(item.addr_spec).strip("<>")
        if not address or address == "<>":
            continue
        kept.append(Address(name=one_line(item.display_name), address=address))
    return kept


def describe(exc: BaseException) -> str:
    """Name an exception and its message, shortened for display."""
    text = one_line(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= 300 else text[:297] + "..."


def split_addresses(text: str) -> tuple[Address, ...]:
    """Read an address list in one pass, for headers the registry cannot take: split at
    commas outside quotes, <> and comments (depth is a counter, not recursion); a group's
    name is dropped; each piece's address is its last <...>, or the piece without comments."""
    found: list[Address] = []
    piece: list[str] = []
    quoted = escaped = False
    angle = comment = 0
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif comment or char == "(":  # comments are no part of an address or a name
            comment += {"(": 1, ")": -1}.get(char, 0)
            continue
        elif char == '"':
            quoted = True
        elif char == "<":
            angle += 1
        elif char == ">":
            angle = max(angle - 1, 0)
        elif char == ":" and not angle:
            piece.clear()  # "Team: a@x, b@y;" - the group's name is no address
            continue
        elif char in ",;" and not angle:
            _add_piece("".join(piece), found)
            piece.clear()
            if len(found) >= MAX_ADDRESSES:
                return tuple(found)
            continue
        piece.append(char)
    _add_piece("".join(piece), found)
    return tuple(found)


def _add_piece(piece: str, found: list[Address]) -> None:
    opened = piece.rfind("<")
    if opened >= 0:
        closed = piece.find(">", opened)
        address = piece[opened + 1 : closed if closed >= 0 else len(piece)]
        name = piece[:opened]
    else:
        address, name = piece, ""
    address = "".join(one_line(address).split())
    if address:
        name = one_line(decode_words(name.strip().strip('"').replace('\\"', '"')))
        found.append(Address(name=name, address=address))


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
