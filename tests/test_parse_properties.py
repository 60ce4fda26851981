"""Hostile mutations of corpus mails: parse fails only with ParseError, stores no control
character in a subject, name or filename, and keeps every subject the reference reads cleanly.

Each example takes a small corpus mail and applies one to four mutations: bytes (control
characters, ESC, DEL, C1, NUL, bare CR and LF) set or inserted into Subject, From, To and Cc,
or into Content-Type and Content-Disposition parameters, quoted or RFC 2231; encoded words in
charsets such as iso-2022-jp, utf-7 and ones that do not exist; a header of 5,000 words;
quoted parameters folded across lines; boundary lines doubled or dropped; truncation; the mail
nested in other ones, up to 60 deep. The runs are derandomized and bounded, so CI sees the same
examples every time. "The reference" is email.message_from_bytes(raw, policy=policy.default).
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpd_ingest.parse import ParsedMail, ParseError, parse_message
from tests.conftest import CORPUS, NOT_MAIL

MAX_SEED_BYTES = 16_000  # only small mails are mutated: an example parses in milliseconds
MUTATIONS = settings(
    max_examples=500,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MIME_VALUES = {b"Content-Type": b"application/octet-stream", b"Content-Disposition": b"attachment"}
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0 (ESC among them), DEL, C1: none in a name

# Hostile pieces, "|"-separated: C0 controls, ESC and ISO-2022 shifts, DEL, C1 raw and as
# UTF-8, a bidi override, bare CR and LF, folding, quoting and encoded-word marks, bad UTF-8.
HOSTILE = (
    b"\x00|\x01|\x07|\x08|\x0b|\x0c|\x1b|\x1b$B|\x1b(B|\x1b$)C|\x7f|\x85|\x9b|\xc2\x85|\xc2\x9b"
    b"|\xe2\x80\xae|\r|\n|\r\n|\r\n |\t|\"|;|\\|=?|?=|*|'|%|\xff|\xa5|\xc3|\xed\xa0\x80"
).split(b"|")
CHARSETS = [
    "iso-2022-jp",
    "utf-7",
    "unknown-8bit",
    "x-unknown",
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "gb2312",
    "shift_jis",
    "koi8-r",
    "us-ascii",
    "utf-16",
    "utf-8*en",
    "iso-2022-kr",
]
LETTERS = "aZ 9ü€漢字ひら\x00\x07\x1b\x7f\x85\x9b\u202e\t\r\n"
# what follows a word's text: ISO-2022-JP shifts into unmappable or cut-off JIS, bad UTF-7
TAILS = b"|\x1b$B|\x1b$B\x7f!|\x1b$B#\x1b|\x1b(J|\x1b|+AGE-|+/v8|\xff".split(b"|")


# --- seeds -------------------------------------------------------------------------------


@functools.cache
def seed_mails() -> tuple[str, ...]:
    """Name the small corpus mails that have a header block (Subject, From or Content-Type)."""
    return tuple(
        path.relative_to(CORPUS).as_posix()
        for path in sorted(CORPUS.rglob("*"))
        if path.is_file()
        and not path.name.upper().startswith(NOT_MAIL)
        and path.stat().st_size <= MAX_SEED_BYTES
        and has_header_block(path.read_bytes())
    )


def has_header_block(raw: bytes) -> bool:
    """Tell whether the reference reads a Subject, From or Content-Type (and does not fail)."""
    try:
        head = email.message_from_bytes(raw, policy=email.policy.default)
        return any(name in head for name in ("subject", "from", "content-type"))
    except Exception:  # noqa: BLE001 - a mail the reference cannot read is no seed
        return False


@functools.cache
def seed_bytes(name: str) -> bytes:
    """Read one seed mail."""
    return (CORPUS / name).read_bytes()


# --- what is put into a mail -------------------------------------------------------------

hostile_bytes = st.lists(
    st.sampled_from(HOSTILE) | st.binary(min_size=1, max_size=3), min_size=1, max_size=6
).map(b"".join)


@st.composite
def encoded_words(draw) -> bytes:
    """Build an RFC 2047 word: hostile text in a charset (maybe unknown), plus a bad tail."""
    charset = draw(st.sampled_from(CHARSETS))
    text = draw(st.text(alphabet=LETTERS, max_size=10))
    try:
        data = text.encode(charset.split("*")[0], errors="replace")
    except LookupError:
        data = text.encode("utf-8")
    data += draw(st.sampled_from(TAILS))
    if draw(st.booleans()):
        encoding, payload = b"B", base64.b64encode(data)
    else:
        encoding, payload = b"Q", binascii.b2a_qp(data, header=True).replace(b"?", b"=3F")
    return b"=?" + charset.encode() + b"?" + encoding + b"?" + payload + b"?="


quoted_names = st.builds(  # "Anna<piece> Baker" <q@x.test>: one hostile piece in a plain name
    lambda piece, last: b'"Anna' + piece + last + b'" <q@x.test>',
    st.sampled_from(HOSTILE),
    st.sampled_from([b"", b" Baker"]),
)
header_values = st.lists(
    st.sampled_from([b"Hello", b"Gr\xfc\xdfe", b"a@example.test", b"<b@x.test>", b'"N" <n@x.test>'])
    | hostile_bytes
    | encoded_words()
    | quoted_names,
    min_size=1,
    max_size=5,
).map(b" ".join)


# --- mutations ---------------------------------------------------------------------------


def newline_of(raw: bytes) -> bytes:
    """Return the line end the mail uses."""
    return b"\r\n" if b"\r\n" in raw else b"\n"


def header_span(raw: bytes, name: bytes, occurrence: int = 0) -> tuple[int, int] | None:
    """Find the (start, end) of a header field's value, continuation lines included.

    Looks at every line of the mail (part headers too), so occurrence picks among all of them.
    """
    starts = [m.start() for m in re.finditer(rb"(?im)^" + re.escape(name) + rb"[ \t]*:", raw)]
    if not starts:
        return None
    at = starts[occurrence % len(starts)]
    value = raw.index(b":", at) + 1
    end = raw.find(b"\n", value)
    while end != -1 and raw[end + 1 : end + 2] in (b" ", b"\t"):
        end = raw.find(b"\n", end + 1)
    end = len(raw) if end == -1 else end
    return value, end - (raw[end - 1 : end] == b"\r")


def set_header(raw: bytes, name: bytes, value: bytes) -> bytes:
    """Give the first such header a new value, or add it on top."""
    span = header_span(raw, name)
    if span is None:
        return name + b": " + value + newline_of(raw) + raw
    return raw[: span[0]] + b" " + value + raw[span[1] :]


def insert_in_header(raw: bytes, name: bytes, where: int, piece: bytes) -> bytes:
    """Insert bytes somewhere inside the first such header's value."""
    span = header_span(raw, name)
    if span is None:
        return set_header(raw, name, piece)
    at = span[0] + where % (span[1] - span[0] + 1)
    return raw[:at] + piece + raw[at:]


