"""postroom reads every corpus mail as the email package's policy.default does, or better.

For each mail of the shared corpus, four readings are held against
`email.message_from_bytes(raw, policy=email.policy.default)`: the subject, the sender address,
the number of attachments and the start of the text body. An item is compared only where the
reference reports no defect for it (and does not fail on it). Every disagreement is listed in
DISAGREEMENTS with the reason postroom's reading is the better one; the test fails on a
disagreement that is not listed and on a listed one that has gone, so the list is reviewed,
never only grown. A reading where postroom is worse is a bug to fix, not an entry.

"No defect" is what the reference reports: a header's .defects, the .defects of each part
walked (structure and content), and a failure to read the item at all. On Python 3.11 the
header registry does not pass an unstructured header's parse defects on to .defects, so a
Subject whose raw 8-bit bytes the reference turns into U+FFFD counts as read cleanly: those
are the charset-fallback entries below.
"""

from __future__ import annotations

import email
import email.policy
import functools
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from smtpd_ingest.parse import ParseError, parse_message
from storage.filing import MAX_SUBJECT
from tests.conftest import CORPUS, NOT_MAIL

TEXT_START = 80  # characters of the text body compared, whitespace runs made one space
BODY_TYPES = frozenset({"text/plain", "text/html"})

# {corpus-relative path: {item: why postroom's reading is better than the reference's}}
DISAGREEMENTS: dict[str, dict[str, str]] = {
    "flanker/mailformed-headers.eml": {
        "subject": "raw 8-bit byte 0xB4 in the Subject: postroom reads it as cp1252 (an acute"
        " accent), the reference replaces it with U+FFFD and reports no defect on the header",
    },
    "flanker/spam/broken-headers.eml": {
        "subject": "raw 8-bit byte 0x85 in the Subject: postroom reads it as cp1252 (an"
        " ellipsis), the reference replaces it with U+FFFD and reports no defect on the header",
    },
    "mail-parser/mail_test_9": {
        "subject": "encoded words labelled gb2312 carry a GBK character: postroom decodes with"
        " gb18030, the superset senders use, the reference loses it as U+FFFD",
    },
    "mail-parser/mail_test_12": {
        "text": "the body is UTF-8 labelled charset=GB2312: postroom's fallback reads it as"
        " UTF-8, the reference decodes it as GB2312 into mojibake and U+FFFD",
    },
    "python-fuzzers-email/50f4a24dae36e730a4378153c4fdc98c38a33723": {
        "text": "unlabelled 8-bit bytes (0xA5 0xBE 0xBD): postroom guesses a charset and keeps"
        " them as letters, the reference reads them as ASCII and replaces each with U+FFFD",
    },
}


def corpus_names() -> list[str]:
    """Name every mail of the corpus by its path relative to it, sorted."""
    if not CORPUS.is_dir():
        return ["(corpus missing)"]  # the corpus_dir fixture then fails the test, never skips
    return sorted(
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.is_file() and not path.name.upper().startswith(NOT_MAIL)
    )


def normalised(text: str) -> str:
    """Make every whitespace run one space and strip the ends."""
    return " ".join(text.split())


def same_address(ours: str, reference: str) -> bool:
    """Compare two addr-specs, the domain without regard to case."""
    local, _, domain = ours.rpartition("@")
    ref_local, _, ref_domain = reference.rpartition("@")
    return local == ref_local and domain.lower() == ref_domain.lower()


def filed_leaves(message: EmailMessage) -> list[EmailMessage]:
    """List the parts postroom files as a body or an attachment, in document order.

    Multiparts are descended into; a message/* part is one leaf, its insides not walked.
    """
    leaves, stack = [], [message]
    while stack:
        part = stack.pop()
        if part.get_content_maintype() == "message" or not part.is_multipart():
            leaves.append(part)
        else:
            stack.extend(reversed([p for p in part.get_payload() if isinstance(p, EmailMessage)]))
    return leaves


def containers(message: EmailMessage) -> list[EmailMessage]:
    """List every part walked to find the filed leaves, the leaves included."""
    found, stack = [], [message]
    while stack:
        part = stack.pop()
        found.append(part)
        if part.get_content_maintype() != "message" and part.is_multipart():
            stack.extend(p for p in part.get_payload() if isinstance(p, EmailMessage))
    return found


def mime_header_defects(part: EmailMessage) -> bool:
    """Tell whether the part's Content-Type or Content-Disposition header reports a defect."""
    return any(
        header.defects
        for name in ("content-type", "content-disposition")
        for header in part.get_all(name, [])
    )


def is_body(part: EmailMessage) -> bool:
    """Tell whether postroom files a leaf as a text body: text/plain or text/html, unnamed."""
    if part.get_content_type() not in BODY_TYPES:
        return False
    disposition = part["content-disposition"]
    if disposition is not None and disposition.content_disposition == "attachment":
        return False
    named = [
        header.params.get(param)
        for header, param in ((disposition, "filename"), (part["content-type"], "name"))
        if header is not None
    ]
    return not any(name and name.strip() for name in named)


