"""The one rule for an e-mail address postroom stores, compares or writes into a mail.

An address is at most 254 characters (RFC 5321's limit on a path), has no white space, no
control characters and none of <>"',; (which would make it ambiguous in a header or a list),
one @, and a domain of letters, digits, dots and hyphens ending in a label of two or more.
Its local part may hold non-ASCII letters (SMTPUTF8 senders are stored and matched); whether
postroom can send to it is a rule of sending (postroom/outbound_checks.py: ASCII only).

Stored addresses are trimmed and lower-cased (normalise_address); every entry point refuses
the same text with the same message, INVALID.
"""

from __future__ import annotations

import re

from domain.errors import Invalid
from domain.translatable import N_, Message

MAX_ADDRESS_CHARS = 254  # RFC 5321's limit on a path
ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")
INVALID = N_("not a valid email address: %(shown)s")  # shown: the text's repr
SHOWN_CHARS = 80  # how much of a refused text the message repeats


def is_address(text: str) -> bool:
    """True when text, exactly as given (no trimming, any case), is an address."""
    return (
        0 < len(text) <= MAX_ADDRESS_CHARS
        and not any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in text)
        and ADDRESS.match(text) is not None
    )


def normalise_address(text: str) -> str:
    """The address as stored (trimmed, lower-cased), or Invalid with the one message."""
    address = text.strip().lower()
    if not is_address(address):
        raise Invalid(invalid_message(text))
    return address


def invalid_message(text: str) -> str:
    """The message refusing text as an address (long texts cut, so the message stays short)."""
    shown = text.strip()
    if len(shown) > SHOWN_CHARS:
        shown = shown[:SHOWN_CHARS] + "…"
    return Message(INVALID, shown=repr(shown))
