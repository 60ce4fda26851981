"""The plain shape of a Content-Type and of an address list, read without the header registry.

The email package's header registry reads every header postroom asks it for, but it splits
the rest of a header again at every token and makes a class per header: for the plain shape
most headers have ("text/plain; charset=utf-8", "Anna Müller <anna@bakery.example>") it
costs more than the rest of a small mail's parse. These readers take only that shape (no
comments, backslashes, groups or RFC 2231 parameters; a Content-Type in ASCII without
encoded words) in one linear match each (possessive quantifiers: no backtracking), and
return None for anything else, which the registry then reads.

tests/test_plain_headers.py holds them to the registry: wherever they answer, the type,
parameters and addresses are the registry's, and so are the names, where those are ASCII or
well-formed UTF-8 encoded words. Other names are decoded by postroom's own decoder
(mime_text.decode_words): it applies the charset fallback where labels lie or are unknown,
and, as mail readers do, decodes an encoded word glued to other text, which the registry
leaves as written.
"""

from __future__ import annotations

import re

from smtpd_ingest.mime_text import decode_words

_MIME_WORD = r"[A-Za-z0-9!#$%&+.^_`{|}~-]++"  # no "*" or "'": RFC 2231 marks, the registry's
_ATTRIBUTE = r"[A-Za-z0-9!#$%&'+.^_`{|}~-]++"  # no "*": RFC 2231 is the registry's
_QUOTED = r'"[^"\\\r\n]*+"'
_PARAM = re.compile(rf";[ \t]*+({_ATTRIBUTE})[ \t]*+=[ \t]*+({_MIME_WORD}|{_QUOTED})[ \t]*+")
_CONTENT_TYPE = re.compile(
    rf"[ \t]*+({_MIME_WORD})/({_MIME_WORD})[ \t]*+((?:;[ \t]*+{_ATTRIBUTE}[ \t]*+=[ \t]*+"
    rf"(?:{_MIME_WORD}|{_QUOTED})[ \t]*+)*+)(?:;[ \t]*+)?"
)

_DISPOSITION = re.compile(
    rf"[ \t]*+({_MIME_WORD})[ \t]*+((?:;[ \t]*+{_ATTRIBUTE}[ \t]*+=[ \t]*+"
    rf"(?:{_MIME_WORD}|{_QUOTED})[ \t]*+)*+)(?:;[ \t]*+)?"
)

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]++"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*+"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
# A name's words may hold letters beyond ASCII (8-bit bytes, already decoded) and be encoded
# words, which are atoms to the grammar: they are decoded after the list is split.
_NAME_WORD = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]++"
_NAME_QUOTED = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*+"'
_PHRASE = rf"{_NAME_WORD}(?:[ \t]++{_NAME_WORD})*+"
_MAILBOX = re.compile(
    rf"[ \t]*+(?:({_ADDR_SPEC})|(?:({_PHRASE})|({_NAME_QUOTED}))?[ \t]*+<({_ADDR_SPEC})>)"
    r"[ \t]*+(,|\Z)"
)
_BLANKS = re.compile(r"[ \t]+")
_NOT_IN_A_PLAIN_LIST = re.compile(r"[():;\\\x00-\x08\x0a-\x1f\x7f]")


def _plain(text: str) -> bool:
    return text.isascii() and "(" not in text and "=?" not in text and "\\" not in text


def content_type(text: str) -> tuple[str, dict[str, str]] | None:
    """(type, parameters) of a plain Content-Type as the registry reads it: lowercased type
    and names, quotes taken off; None for any other shape."""
    match = _CONTENT_TYPE.fullmatch(text) if _plain(text) else None
    if match is None:
        return None
    params = _params(match.group(3))
    return None if params is None else (f"{match.group(1)}/{match.group(2)}".lower(), params)


def disposition(text: str) -> tuple[str, dict[str, str]] | None:
    """(disposition, parameters) of a plain Content-Disposition, as content_type."""
    match = _DISPOSITION.fullmatch(text) if _plain(text) else None
    if match is None:
        return None
    params = _params(match.group(2))
    return None if params is None else (match.group(1).lower(), params)


def _params(text: str) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for param in _PARAM.finditer(text):
        name, value = param.group(1).lower(), param.group(2)
        if name in params:
            return None  # the registry keeps the first and notes a defect: its reading
        params[name] = value[1:-1] if value.startswith('"') else value
    return params


def addresses(text: str) -> list[tuple[str, str]] | None:
    """(display name, address) of a plain address list, as the registry reads it: a name's
    words joined by one space, a quoted name as written, encoded words decoded (with the
    charset fallback of mime_text, where labels lie); None for any other shape."""
    if _NOT_IN_A_PLAIN_LIST.search(text):
        return None
    found: list[tuple[str, str]] = []
    position = 0
    while True:
        match = _MAILBOX.match(text, position)
        if match is None:
            return None
        bare, phrase, quoted, bracketed, comma = match.groups()
        if bare is not None:
            found.append(("", bare))
        elif quoted is not None:
            found.append((_decoded(quoted[1:-1]), bracketed))
        else:
            found.append((_decoded(_BLANKS.sub(" ", phrase or "")), bracketed))
        if not comma:
            return found
        position = match.end()


def _decoded(name: str) -> str:
    return decode_words(name) if "=?" in name else name
