"""Read a bounce: which recipients failed, why, and the Message-IDs of the mail it returns.

Standard bounces (RFC 3464: multipart/report; report-type=delivery-status) are read from
their message/delivery-status part (per recipient: Action, Status, Final-Recipient,
Diagnostic-Code) and the returned message (message/rfc822 or text/rfc822-headers) for its
Message-ID. Other formats (Exchange's "did not reach the following recipient", qmail's "Hi.
This is the qmail-send program", …) go through flufl.bounce's detectors, which give the
recipients that failed for good; Message-IDs are then taken from "Message-ID:" lines of the
text (a returned copy of the mail).

Bounded: only the first MAX_BOUNCE_BYTES of a message are read, at most MAX_PARTS parts
walked, and flufl.bounce's detectors see the first MAX_HEURISTIC_BYTES, decoded, with each
line cut to MAX_DETECTOR_LINE (some of their patterns search a line in quadratic time;
Netscape's, cubic, is not run: _detect). It runs inside the
parse (smtpd_ingest/parse.py), so the parser's time limit holds for it too. Nothing raises:
a bounce that cannot be read is no bounce (None).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

log = logging.getLogger(__name__)

MAX_BOUNCE_BYTES = 256 * 1024
MAX_HEURISTIC_BYTES = 64 * 1024
MAX_LINE_CHARS = 1000
MAX_DETECTOR_LINE = 500  # flufl.bounce's patterns search a line in up to quadratic time
MAX_PARTS = 100
MAX_RECIPIENTS = 20
MAX_IDS = 10
MAX_DIAGNOSTIC = 500

_DELIVERY_STATUS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_RETURNED = frozenset({"message/rfc822", "message/global"})
_RETURNED_HEADERS = frozenset({"text/rfc822-headers", "message/global-headers"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ID = re.compile(r"<([^<>\s@]{1,250}@[^<>\s@]{1,250})>")
_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
# subjects of bounces whose sender is a person's name or a server's mailbox (Exchange)
_SUBJECTS = (
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "delivery failure",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "nondeliverable",
    "non-deliverable",
    "unzustellbar",
)


@dataclass(frozen=True)
class BounceReport:
    """What a bounce says about the mail it returns."""

    failed: bool  # a recipient failed for good (not only a delay warning)
    recipients: tuple[str, ...]  # that failed, lower-case
    status: str = ""  # the first failed recipient's status code, e.g. 5.1.1
    diagnostic: str = ""  # the remote server's words, one line
    message_ids: tuple[str, ...] = ()  # of the returned mail, without <>
    standard: bool = False  # an RFC 3464 delivery status notification


def may_be_bounce(is_dsn: bool, sender: str, subject: str) -> bool:
    """Worth reading as a bounce: a DSN, a mailer daemon's mail, or a bounce's subject."""
    if is_dsn:
        return True
    local = sender.rpartition("@")[0].lower() if "@" in sender else sender.lower()
    if local in _SENDERS:
        return True
    start = subject[:100].lower()
    return any(word in start for word in _SUBJECTS)


def read_bounce(raw: bytes) -> BounceReport | None:
    """The report of a bounce, or None if the message is no bounce that can be read."""
    try:
        return _read(bytes(raw[:MAX_BOUNCE_BYTES]))
    except Exception:  # a bounce that cannot be read is filed as mail
        log.debug("bounce could not be read", exc_info=True)
        return None


def _read(raw: bytes) -> BounceReport | None:
    message = BytesParser(policy=compat32).parsebytes(raw)
    parts = _parts(message)
    report = _dsn(parts)
    if report is _NOTHING_FAILED:
        return None  # the report says delivered or relayed: its words are not searched
    if report is not None:
        return report
    return _heuristic(raw, parts)


def _parts(message: Message) -> list[Message]:
    """The message's parts, depth first, at most MAX_PARTS (a returned message is one part)."""
    found: list[Message] = []
    stack = [message]
    while stack and len(found) < MAX_PARTS:
        part = stack.pop()
        found.append(part)
        ctype = part.get_content_type()
        if part.is_multipart() and ctype not in _RETURNED and ctype not in _DELIVERY_STATUS:
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            stack.extend(reversed(children))
    return found


# --- RFC 3464 ------------------------------------------------------------------------------
_FINE = frozenset({"delivered", "relayed", "expanded"})
# what _dsn answers for a report that names recipients and says none of them failed
_NOTHING_FAILED = BounceReport(failed=False, recipients=(), standard=True)


