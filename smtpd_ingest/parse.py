"""Turn raw message bytes into a ParsedMail.

The MIME tree is the email package's, built with its modern policy (`email.policy.default`:
header registry, defects recorded; smtpd_ingest/mime_parts.py). postroom keeps only what the
standard library does not do: the charset fallback (labels that lie, unlabelled 8-bit,
smtpd_ingest/mime_text.py), safe attachment names, TNEF, inline cid: images, enclosed
messages and HTML to text.

Failure costs the item that failed: a header the registry cannot read is read by the simple
reader, a part whose content cannot be decoded is kept as it came, and the mail carries a
ParseWarning for each; the rest of the mail is read as usual. ParseError is left for mail
whose structure cannot be walked at all, and then `header_fields` still reads From and
Subject from the header block. mail-parser reads what it reads best, a mail's Received
chain, on the entry page (admin_ui/mail_route.py).
"""

from __future__ import annotations

import base64
import quopri
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from io import BytesIO
from urllib.parse import unquote

from postroom.safe_html import MAX_HTML_CHARS, MAX_TEXT_CHARS, html_to_text, make_safe
from smtpd_ingest.bounces import BounceReport, may_be_bounce, read_bounce
from smtpd_ingest.filenames import (  # safe_filename is re-exported
    MIME_TYPES,
    PATH_SEPARATORS,
    generated_filename,
    safe_filename,
)
from smtpd_ingest.headers import (  # Address and ParseWarning are re-exported
    BRACKETED_ID,
    MAX_ADDRESS_SOURCE,
    PART_UNREADABLE,
    REGISTRY_BUDGET_CHARS,
    Address,
    ParseWarning,
    addresses,
    date,
    describe,
    first_headers,
    ids,
    is_auto_submitted,
    message_id,
    split_addresses,
    token,
)
from smtpd_ingest.mime_parts import MAX_BUILT_DEPTH, TooManyParts, build_tree, mime_of
from smtpd_ingest.mime_text import (
    MAX_DECODED_SOURCE,
    decode_bytes,
    decode_header,
    guess_budget,
    header_text,
    one_line,
    raw_bytes,
)
from smtpd_ingest.tnef import is_tnef, unpack_tnef

MAX_DEPTH = MAX_BUILT_DEPTH  # MIME nesting levels walked below the top; deeper: a warning
MAX_PARTS = 1000  # MIME entities walked, containers included; the rest: a warning
MAX_WARNINGS = 50  # kept of one mail; the raw message has all of it
MAX_IDS = 100  # message ids kept of In-Reply-To and of References (the first and the latest)


