"""Every header postroom writes into a mail goes through set_header, checked after decoding.

The email package decodes RFC 2047 encoded words in any value it is given, and before Python
3.11.10 / 3.12.5 (CVE-2024-6923) it writes a line break that decoding produced as a real one:
the subject "Re: =?utf-8?q?Hi=0D=0ABcc:_x@evil.example?=" became a Bcc header. postroom does
not rely on the patch level. set_header decodes each value the way the email package will,
until nothing is left to decode, and then
- in text (subjects, display names) turns every line break (whatever str.splitlines() breaks
  on) and every other control character into a space;
- refuses an address or message id that holds one, or that does not read back unchanged.
It hands the email package the checked header object, so the value is not parsed again; and
message_bytes checks the finished header block once more: exactly the headers set, one each.
"""

from __future__ import annotations

import datetime as dt
import email
import unicodedata
from collections.abc import Iterable
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, compat32
from email.utils import format_datetime

from domain.addresses import is_address

# the characters str.splitlines() ends a line at (tests/test_mail_headers.py checks them all)
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
MAX_TEXT_CHARS = 2000  # a header value we write; subjects and names are shorter still
MAX_DECODE_ROUNDS = 8  # each round shortens the text; real mail needs one at most
POLICY = SMTP  # CRLF line ends, lines folded at 78

TEXT = ("subject", "auto-submitted", "x-auto-response-suppress")
MAILBOX = ("from", "to", "cc", "reply-to", "sender")
IDS = ("message-id", "in-reply-to", "references")
DATE = ("date",)


# What a HeaderError says: "{field}: ..." with the field's label (FIELD_LABELS, or a header
# name such as To), so no sentence is built around an English noun; one message per case.
FIELD_LABELS = {  # a field as callers name it -> its label
    "subject": "Subject",
    "file name": "File name",
    "recipient": "Recipient",
    "address": "Address",
    "message id": "Message ID",
}
NAME_IN = "Name in {header}"  # the display name of a From, To, Cc ... address
ADDRESS_IN = "Address in {header}"
TEXT_TOO_LONG = "{field}: too long to be written into a mail (at most {limit:,} characters)"
TEXT_NESTED = "{field}: holds encoded words nested too deep to be written into a mail"
NOT_AN_ADDRESS = "{field}: not an address that can be written into a mail"
NOT_A_MESSAGE_ID = "{field}: not a message id that can be written into a mail"
ID_ENCODED = "{field}: a message id with encoded words cannot be written into a mail"
NEEDS_ADDRESS = "{field}: an address is needed"
NEEDS_IDS = "{field}: one or more message ids are needed"
NEEDS_ONE_ID = "{field}: exactly one message id is needed"
NEEDS_DATE = "{field}: a date and time with a time zone is needed"
NOT_OURS = "{field}: postroom does not write this header"
NOT_WRITTEN = "{field}: cannot be written (a line break, or set twice)"


class HeaderError(ValueError):
    """A header cannot be written as asked; the message names the field and says why."""


def _label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


def has_line_break(text: str) -> bool:
    """True when text holds any character str.splitlines() would end a line at."""
    return any(ch in LINE_BREAKS for ch in text)


def one_line(text: str) -> str:
    """Text with every line break (CRLF counts as one) and other control character made a
    space, ends trimmed."""
    return "".join(_printable(ch) for ch in text.replace("\r\n", " ")).strip()


def _printable(ch: str) -> str:
    if ch in LINE_BREAKS:
        return " "
    category = unicodedata.category(ch)
    if category == "Cc":
        return " "
    return "\ufffd" if category == "Cs" else ch  # a lone surrogate cannot be encoded


def header_text(value: str, field: str = "subject") -> str:
    """Decoded text as it can stand in a header: one line, decoding to itself.

    Encoded words in the text are decoded (as every mail reader would) and what they decode
    to is made one line, round after round, until the text decodes to itself.
    """
    if len(value) > MAX_TEXT_CHARS:
        raise HeaderError(TEXT_TOO_LONG.format(field=_label(field), limit=MAX_TEXT_CHARS))
    text = one_line(value)
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = str(POLICY.header_factory("subject", text))
        if decoded == text:
            return text
        text = one_line(decoded)
    raise HeaderError(TEXT_NESTED.format(field=_label(field)))


def hidden_line_break(value: str) -> bool:
    """True when encoded words in value decode to a line break, at any depth of nesting."""
    text = value
    for _ in range(MAX_DECODE_ROUNDS):
        if has_line_break(text):
            return True
        decoded = str(POLICY.header_factory("subject", text[:MAX_TEXT_CHARS]))
        if decoded == text:
            return False
        text = decoded
    return True


