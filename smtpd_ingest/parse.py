"""Turn raw message bytes into a ParsedMail.

The MIME tree is the email package's (compat32), the tree mail-parser builds too. mail-parser
went on to decode every part, parse every address header and date, and index all headers,
all of which this module does its own way after it: on every received message, that second
pass cost a quarter of the filing process's CPU. mail-parser now reads what it reads best,
a mail's Received chain, on the entry page (admin_ui/mail_route.py).
"""

from __future__ import annotations

import base64
import email
import functools
import quopri
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from io import BytesIO
from urllib.parse import unquote

from postroom.safe_html import MAX_HTML_CHARS, MAX_TEXT_CHARS, html_to_text, make_safe
from smtpd_ingest.filenames import (  # safe_filename is re-exported
    MIME_TYPES,
    PATH_SEPARATORS,
    filename,
    generated_filename,
    safe_filename,
)
from smtpd_ingest.headers import (  # Address is re-exported
    BRACKETED_ID,
    Address,
    addresses,
    date,
    first_headers,
    ids,
    is_auto_submitted,
    message_id,
    token,
)
from smtpd_ingest.mime_text import (
    decode_bytes,
    decode_header,
    header_text,
    raw_bytes,
    scrub,
    use_linear_params,
)
from smtpd_ingest.tnef import is_tnef, unpack_tnef

MAX_DEPTH = 50  # MIME nesting levels below the top-level message
MAX_PARTS = 1000  # MIME entities in the whole tree, containers included
MAX_IDS = 100  # message ids kept of In-Reply-To and of References (the first and the latest)


class ParseError(Exception):
    """The message cannot be parsed; it is stored raw with this reason."""


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
    text: str = ""  # the text parts, at most MAX_TEXT_CHARS
    html: str = ""  # the HTML parts, at most MAX_HTML_CHARS
    html_text: str = ""  # the HTML as text, when the mail has no text part
    html_safe: str = ""  # the HTML sanitised (postroom.safe_html.make_safe)
    html_note: str = ""  # why html_safe differs from the mail (a postroom.safe_html NOTE_)
    attachments: tuple[ParsedAttachment, ...] = ()
    auto_submitted: bool = False
    is_bounce: bool = False
    is_list: bool = False
    defects: tuple[str, ...] = field(default=())


@dataclass
class _Pending:
    """An attachment found in the tree, before its safe filename is chosen."""

    original: str  # the decoded name the sender gave, "" if none
    wanted: str  # what the safe filename is derived from
    content_type: str
    data: bytes
    content_id: str | None = None
    disposition: str | None = None


@dataclass
class _Content:
    """Bodies, attachments and flags gathered while walking the MIME tree."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    extra_texts: list[str] = field(default_factory=list)  # from TNEF, used if no MIME body
    extra_htmls: list[str] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    is_bounce: bool = False


class _ReceivedHeaders(type(compat32)):
    """The compat32 policy, writing each header back exactly as it was received."""

    def fold_binary(self, name: str, value: object) -> bytes:
        """Return the header line as received; refolding could fail or change it."""
        return raw_bytes(f"{name}: {value}{self.linesep}")


class _Generator(BytesGenerator):
    """A BytesGenerator that writes a multipart whose parts could not be found as raw text."""

    def _handle_multipart(self, msg: Message) -> None:
        if msg.is_multipart():
            super()._handle_multipart(msg)
        else:  # the stdlib's own generator fails on 8-bit bytes here
            self._handle_text(msg)


_GENERATOR_POLICY = _ReceivedHeaders(linesep="\r\n", max_line_length=None)
_ENCLOSED_MESSAGES = frozenset({"message/rfc822", "message/global"})
_DELIVERY_STATUS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_CID_REFERENCE = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)


def parse_message(raw: bytes) -> ParsedMail:
    """Parse raw RFC 5322 bytes into a ParsedMail, or raise ParseError saying why not."""
    message = _parse_tree(bytes(raw))
    parts = _all_parts(message)
    try:
        return _build(message, parts)
    except RecursionError as exc:
        raise ParseError("MIME structure is nested too deeply to process") from exc
    except Exception as exc:  # every failure must become a stored reason
        raise ParseError(f"cannot read the parsed message: {_describe(exc)}") from exc


def _parse_tree(raw: bytes) -> Message:
    """Build the MIME tree; a failure becomes a ParseError that says why."""
    _linear_params_in_use()
    try:
        return email.message_from_bytes(raw)
    except RecursionError as exc:
        raise ParseError("MIME structure is nested too deeply to parse") from exc
    except Exception as exc:  # every failure must become a stored reason
        raise ParseError(f"the email package cannot parse it: {_describe(exc)}") from exc


@functools.cache
def _linear_params_in_use() -> None:
    """Before the first parse: the email package's own parameter splitting is quadratic."""
    use_linear_params()