def _dsn(parts: list[Message]) -> BounceReport | None:
    blocks: list[Message] = []
    for part in parts:
        if part.get_content_type() in _DELIVERY_STATUS:
            blocks += _status_blocks(part)
    if not blocks:
        return None
    failed, delayed = [], []
    reported = False  # a recipient was delivered, relayed or expanded
    for block in blocks[1:] or blocks:  # the first block is the message's, the rest recipients'
        recipient = _recipient(block)
        action = _one_line(block.get("action", "")).lower()
        status = _status(block.get("status", ""))
        if action == "failed" or (not action and status.startswith("5")):
            failed.append((recipient, status, _diagnostic(block)))
        elif action == "delayed":
            delayed.append((recipient, status, _diagnostic(block)))
        elif action in _FINE or status.startswith("2"):
            reported = True
    chosen = failed or delayed
    if not chosen:
        # delivered, relayed, expanded: nothing went wrong; a report with no readable
        # recipient block is left to the heuristics
        return _NOTHING_FAILED if reported else None
    recipients = tuple(dict.fromkeys(r for r, _, _ in chosen if r))[:MAX_RECIPIENTS]
    _, status, diagnostic = chosen[0]
    return BounceReport(
        failed=bool(failed),
        recipients=recipients,
        status=status,
        diagnostic=diagnostic,
        message_ids=_returned_ids(parts),
        standard=True,
    )


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part (the email package parses them, or not)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)][: MAX_RECIPIENTS + 1]
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload or "")
    text = text.replace("\r\n", "\n")
    chunks = [c for c in text.split("\n\n") if c.strip()][: MAX_RECIPIENTS + 1]
    return [HeaderParser(policy=compat32).parsestr(chunk.strip("\n") + "\n") for chunk in chunks]


def _recipient(block: Message) -> str:
    for name in ("final-recipient", "original-recipient"):
        value = _one_line(block.get(name, ""))
        if value:
            address = value.partition(";")[2] if ";" in value else value
            return address.strip().strip("<>").lower()[:255]
    return ""


def _status(value: object) -> str:
    match = _STATUS.search(_one_line(value)[:100])
    return ".".join(match.groups()) if match else ""


def _diagnostic(block: Message) -> str:
    value = _one_line(block.get("diagnostic-code", ""))
    kind, semicolon, words = value.partition(";")
    return (words if semicolon and len(kind) < 20 else value).strip()[:MAX_DIAGNOSTIC]


def _returned_ids(parts: list[Message]) -> tuple[str, ...]:
    """Message-IDs of the returned message or its returned headers."""
    found: list[str] = []
    for part in parts:
        ctype = part.get_content_type()
        if ctype in _RETURNED:
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found += _ids(inner.get("message-id", ""))
            else:
                found += _ids_in_lines(_text(part))
        elif ctype in _RETURNED_HEADERS:
            found += _ids_in_lines(_text(part))
    return tuple(dict.fromkeys(found))[:MAX_IDS]


# --- other formats -------------------------------------------------------------------------
def _heuristic(raw: bytes, parts: list[Message]) -> BounceReport | None:
    """flufl.bounce's detectors over a bounded copy; None if none recognises the format."""
    temporary, permanent = _detect(detector_copy(raw))
    chosen = permanent or temporary
    if not chosen:
        return None
    recipients = tuple(
        sorted({_one_line(a.decode("ascii", "replace")).strip("<>").lower()[:255] for a in chosen})
    )[:MAX_RECIPIENTS]
    text = "\n".join(_text(part) for part in parts if part.get_content_maintype() == "text")
    status, diagnostic = _words_about(text[:MAX_HEURISTIC_BYTES], recipients)
    ids = _returned_ids(parts) or _ids_in_lines(text[:MAX_HEURISTIC_BYTES])
    return BounceReport(
        failed=bool(permanent),
        recipients=recipients,
        status=status,
        diagnostic=diagnostic,
        message_ids=tuple(ids)[:MAX_IDS],
    )