class ParseError(Exception):
    """The message's structure cannot be walked; it is stored raw with this reason, and
    with what `header_fields` could still read of its header block."""

    def __init__(self, reason: str, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.subject, self.sender = header_fields(raw) if raw else ("", None)

    def __reduce__(self):
        """Pickle (parser workers send it back) without reading the header block again."""
        return (_parse_error, (str(self), self.subject, self.sender))


def _parse_error(reason: str, subject: str, sender: Address | None) -> ParseError:
    error = ParseError(reason)
    error.subject, error.sender = subject, sender
    return error


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # safe: no path parts, no control characters, bounded length
    original_filename: str  # as the sender wrote it, decoded, one line; for display only
    content_type: str
    data: bytes
    content_id: str | None = None  # without <>, for cid: references
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    subject: str = ""  # one line: no control characters
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
    defects: tuple[str, ...] = field(default=())  # the email package's, by class name
    warnings: tuple[ParseWarning, ...] = ()  # items that could not be read as written
    bounce: BounceReport | None = None  # what a bounce says (smtpd_ingest/bounces.py)


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
    """Bodies, attachments, flags and warnings gathered while walking the MIME tree."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    extra_texts: list[str] = field(default_factory=list)  # from TNEF, used if no MIME body
    extra_htmls: list[str] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    warnings: list[ParseWarning] = field(default_factory=list)
    parts: list[Message] = field(default_factory=list)  # every entity walked
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
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def parse_message(raw: bytes) -> ParsedMail:
    """Parse raw RFC 5322 bytes into a ParsedMail, or raise ParseError saying why not."""
    raw = bytes(raw)
    with guess_budget():
        try:
            message = build_tree(raw)
        except TooManyParts as exc:
            raise ParseError(str(exc), raw) from exc
        except RecursionError as exc:
            raise ParseError("MIME structure is nested too deeply to parse", raw) from exc
        except Exception as exc:  # every failure must become a stored reason
            raise ParseError(f"the email package cannot parse it: {describe(exc)}", raw) from exc
        try:
            return _with_bounce(_build(message), raw)
        except RecursionError as exc:
            raise ParseError("MIME structure is nested too deeply to process", raw) from exc
        except Exception as exc:  # every failure must become a stored reason
            raise ParseError(f"cannot read the parsed message: {describe(exc)}", raw) from exc


def _with_bounce(mail: ParsedMail, raw: bytes) -> ParsedMail:
    """The mail with its bounce report, if it may be a bounce (read from a bounded prefix)."""
    sender = mail.from_.address if mail.from_ else ""
    if not may_be_bounce(mail.is_bounce, sender, mail.subject):
        return mail
    return replace(mail, bounce=read_bounce(raw))


def header_fields(raw: bytes) -> tuple[str, Address | None]:
    """Subject and sender read from the header block alone, whatever its size, for mail
    whose structure cannot be walked: one pass over the lines, nothing else parsed, the
    Subject decoded as far as a subject is kept, the From read by the linear reader."""
    with guess_budget():
        return _header_fields(raw)


def _header_fields(raw: bytes) -> tuple[str, Address | None]:
    end = _HEADER_END.search(raw)
    block = raw[: end.start()] if end else raw
    found: dict[bytes, list[bytes]] = {}
    current: list[bytes] | None = None
    for line in block.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(b":")
        key = name.strip().lower()
        current = None
        if colon and key in (b"subject", b"from") and key not in found:
            current = found[key] = [value]
    subject = b"\n".join(found.get(b"subject", []))[: 4 * MAX_DECODED_SOURCE]
    subject = subject_of(subject.decode("utf-8", "surrogateescape"))
    sender = b"\n".join(found.get(b"from", []))[:MAX_ADDRESS_SOURCE]
    sender_text = header_text(sender.decode("utf-8", "surrogateescape"))
    senders = split_addresses(sender_text) if sender_text else ()
    return subject, senders[0] if senders else None


def subject_of(raw: str | None) -> str:
    """The Subject as one line of text; where decoding leaves nothing (encoded words that
    decode to control characters only), the words as written: a subject is never lost."""
    if raw is None:
        return ""
    return one_line(decode_header(raw)) or one_line(header_text(raw[:MAX_DECODED_SOURCE]))


def _build(message: Message) -> ParsedMail:
    """Assemble the ParsedMail from the top-level headers and the walked MIME tree."""
    headers = first_headers(message)
    content = _Content()
    _collect(message, content, 0)
    text = "\n".join(content.texts or content.extra_texts)[:MAX_TEXT_CHARS]
    html = "\n".join(content.htmls or content.extra_htmls)
    safe = make_safe(html) if html else None
    html = html[:MAX_HTML_CHARS]
    warnings = content.warnings
    budget = [REGISTRY_BUDGET_CHARS]  # of the address headers for the registry
    senders = addresses(headers.get("from"), "From", warnings, budget)
    return ParsedMail(
        subject=subject_of(headers.get("subject")),
        from_=senders[0] if senders else None,
        to=addresses(headers.get("to"), "To", warnings, budget),
        cc=addresses(headers.get("cc"), "Cc", warnings, budget),
        reply_to=addresses(headers.get("reply-to"), "Reply-To", warnings, budget),
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
        defects=tuple(dict.fromkeys(type(d).__name__ for p in content.parts for d in p.defects)),
        warnings=tuple(dict.fromkeys(warnings))[:MAX_WARNINGS],
    )


def _bounded(found: tuple[str, ...]) -> tuple[str, ...]:
    """Keep the first id and the latest ones, MAX_IDS in all, each of a sane length."""
    if len(found) > MAX_IDS:
        found = (found[0], *found[1 - MAX_IDS :])
    return tuple(i[:998] for i in found)


def _collect(part: Message, content: _Content, depth: int) -> None:
    """Sort a MIME part and its children into bodies and attachments, depth first, within
    MAX_DEPTH and MAX_PARTS (what lies beyond is left to the raw message, with a warning)."""
    stack = [(part, depth)]
    while stack:
        part, depth = stack.pop()
        if len(content.parts) >= MAX_PARTS:
            content.warnings.append(ParseWarning("MIME", "too_many_parts", f"{MAX_PARTS:,}"))
            return
        content.parts.append(part)
        mime = mime_of(part)
        if mime.warning is not None:
            content.warnings.append(mime.warning)
        ctype = mime.content_type
        if ctype in _DELIVERY_STATUS or (
            ctype == "multipart/report"
            and mime.params.get("report-type", "").strip().lower() == "delivery-status"
        ):
            content.is_bounce = True
        if ctype.startswith("multipart/") and depth >= MAX_DEPTH:
            content.warnings.append(ParseWarning("MIME", "nested_too_deep", f"{MAX_DEPTH}"))
            continue
        if part.is_multipart() and not ctype.startswith("message/"):
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
            continue
        try:
            if ctype.startswith("message/"):
                content.pending.append(_enclosed(part, ctype))
            else:
                _collect_leaf(part, ctype, content)
        except Exception as exc:  # noqa: BLE001 - one part that cannot be read costs itself
            number = len(content.parts)
            item = f"part {number} ({ctype})"
            content.warnings.append(ParseWarning(item, PART_UNREADABLE, describe(exc)))
            content.pending.append(_Pending("", "", ctype, _undecoded(part)))


def _undecoded(part: Message) -> bytes:
    """A part's body as it came (transfer encoding not removed), for a part that failed."""
    try:
        payload = part.get_payload()
    except Exception:  # noqa: BLE001 - nothing more can be kept of it
        return b""
    return raw_bytes(payload) if isinstance(payload, str) else b""


def _collect_leaf(part: Message, ctype: str, content: _Content) -> None:
    """File a single-part entity as text body, HTML body, TNEF content or attachment."""
    mime = mime_of(part)
    name = mime.filename
    disposition = mime.disposition
    data = _payload(part)
    is_text = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
    if is_text and disposition != "attachment" and not name:
        text = decode_bytes(data, _charset(mime.params, data, ctype)).replace("\r\n", "\n")
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
    mime = mime_of(part)
    if ctype not in _ENCLOSED_MESSAGES:
        name = mime.filename or ""
        return _Pending(name, name, ctype, data, _content_id(part), mime.disposition)
    inner = BytesHeaderParser(policy=compat32).parsebytes(data)
    subject = one_line(decode_header(first_headers(inner).get("subject"))) or "message"
    original = f"{subject}.eml"
    wanted = PATH_SEPARATORS.sub("_", original)
    return _Pending(original, wanted, ctype, data, _content_id(part), mime.disposition)


def _enclosed_bytes(part: Message) -> bytes:
    """Return the bytes of the message(s) inside a message/* part, transfer-decoded."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _payload(part)
    data = b"".join(_as_bytes(m) for m in payload if isinstance(m, Message))
    encoding = _first_raw(part, "content-transfer-encoding").strip().lower()
    if encoding in ("base64", "quoted-printable"):
        # The stdlib parsed the encoded text as a message without headers.
        data = data.removeprefix(b"\r\n")
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
        return _decode_base64(data)
    return data


def _first_raw(part: Message, name: str) -> str:
    """A header's first value as text (8-bit bytes guessed), "" if the part has none."""
    value = first_headers(part).get(name)
    return header_text(value) if value is not None else ""


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


def _content_id(part: Message) -> str | None:
    """Return the Content-ID without <>, or None."""
    text = _first_raw(part, "content-id")
    if not text:
        return None
    match = BRACKETED_ID.search(text)
    value = "".join(one_line(match.group(1) if match else text).split()).strip("<>")
    return value or None


def _charset(params: dict[str, str], data: bytes, ctype: str) -> str | None:
    """Return the declared charset of a text part, or an HTML <meta> charset."""
    charset = params.get("charset") or None
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
                original_filename=one_line(item.original) or filename,
                content_type=one_line(item.content_type),
                data=item.data,
                content_id=cid,
                inline=inline,
            )
        )
    return tuple(result)