def add_param(
    raw: bytes, header: bytes, occurrence: int, param: bytes, value: bytes, fold: int
) -> bytes:
    """Add a quoted parameter to one Content-Type or -Disposition, maybe folded in its quotes."""
    if fold:
        cut = fold % (len(value) + 1)
        value = value[:cut] + newline_of(raw) + b" " + value[cut:]
    span = header_span(raw, header, occurrence)
    text = b"; " + param + b'="' + value + b'"'
    if span is None:
        return set_header(raw, header, MIME_VALUES[header] + text)
    return raw[: span[1]] + text + raw[span[1] :]


def add_rfc2231_param(
    raw: bytes, header: bytes, occurrence: int, param: bytes, charset: str, data: bytes
) -> bytes:
    """Add an RFC 2231 parameter, percent-encoded in a charset, split in two continuations."""
    encoded = b"".join(b"%%%02X" % byte for byte in data)
    cut = len(data) // 2 * 3  # between two %XX
    text = b"; %s*0*=%s''%s; %s*1*=%s" % (
        param,
        charset.encode(),
        encoded[:cut],
        param,
        encoded[cut:],
    )
    span = header_span(raw, header, occurrence)
    if span is None:
        return set_header(raw, header, MIME_VALUES[header] + text)
    return raw[: span[1]] + text + raw[span[1] :]


def boundary_line(raw: bytes, occurrence: int, keep: int) -> bytes:
    """Drop a boundary line (keep=0) or write it keep+1 times."""
    lines = raw.split(b"\n")
    found = [i for i, line in enumerate(lines) if line.startswith(b"--")]
    if not found:
        return raw
    i = found[occurrence % len(found)]
    lines[i : i + 1] = [lines[i]] * (keep + 1) if keep else []
    return b"\n".join(lines)


def nest(raw: bytes, as_part: bool, levels: int) -> bytes:
    """Enclose the mail in multiparts, as a message/rfc822 attachment or as a part itself."""
    for level in range(levels):
        boundary = b"=nest%d=" % level
        part = raw if as_part else b"Content-Type: message/rfc822\r\n\r\n" + raw
        raw = (
            b"From: outer@example.test\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
            b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\nouter text\r\n"
            b"--" + boundary + b"\r\n" + part + b"\r\n--" + boundary + b"--\r\n"
        )
    return raw