def _describe(exc: BaseException) -> str:
    """Name an exception and its message, shortened for display."""
    text = scrub(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= 300 else text[:297] + "..."


def _all_parts(message: Message) -> list[Message]:
    """List every MIME entity in document order, enforcing the depth and count limits."""
    parts: list[Message] = []
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"MIME nesting is deeper than {MAX_DEPTH} levels")
        parts.append(part)
        if len(parts) > MAX_PARTS:
            raise ParseError(f"message has more than {MAX_PARTS} MIME parts")
        if part.is_multipart():
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
    return parts


def _build(message: Message, parts: list[Message]) -> ParsedMail:
    """Assemble the ParsedMail from the top-level headers and the walked MIME tree."""
    headers = first_headers(message)
    content = _Content()
    _collect(message, content)
    text = "\n".join(content.texts or content.extra_texts)[:MAX_TEXT_CHARS]
    html = "\n".join(content.htmls or content.extra_htmls)
    safe = make_safe(html) if html else None
    html = html[:MAX_HTML_CHARS]
    senders = addresses(headers.get("from"))
    return ParsedMail(
        subject=decode_header(headers.get("subject")),
        from_=senders[0] if senders else None,
        to=addresses(headers.get("to")),
        cc=addresses(headers.get("cc")),
        reply_to=addresses(headers.get("reply-to")),
        date=date(headers.get("date")),
        message_id=message_id(headers.get("message-id")),
        in_reply_to=_bounded(ids(headers.get("in-reply-to"))),
        references=_bounded(ids(headers.get("references"))),
        text=text,
        html=html,
        html_text="" if text or not html else html_to_text(html),
        html_safe=safe.html if safe else "",
        html_note=safe.note if safe else "",
        attachments=_finish_attachments(content.pending, html),
        auto_submitted=is_auto_submitted(headers),
        is_bounce=content.is_bounce,
        is_list="list-id" in headers or token(headers.get("precedence")) in ("list", "bulk"),
        defects=tuple(dict.fromkeys(type(d).__name__ for p in parts for d in p.defects)),
    )


def _bounded(found: tuple[str, ...]) -> tuple[str, ...]:
    """Keep the first id and the latest ones, MAX_IDS in all, each of a sane length."""
    if len(found) > MAX_IDS:
        found = (found[0], *found[1 - MAX_IDS :])
    return tuple(i[:998] for i in found)


def _collect(part: Message, content: _Content) -> None:
    """Sort a MIME part and its children into bodies and attachments."""
    ctype = scrub(part.get_content_type())
    if _is_delivery_report(part, ctype):
        content.is_bounce = True
    if ctype.startswith("message/"):
        content.pending.append(_enclosed(part, ctype))
    elif part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, Message):
                _collect(child, content)
    else:
        _collect_leaf(part, ctype, content)


def _is_delivery_report(part: Message, ctype: str) -> bool:
    """Tell whether a part is a delivery status notification (RFC 3464) or its container."""
    if ctype in _DELIVERY_STATUS:
        return True
    if ctype != "multipart/report":
        return False
    report_type = _mime_view(part).get_param("report-type", "")
    return isinstance(report_type, str) and report_type.strip().lower() == "delivery-status"


def _collect_leaf(part: Message, ctype: str, content: _Content) -> None:
    """File a single-part entity as text body, HTML body, TNEF content or attachment."""
    view = _mime_view(part)
    name = filename(view)
    disposition = _disposition(view)
    data = _payload(part)
    is_text = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
    if is_text and disposition != "attachment" and not name:
        text = decode_bytes(data, _charset(view, data, ctype)).replace("\r\n", "\n")
        if text:
            (content.htmls if ctype == "text/html" else content.texts).append(text)
        return
    if is_tnef(ctype, name):
        unpacked = unpack_tnef(data)
        if unpacked is not None:
            content.extra_texts.extend([unpacked.text] if unpacked.text else [])
            content.extra_htmls.extend([unpacked.html] if unpacked.html else [])
            for file_name, blob in unpacked.files:
                guessed = MIME_TYPES.guess_type(safe_filename(file_name), strict=False)[0]
                ctype_inside = guessed or "application/octet-stream"
                content.pending.append(_Pending(file_name, file_name, ctype_inside, blob))
            return
    content.pending.append(
        _Pending(name or "", name or "", ctype, data, _content_id(part), disposition)
    )


