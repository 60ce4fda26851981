"""What may go into a mail to a customer: one-line headers, sendable addresses, safe files;
and which server an account may send it through.

A line break in a header field the user typed (recipient, subject, file name) is refused,
never cleaned up, also one hidden in an encoded word (=?utf-8?q?=0D=0A?=): the person who
typed it sees why, and nothing is queued. Text the user did not type (a stranger's subject
in "Re: ...", a template variable) is made one line by postroom.mail_headers instead.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import unicodedata

import markdown
import nh3

from domain.addresses import is_address
from postroom.mail_headers import (
    HeaderError,
    address_spec,
    has_line_break,
    header_text,
    hidden_line_break,
)
from storage.outbound import OutboundAttachment

MAX_SUBJECT_CHARS = 500
MAX_BODY_CHARS = 200_000
MAX_ATTACHMENTS = 20
MAX_FILENAME_CHARS = 150
CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")

# Our own tables, not the interpreter's is_global (wrong before 3.11.10/3.12.4, CVE-2024-4032).
# IPv4: every special-purpose block that is not the open internet (RFC 6890 and successors).
IPV4_DENIED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
# IPv6: only global unicast (2000::/3) is accepted, minus these blocks; everything outside it
# (::/96 IPv4-compatible, ::ffff:0:0/96 mapped, ::ffff:0:0:0/96 SIIT, 64:ff9b:1::/48 local
# NAT64, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 5f00::/16, ...) is refused.
IPV6_GLOBAL = ipaddress.ip_network("2000::/3")
IPV6_DENIED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
        "2001:db8::/32",
        "3fff::/20",  # documentation
    )
)
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # judged by the IPv4 address inside
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: judged by the IPv4 address inside

HTML_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "ul",
}
HTML_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}


class OutboundError(ValueError):
    """The mail cannot be queued as asked; the message says why, for the person writing it.

    `field` names the part of the mail a check refused ("recipient", "subject",
    "attachments"); None: the mail as a whole (or its text)."""

    field: str | None = None


def _about(field: str):
    """The refusals of the decorated check name the part of the mail they are about."""

    def decorate(check):
        @functools.wraps(check)
        def checked(*args, **kwargs):
            try:
                return check(*args, **kwargs)
            except OutboundError as refusal:
                refusal.field = field
                raise

        return checked

    return decorate


Upload = tuple[str, str, bytes]  # (filename, content type, bytes)


def _has_line_break(text: str) -> bool:
    return "\x00" in text or has_line_break(text) or hidden_line_break(text)


@_about("recipient")
def check_recipient(to: str) -> str:
    """The recipient as stored (trimmed, lower-case), or OutboundError."""
    if _has_line_break(to):
        raise OutboundError("the recipient must not contain line breaks")
    address = to.strip().lower()
    if not address:
        raise OutboundError("choose or type a recipient")
    if not address.isascii() or not is_address(address):
        raise OutboundError(
            f"the recipient is not an email address postroom can send to: {to.strip()[:80]!r}"
        )
    try:
        return address_spec(address, "recipient")
    except HeaderError as error:
        raise OutboundError(str(error)) from None


@_about("subject")
def check_subject(subject: str) -> str:
    """The subject as stored and sent (one line, decoded), or OutboundError."""
    if _has_line_break(subject):
        raise OutboundError(
            "the subject must be one line (it contains a line break, "
            "perhaps in encoded text like =?utf-8?q?=0D=0A?=)"
        )
    subject = subject.strip()
    if len(subject) > MAX_SUBJECT_CHARS:
        raise OutboundError(f"the subject is too long (at most {MAX_SUBJECT_CHARS} characters)")
    try:
        subject = header_text(subject)
    except HeaderError as error:
        raise OutboundError(str(error)) from None
    if not subject:
        raise OutboundError("write a subject")
    return subject


@_about("attachments")
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
            raise OutboundError(
                f"{name[:80]!r} is too large ({len(data):,} bytes; at most "
                f"{max_bytes:,} per attachment)"
            )
        kind = content_type.split(";")[0].strip().lower()
        if not CONTENT_TYPE.match(kind) or len(kind) > 100:
            kind = "application/octet-stream"
        safe = safe_filename(name) or f"attachment-{number}"
        files.append(OutboundAttachment(safe, name[:1000], kind, bytes(data)))
    return tuple(files)


def safe_filename(name: str) -> str:
    """A file name fit for a MIME header and a file system: no path, no control characters."""
    try:
        name = header_text(unicodedata.normalize("NFC", name[:1000]), "file name")
    except HeaderError:
        return ""
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = re.split(r"[/\\]", name)[-1]
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_FILENAME_CHARS:
        _stem, dot, extension = name.rpartition(".")
        keep = "." + extension if dot and 0 < len(extension) <= 10 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep)].rstrip(". ") + keep
    return name


def check_smtp_host(host: str, port: int, outbound) -> tuple[str, ...]:
    """The addresses an account's own mail server may be reached at, or OutboundError.

    Only the ports of `[outbound] allowed_ports`, and (unless `allow_private_hosts`) only
    public addresses: every address the name resolves to is checked, at saving and again
    before each connection, which then goes to these addresses only (no second lookup).
    """
    if port not in outbound.allowed_ports:
        allowed = ", ".join(str(p) for p in outbound.allowed_ports)
        raise OutboundError(f"port {port} is not allowed for a mail server (allowed: {allowed})")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise OutboundError(f"the server name {host[:100]!r} cannot be found") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise OutboundError(f"the server name {host[:100]!r} cannot be found")
    if not outbound.allow_private_hosts:
        for address in addresses:
            if not public_address(address):
                raise OutboundError(
                    f"{host[:100]} is a local or private address ({address}); "
                    "a mail server must be reachable on the internet"
                )
    return addresses


def public_address(text: str) -> bool:
    """True for an address on the open internet: not loopback, private, link-local,
    multicast, documentation, translation or any other special block (our tables above)."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address != ipaddress.IPv4Address("255.255.255.255") and not any(
            address in network for network in IPV4_DENIED
        )
    if address in NAT64:
        return public_address(str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    if address in SIX_TO_FOUR:
        return public_address(str(ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)))
    return address in IPV6_GLOBAL and not any(address in network for network in IPV6_DENIED)


def markdown_to_html(text: str) -> str:
    """The Markdown as sanitised HTML: line breaks kept as people type them in a mail."""
    html = markdown.markdown(text, extensions=["sane_lists", "nl2br"], output_format="html")
    return nh3.clean(
        html,
        tags=HTML_TAGS,
        attributes=HTML_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer",
    )