def reference_subject(message: EmailMessage) -> str | None:
    """Return the subject as the reference reads it, or None if it reports a defect."""
    header = message["subject"]
    if header is None:
        return ""
    return None if header.defects else normalised(str(header))


def reference_sender(message: EmailMessage) -> str | None:
    """Return the one From address read without a defect, "" if there is no From, else None."""
    header = message["from"]
    if header is None:
        return ""
    if header.defects or len(header.addresses) != 1:
        return None
    return header.addresses[0].addr_spec


def reference_attachments(message: EmailMessage) -> int | None:
    """Count the leaves that are not a text body, or None if the structure has a defect."""
    walked = containers(message)
    if any(part.defects or mime_header_defects(part) for part in walked):
        return None
    return sum(not is_body(part) for part in filed_leaves(message))


def reference_text(message: EmailMessage) -> str | None:
    """Return the start of the text/plain bodies, or None where the reference cannot tell."""
    walked = containers(message)
    if any(part.defects or mime_header_defects(part) for part in walked):
        return None
    bodies = [
        p for p in filed_leaves(message) if p.get_content_type() == "text/plain" and is_body(p)
    ]
    texts = [part.get_content() for part in bodies]
    if any(part.defects for part in bodies):  # decoding the content found a defect
        return None
    return normalised(" ".join(texts))[:TEXT_START]


READERS = {
    "subject": reference_subject,
    "sender": reference_sender,
    "attachments": reference_attachments,
    "text": reference_text,
}


def reference_readings(raw: bytes) -> dict[str, object]:
    """Read each item with policy.default; leave out those it reports a defect for or fails on."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # noqa: BLE001 - the reference cannot read it: nothing to compare
        return {}
    readings = {item: reading(read, message) for item, read in READERS.items()}
    return {item: value for item, value in readings.items() if value is not None}


def reading(read: Callable[[EmailMessage], object], message: EmailMessage) -> object:
    """Return what a reference reader reads, or None where the reference fails on the item."""
    try:
        return read(message)
    except Exception:  # noqa: BLE001 - the reference fails on this item: it is not compared
        return None


def our_readings(raw: bytes) -> tuple[dict[str, object], str]:
    """Read the four items as postroom stores them; a ParseError keeps the subject and sender
    read from the header block, and says why."""
    try:
        mail = parse_message(raw)
    except ParseError as error:
        sender = error.sender.address if error.sender else ""
        readings = {"subject": normalised(error.subject), "sender": sender}
        return readings | {"attachments": 0, "text": ""}, f"ParseError: {error}"
    readings = {
        "subject": normalised(mail.subject),
        "sender": mail.from_.address if mail.from_ else "",
        "attachments": len(mail.attachments),
        "text": normalised(mail.text)[:TEXT_START],
    }
    return readings, ""


def agrees(item: str, ours: object, reference: object) -> bool:
    """Tell whether postroom's reading of an item agrees with the reference's: a subject as
    far as postroom stores it (storage.filing.MAX_SUBJECT; parse decodes a little more)."""
    if item == "sender" and isinstance(ours, str) and isinstance(reference, str):
        return same_address(ours, reference)
    if item == "subject" and isinstance(ours, str) and isinstance(reference, str):
        return ours[:MAX_SUBJECT] == reference[:MAX_SUBJECT]
    return ours == reference


@functools.cache
def disagreements(name: str) -> tuple[dict[str, tuple[object, object]], str]:
    """Map each item postroom and the reference read differently to (ours, reference)."""
    raw = (CORPUS / name).read_bytes()
    ours, parse_error = our_readings(raw)
    found = {
        item: (ours[item], reference)
        for item, reference in reference_readings(raw).items()
        if not agrees(item, ours[item], reference)
    }
    return found, parse_error


@pytest.mark.parametrize("name", corpus_names())
def test_postroom_reads_each_corpus_mail_as_the_reference_or_says_why_better(
    name: str, corpus_dir: Path
) -> None:
    found, parse_error = disagreements(name)
    listed = DISAGREEMENTS.get(name, {})
    unlisted = {item: found[item] for item in found.keys() - listed.keys()}
    assert not unlisted, (
        f"{name}: postroom (left) disagrees with the reference (right) {parse_error}"
    )
    gone = sorted(listed.keys() - found.keys())
    assert not gone, f"{name}: listed disagreements no longer found, take them off: {gone}"


def test_every_listed_disagreement_names_a_corpus_mail(corpus_dir: Path) -> None:
    names = set(corpus_names())
    assert len(names) == 656
    assert not sorted(DISAGREEMENTS.keys() - names)
    assert all(reason.strip() for items in DISAGREEMENTS.values() for reason in items.values())