def address_spec(value: str, field: str = "address") -> str:
    """An address as it can stand in a header, or HeaderError: nothing is cleaned up here."""
    if not (value.isascii() and is_address(value)):
        raise HeaderError(NOT_AN_ADDRESS.format(field=_label(field)))
    try:
        read_back = Address(addr_spec=value).addr_spec
    except (ValueError, IndexError):
        read_back = ""
    if read_back != value:
        raise HeaderError(NOT_AN_ADDRESS.format(field=_label(field)))
    return value


def message_id(value: str, field: str = "message id") -> str:
    """A message id (without <>) as it can stand in a header, or HeaderError."""
    printable = all(" " < ch < "\x7f" and ch not in "<>" for ch in value)
    if not (printable and 0 < len(value) <= 250 and "@" in value):
        raise HeaderError(NOT_A_MESSAGE_ID.format(field=_label(field)))
    if str(POLICY.header_factory("references", f"<{value}>")) != f"<{value}>":
        raise HeaderError(ID_ENCODED.format(field=_label(field)))
    return value


def writable_ids(ids: Iterable[str]) -> list[str]:
    """The ids of a thread that can be written; the others (a stranger's odd ids) left out."""
    kept = []
    for value in ids:
        try:
            kept.append(message_id(value))
        except HeaderError:
            continue
    return kept


def set_header(message: EmailMessage, name: str, value) -> None:
    """Add one header to a message we send; the only way postroom writes a header.

    value by field: text (str) for Subject and the fixed markers; (display name, address),
    an address, or a list of them for From, To, Cc, Reply-To, Sender; an id or a list of
    ids (without <>) for Message-ID, In-Reply-To, References; a datetime for Date.
    """
    key = name.lower()
    if key in TEXT:
        header = POLICY.header_factory(name, header_text(value, name))
    elif key in MAILBOX:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise HeaderError(NEEDS_ADDRESS.format(field=name))
        header = POLICY.header_factory(name, [_mailbox(item, name) for item in items])
    elif key in IDS:
        ids = [value] if isinstance(value, str) else list(value)
        checked = [message_id(item, name) for item in ids]
        if not checked:
            raise HeaderError(NEEDS_IDS.format(field=name))
        if key != "references" and len(checked) != 1:
            raise HeaderError(NEEDS_ONE_ID.format(field=name))
        header = POLICY.header_factory(name, " ".join(f"<{item}>" for item in checked))
    elif key in DATE:
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise HeaderError(NEEDS_DATE.format(field=name))
        header = POLICY.header_factory(name, format_datetime(value))
    else:
        raise HeaderError(NOT_OURS.format(field=name))
    if has_line_break(str(header)) or message.get(name) is not None:
        raise HeaderError(NOT_WRITTEN.format(field=name))
    message[name] = header  # a header object: stored as it is, not parsed again


def _mailbox(value, header: str) -> Address:
    display, address = ("", value) if isinstance(value, str) else value
    address = address_spec(address, ADDRESS_IN.format(header=header))
    display = header_text(display or "", NAME_IN.format(header=header))
    mailbox = Address(display_name=display, addr_spec=address)
    read = POLICY.header_factory(header, mailbox).addresses
    if len(read) != 1 or read[0].addr_spec != address:
        raise HeaderError(NOT_AN_ADDRESS.format(field=ADDRESS_IN.format(header=header)))
    if read[0].display_name != display:  # a name the address parser reads otherwise: left out
        mailbox = Address(addr_spec=address)
    return mailbox


def message_bytes(message: EmailMessage) -> bytes:
    """The message as sent (CRLF), after checking every part's headers read back as built.

    The bytes are parsed again without decoding anything (compat32): a value that slipped
    past set_header would show as a header of its own, or as a blank line that starts a body
    early; either raises HeaderError and nothing is sent.
    """
    raw = message.as_bytes(policy=POLICY)
    head, blank, _body = raw.partition(b"\r\n\r\n")
    if not blank:
        raise HeaderError("the mail has no header block")
    for line in head.split(b"\r\n"):
        if any((byte < 32 and byte != 9) or byte >= 127 for byte in line):
            raise HeaderError("a header line holds a control character or 8-bit text")
    read = email.message_from_bytes(raw, policy=compat32)
    built_parts, read_parts = list(message.walk()), list(read.walk())
    if len(built_parts) != len(read_parts):
        raise HeaderError("the written mail does not have the parts built")
    for built, part in zip(built_parts, read_parts, strict=True):
        if sorted(k.lower() for k in built) != sorted(k.lower() for k in part):
            raise HeaderError("the written headers are not the ones built")
    return raw
