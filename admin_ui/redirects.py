"""Redirect targets from users (`next`, the Referer) are followed only to paths of this site.

A target is refused unless it is a plain path-absolute reference: it starts with one "/",
has no scheme or host when parsed, holds no whitespace, control character or backslash
anywhere (browsers drop tabs and newlines and read "\\" as "/", so "/\\t/evil" or "/\\evil"
would become "//evil", another host), and its path decoded once or more still starts with
one "/" (for servers and proxies that decode %2F before they redirect again). No segment of
the path, as written or decoded, is "." or ".." (nor "..;x"): "/.//evil" or "/x/../..//evil"
normalise to "//evil", which a later redirect built from the path would send elsewhere.
Non-ASCII letters are sent percent-encoded, so the Location header is plain ASCII.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote, urlsplit

MAX_LENGTH = 2000
MAX_DECODINGS = 4
_ASCII_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "\\")


def _harmless(char: str) -> bool:
    if char in _ASCII_SAFE:
        return True
    # other ASCII (space, control characters, backslash) and Unicode spaces, line and
    # format characters (U+2028, U+200B, U+FEFF...) are refused; letters are encoded
    return ord(char) > 0x7F and unicodedata.category(char)[0] not in "CZ"


def _rooted(path: str) -> bool:
    return path.startswith("/") and not path.startswith(("//", "/\\"))


def _plain(path: str) -> bool:
    """Rooted, and no segment is a dot segment (servers that take ";params" see "..;x" as "..")."""
    return _rooted(path) and not any(
        segment.split(";", 1)[0] in (".", "..") for segment in path.split("/")
    )


def local_path(target: str | None) -> str | None:
    """The target as a same-site path to redirect to, or None when it is not one."""
    if not target or len(target) > MAX_LENGTH or not all(map(_harmless, target)):
        return None
    target = quote(target, safe=_ASCII_SAFE)
    try:
        parts = urlsplit(target)
    except ValueError:  # an IPv6 host without its "]"
        return None
    if parts.scheme or parts.netloc or not _rooted(target) or not _plain(parts.path):
        return None
    path = parts.path
    for _ in range(MAX_DECODINGS):
        decoded = unquote(path)
        if decoded == path:
            return target
        path = decoded
        if not _plain(path) or not all(map(_harmless, path.replace(" ", "x"))):
            return None
    return None  # still encoded after several rounds: nobody needs that


def safe_next(target: str | None, fallback: str) -> str:
    """`target` if it is a path of this site, else `fallback`."""
    return local_path(target) or fallback