def _enclosed(part: Message, ctype: str) -> _Pending:
    """Turn a message/* part into an attachment; a whole message becomes <subject>.eml."""
    data = _enclosed_bytes(part)
    view = _mime_view(part)
    if ctype not in _ENCLOSED_MESSAGES:
        name = filename(view) or ""
        return _Pending(name, name, ctype, data, _content_id(part), _disposition(view))
    inner = BytesHeaderParser(policy=compat32).parsebytes(data)
    subject = decode_header(first_headers(inner).get("subject")) or "message"
    original = f"{subject}.eml"
    wanted = PATH_SEPARATORS.sub("_", original)
    return _Pending(original, wanted, ctype, data, _content_id(part), _disposition(view))


def _enclosed_bytes(part: Message) -> bytes:
    """Return the bytes of the message(s) inside a message/* part, transfer-decoded."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _payload(part)
    data = b"".join(_as_bytes(m) for m in payload if isinstance(m, Message))
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding in ("base64", "quoted-printable"):
        # The stdlib parsed the encoded text as a message without headers.
        data = data.removeprefix(b"\r\n")
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
        return _decode_base64(data)
    return data


def _decode_base64(data: bytes) -> bytes:
    """Decode base64 leniently: ignore junk characters and missing padding."""
    letters = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    letters = letters[: len(letters) - (len(letters) % 4 == 1)]
    return base64.b64decode(letters + b"=" * (-len(letters) % 4))


def _as_bytes(message: Message) -> bytes:
    """Serialize a parsed message back to bytes, headers as received, body lines with CRLF."""
    buffer = BytesIO()
    _Generator(buffer, mangle_from_=False, policy=_GENERATOR_POLICY).flatten(message)
    return buffer.getvalue()


def _payload(part: Message) -> bytes:
    """Return a single part's body with its transfer encoding removed."""
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return raw_bytes(data) if data else b""


def _mime_view(part: Message) -> Message:
    """Copy a part's Content-Type and -Disposition with 8-bit bytes decoded to letters."""
    view = Message()
    for name, value in part.raw_items():
        if name.strip().lower() in ("content-type", "content-disposition"):
            view[name] = header_text(value)
    return view


def _disposition(part: Message) -> str | None:
    """Return "inline", "attachment" (or another lowercased word) or None."""
    value = part.get_content_disposition()
    return scrub(value) if value else None


def _content_id(part: Message) -> str | None:
    """Return the Content-ID without <>, or None."""
    raw = first_headers(part).get("content-id")
    if raw is None:
        return None
    text = header_text(raw)
    match = BRACKETED_ID.search(text)
    value = "".join((match.group(1) if match else text).split()).strip("<>")
    return value or None


def _charset(part: Message, data: bytes, ctype: str) -> str | None:
    """Return the declared charset of a text part, or an HTML <meta> charset."""
    try:
        charset = part.get_content_charset()
    except (LookupError, UnicodeError, ValueError):
        charset = None
    if charset is None and ctype == "text/html":
        match = _META_CHARSET.search(data[:4096])
        charset = match.group(1).decode("ascii", "replace") if match else None
    return charset


def _finish_attachments(pending: list[_Pending], html: str) -> tuple[ParsedAttachment, ...]:
    """Give each attachment a safe filename and decide which are inline cid: parts."""
    referenced = {unquote(ref).strip().lower() for ref in _CID_REFERENCE.findall(html)}
    generated = 0
    result = []
    for item in pending:
        filename = safe_filename(item.wanted)
        if not filename:
            generated += 1
            filename = generated_filename(item.content_type, generated)
        cid = item.content_id
        inline = bool(cid) and (item.disposition != "attachment" or cid.lower() in referenced)
        result.append(
            ParsedAttachment(
                filename=filename,
                original_filename=item.original or filename,
                content_type=item.content_type,
                data=item.data,
                content_id=cid,
                inline=inline,
            )
        )
    return tuple(result)