def detector_copy(raw: bytes) -> Message:
    """The copy of a bounce flufl.bounce's detectors read: its first MAX_HEURISTIC_BYTES,
    each part's payload decoded here (base64 and quoted-printable soft line breaks would
    otherwise join a whole part into one line for the detectors that decode) and every line
    cut to MAX_DETECTOR_LINE; the parts carry no transfer encoding any more."""
    message = BytesParser(policy=compat32).parsebytes(raw[:MAX_HEURISTIC_BYTES])
    budget = MAX_HEURISTIC_BYTES
    for number, part in enumerate(message.walk()):
        if number >= MAX_PARTS:
            break
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True)
        data = data[:budget] if isinstance(data, bytes) else b""
        budget -= len(data)
        lines = data.replace(b"\r\n", b"\n").split(b"\n")
        bounded = b"\n".join(line[:MAX_DETECTOR_LINE] for line in lines)
        del part["content-transfer-encoding"]
        # decode=True gives these bytes back unchanged (surrogateescape round-trips them)
        part.set_payload(bounded.decode("ascii", "surrogateescape"))
    return message


def _detect(message: Message) -> tuple[frozenset, frozenset]:
    """flufl.bounce's all_failures over its detectors but Netscape's, in its order: the first
    that finds a failed recipient answers. Netscape's pattern (.*<[^>]*>) takes cubic time in
    a line of '<' (seconds for one line of 1,000); the others take at most quadratic time in a
    line, which MAX_DETECTOR_LINE bounds. Netscape Messaging Server's bounces are rare since
    the 2000s and, when standard, are read as RFC 3464 reports before this."""
    from flufl.bounce._detectors import (  # imported only when a bounce needs them
        aol,
        caiwireless,
        dsn,
        exchange,
        exim,
        groupwise,
        llnl,
        microsoft,
        postfix,
        qmail,
        simplematch,
        simplewarning,
        sina,
        smtp32,
        yahoo,
        yale,
    )

    detectors = (
        dsn.DSN,
        exim.Exim,
        sina.Sina,
        yahoo.Yahoo,
        yale.Yale,
        smtp32.SMTP32,
        postfix.Postfix,
        qmail.Qmail,
        groupwise.GroupWise,
        microsoft.Microsoft,
        caiwireless.Caiwireless,
        exchange.Exchange,
        aol.AOL,
        simplematch.SimpleMatch,
        simplewarning.SimpleWarning,
        llnl.LLNL,
    )
    for detector in detectors:
        temporary, permanent = detector().process(message)
        if temporary or permanent:
            return frozenset(temporary), frozenset(permanent)
    return frozenset(), frozenset()


def _words_about(text: str, recipients: tuple[str, ...]) -> tuple[str, str]:
    """A status code and the line that explains the failure, from a bounce's own words: the
    first line with an SMTP reply (5xx) or a status code after the failed recipient."""
    lines = [_one_line(line[: MAX_LINE_CHARS * 2])[:MAX_LINE_CHARS] for line in text.splitlines()]
    start = 0
    for number, line in enumerate(lines):
        if any(r and r in line.lower() for r in recipients):
            start = number
            break
    status = diagnostic = ""
    for line in lines[start : start + 40]:
        if not line or line.startswith("-"):
            continue
        found = _STATUS.search(line)
        if found and not status:
            status = ".".join(found.groups())
        if not diagnostic and (found or re.match(r"^[45]\d\d[ -]", line)):
            diagnostic = line[:MAX_DIAGNOSTIC]
        if status and diagnostic:
            break
    if not diagnostic and start + 1 < len(lines):
        diagnostic = next((line for line in lines[start + 1 : start + 5] if line), "")
    if not status and diagnostic[:1] in "45" and diagnostic[:3].isdigit():
        status = f"{diagnostic[0]}.0.0"
    return status, diagnostic[:MAX_DIAGNOSTIC]


# --- small readers -------------------------------------------------------------------------
def _text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(_text(p) for p in payload if isinstance(p, Message))
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return data[:MAX_BOUNCE_BYTES].decode(charset, "replace")
        except LookupError:
            return data[:MAX_BOUNCE_BYTES].decode("utf-8", "replace")
    return str(payload or "")[:MAX_BOUNCE_BYTES]


def _ids_in_lines(text: str) -> list[str]:
    """Message-IDs named by "Message-ID:" lines (a returned header block or copy)."""
    found: list[str] = []
    for line in text.splitlines():
        if line[:11].lower() == "message-id:":
            found += _ids(line[11:])
            if len(found) >= MAX_IDS:
                break
    return found


def _ids(value: object) -> list[str]:
    return [m.group(1) for m in _ID.finditer(_one_line(value)[:2000])][:MAX_IDS]


# C0 controls and DEL: no address, id or diagnostic has them, and PostgreSQL text cannot hold NUL
_CONTROLS = dict.fromkeys([*range(32), 127])


def _one_line(value: object) -> str:
    return " ".join(str(value or "").split()).translate(_CONTROLS)
