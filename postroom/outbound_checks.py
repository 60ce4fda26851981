"""What may go into a mail to a customer: one-line headers, sendable addresses, safe files.

Any CR or LF in a header field (recipient, subject, file name) is refused, never cleaned up:
the person who typed it sees why, and nothing is queued.
"""

from __future__ import annotations

import re
import unicodedata

import markdown
import nh3

from storage.outbound import OutboundAttachment
from storage.protocol import ADDRESS

MAX_SUBJECT_CHARS = 500
MAX_BODY_CHARS = 200_000
MAX_ADDRESS_CHARS = 254
MAX_ATTACHMENTS = 20
MAX_FILENAME_CHARS = 150
CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")

HTML_TAGS = {"a", "b", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6",
             "hr", "i", "img", "li", "ol", "p", "pre", "strong", "ul"}  # fmt: skip
HTML_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}


class OutboundError(ValueError):
    """The mail cannot be queued as asked; the message says why, for the person writing it."""


Upload = tuple[str, str, bytes]  # (filename, content type, bytes)


def _has_line_break(text: str) -> bool:
    return any(ch in text for ch in "\r\n\x00\u2028\u2029\x85\x0b\x0c")


def check_recipient(to: str) -> str:
    """The recipient as stored (trimmed, lower-case), or OutboundError."""
    if _has_line_break(to):
        raise OutboundError("the recipient must not contain line breaks")
    address = to.strip().lower()
    if not address:
        raise OutboundError("choose or type a recipient")
    if len(address) > MAX_ADDRESS_CHARS or not address.isascii() or not ADDRESS.match(address):
        raise OutboundError(f"the recipient is not an email address postroom can send to: "
                            f"{to.strip()[:80]!r}")  # fmt: skip
    return address


def check_subject(subject: str) -> str:
    if _has_line_break(subject):
        raise OutboundError("the subject must be one line (it contains a line break)")
    subject = subject.strip()
    if not subject:
        raise OutboundError("write a subject")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise OutboundError(f"the subject is too long (at most {MAX_SUBJECT_CHARS} characters)")
    return subject


def check_attachments(uploads, max_bytes: int) -> tuple[OutboundAttachment, ...]:
    """Safe names and types for the uploads, each at most max_bytes ([outbound] setting).

    The total is bounded by the size of a request the web app accepts.
    """
    uploads = list(uploads)
    if len(uploads) > MAX_ATTACHMENTS:
        raise OutboundError(f"at most {MAX_ATTACHMENTS} attachments per mail")
    files = []
    for number, (name, content_type, data) in enumerate(uploads, start=1):
        if _has_line_break(name):
            raise OutboundError(f"the file name {name[:80]!r} contains a line break")
        if len(data) > max_bytes:
            raise OutboundError(f"{name[:80]!r} is too large ({len(data):,} bytes; at most "
                                f"{max_bytes:,} per attachment)")  # fmt: skip
        kind = content_type.split(";")[0].strip().lower()
        if not CONTENT_TYPE.match(kind) or len(kind) > 100:
            kind = "application/octet-stream"
        safe = safe_filename(name) or f"attachment-{number}"
        files.append(OutboundAttachment(safe, name[:1000], kind, bytes(data)))
    return tuple(files)


def safe_filename(name: str) -> str:
    """A file name fit for a MIME header and a file system: no path, no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = re.split(r"[/\\]", name)[-1]
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_FILENAME_CHARS:
        _stem, dot, extension = name.rpartition(".")
        keep = "." + extension if dot and 0 < len(extension) <= 10 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep)].rstrip(". ") + keep
    return name


def markdown_to_html(text: str) -> str:
    """The Markdown as sanitised HTML: line breaks kept as people type them in a mail."""
    html = markdown.markdown(text, extensions=["sane_lists", "nl2br"], output_format="html")
    return nh3.clean(html, tags=HTML_TAGS, attributes=HTML_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto", "tel"},
                     link_rel="noopener noreferrer")  # fmt: skip