def repeat_in_header(raw: bytes, name: bytes, piece: bytes, times: int) -> bytes:
    """Set a header to one piece written many times over (folded), as in a 5,000-word To."""
    return set_header(raw, name, (piece + newline_of(raw) + b" ") * times + piece)


positions = st.integers(min_value=0, max_value=10_000)
address_headers = st.sampled_from([b"Subject", b"From", b"To", b"Cc"])
mime_headers = st.sampled_from([b"Content-Type", b"Content-Disposition"])
mime_params = st.sampled_from([b"name", b"filename", b"boundary", b"charset", b"filename*"])

mutations = st.one_of(
    st.tuples(st.just(set_header), address_headers, header_values),
    st.tuples(st.just(set_header), address_headers, quoted_names),  # the most common shape
    st.tuples(st.just(insert_in_header), address_headers, positions, hostile_bytes),
    st.tuples(
        st.just(add_param),
        mime_headers,
        positions,
        mime_params,
        header_values | hostile_bytes,
        st.integers(0, 40),
    ),
    st.tuples(
        st.just(add_rfc2231_param),
        mime_headers,
        positions,
        st.sampled_from([b"name", b"filename"]),
        st.sampled_from(CHARSETS),
        hostile_bytes,
    ),
    st.tuples(st.just(boundary_line), positions, st.integers(0, 2)),
    st.tuples(st.just(nest), st.booleans(), st.sampled_from([1, 2, 60])),
    st.tuples(
        st.just(repeat_in_header),
        address_headers,
        encoded_words() | st.sampled_from([b"(", b"a@x.test,", b"g:"]),
        st.sampled_from([10, 5000]),
    ),
    st.tuples(st.just("truncate"), positions),
)


@st.composite
def mutated_mails(draw) -> bytes:
    """Draw a small corpus mail and apply one to four mutations to it."""
    raw = seed_bytes(draw(st.sampled_from(seed_mails())))
    for mutation, *arguments in draw(st.lists(mutations, min_size=1, max_size=4)):
        if mutation == "truncate":
            raw = raw[: len(raw) * arguments[0] // 10_000]
        else:
            raw = mutation(raw, *arguments)
    return raw


# --- the properties ----------------------------------------------------------------------


def parsed(raw: bytes) -> ParsedMail | ParseError:
    """Parse with postroom: a ParsedMail, or the ParseError it raised (never another error)."""
    try:
        return parse_message(raw)
    except ParseError as error:
        return error


def stored_names(mail: ParsedMail | ParseError) -> dict[str, str]:
    """Map where each stored subject, name and filename sits to its text."""
    if isinstance(mail, ParseError):  # stored raw, with what the header block still gave
        return {"subject": mail.subject} | ({"from.name": mail.sender.name} if mail.sender else {})
    found = {"subject": mail.subject}
    people = [("from", mail.from_)] if mail.from_ else []
    for field in ("to", "cc", "reply_to"):
        people += [(f"{field}[{i}]", a) for i, a in enumerate(getattr(mail, field))]
    found |= {f"{where}.name": address.name for where, address in people}
    for i, attachment in enumerate(mail.attachments):
        found[f"attachments[{i}].filename"] = attachment.filename
        found[f"attachments[{i}].original_filename"] = attachment.original_filename
    return found


def clean_reference_subject(raw: bytes) -> str:
    """Return the subject the reference reads cleanly, controls removed; else "".

    Cleanly: no defect on the header and no U+FFFD, which the registry puts for undecodable
    bytes without reporting a defect for an unstructured header (Python 3.11).
    """
    try:
        header = email.message_from_bytes(raw, policy=email.policy.default)["subject"]
    except Exception:  # noqa: BLE001 - the reference fails on it: it reads no subject
        return ""
    if header is None or header.defects or "\ufffd" in header:  # U+FFFD: bytes it could not read
        return ""
    return CONTROL.sub("", str(header)).strip()


@MUTATIONS
@given(raw=mutated_mails())
def test_a_mutated_mail_parses_or_is_refused_with_parse_error(raw: bytes, corpus_dir: Path):
    parsed(raw)


@MUTATIONS
@given(raw=mutated_mails())
def test_no_control_character_reaches_a_stored_subject_name_or_filename(
    raw: bytes, corpus_dir: Path
):
    stored = stored_names(parsed(raw))
    leaked = {where: text for where, text in stored.items() if CONTROL.search(text)}
    assert not leaked, f"{leaked!r} stored from {raw!r}"


@MUTATIONS
@given(raw=mutated_mails())
def test_a_subject_the_reference_reads_cleanly_is_never_lost(raw: bytes, corpus_dir: Path):
    reference = clean_reference_subject(raw)
    if reference:
        subject = parsed(raw).subject
        assert subject.strip(), f"subject {reference!r} lost from {raw!r}"
