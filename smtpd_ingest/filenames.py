"""Choose safe, bounded filenames for attachments from what the sender wrote."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from email.message import Message

from smtpd_ingest.mime_text import decode_bytes, decode_header, raw_bytes, scrub

MAX_FILENAME_CHARS = 150
MAX_FILENAME_BYTES = 240  # UTF-8, below the usual 255-byte file system limit

MIME_TYPES = mimetypes.MimeTypes()  # built-in table only: the same answer on every host
_EXTRA_EXTENSIONS = {
    "text/calendar": ".ics",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/x-zip-compressed": ".zip",
}
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PATH_SEPARATORS = re.compile(r"[/\\]")


def safe_filename(name: str) -> str:
    """Make a sender's filename safe to store; return "" if nothing usable is left."""
    name = scrub(unicodedata.normalize("NFC", name))
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc")
    name = _BIDI_CONTROLS.sub("", name)
    name = PATH_SEPARATORS.split(name)[-1]
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    return _truncate_filename(name)


def filename(part: Message) -> str | None:
    """Return the decoded filename from Content-Disposition or Content-Type, if any."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        try:
            value = part.get_param(param, None, header)
        except (TypeError, ValueError, LookupError, UnicodeError):  # broken RFC 2231 pieces
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text)
            charset, _, text = value
            name = decode_bytes(_latin1_bytes(text), charset)
        elif value is not None:
            name = decode_header(value)
        else:
            continue
        if name.strip():
            return scrub(name.strip())
    return None


def _latin1_bytes(text: str) -> bytes:
    """Return the octets of text that holds one byte per character (or surrogate escape)."""
    try:
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return raw_bytes(text)


def generated_filename(content_type: str, number: int) -> str:
    """Name a nameless attachment "attachment.ext", then "attachment-2.ext" and so on."""
    extension = _EXTRA_EXTENSIONS.get(content_type) or MIME_TYPES.guess_extension(content_type)
    if not extension:
        extension = ".txt" if content_type.startswith(("text/", "message/")) else ".bin"
    stem = "attachment" if number == 1 else f"attachment-{number}"
    return stem + extension


def _truncate_filename(name: str) -> str:
    """Shorten a filename to the length limits, keeping a short extension."""
    if len(name) <= MAX_FILENAME_CHARS and len(name.encode()) <= MAX_FILENAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16 or not extension.isalnum():
        stem, extension = name, ""
    else:
        extension = "." + extension
    stem = stem[: MAX_FILENAME_CHARS - len(extension)]
    while len((stem + extension).encode()) > MAX_FILENAME_BYTES:
        stem = stem[:-1]
    return stem.rstrip(". ") + extension
