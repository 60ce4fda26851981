"""The header writer, with the email package writing headers as an unpatched 3.11 does.

Python before 3.11.10 / 3.12.5 (CVE-2024-6923) writes a line break that decoding produced as
a real one. Patched versions fold such a value into an encoded word and refuse to write a
header that breaks lines, which would hide a set_header that stopped cleaning. So every test
here and in tests/test_header_injection.py writes mail through UNPATCHED, a policy that writes
a header whose decoded value holds CR or LF raw, on any interpreter.

Every line break str.splitlines() knows, typed raw or hidden in an encoded word (q, b, nested,
glued to other text), in every kind of field: text fields become one line, addresses and
message ids are refused, and the finished mail has exactly the headers that were set.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import sys
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy, compat32

import pytest

from postroom import mail_headers
from postroom.mail_headers import (
    LINE_BREAKS,
    HeaderError,
    header_text,
    hidden_line_break,
    message_bytes,
    set_header,
    writable_ids,
)


class UnpatchedPolicy(EmailPolicy):
    """SMTP as the email package before CVE-2024-6923 was fixed: a header whose decoded value
    holds CR or LF is written with it raw (non-ASCII escaped, so it can be sent as bytes)."""

    def _fold(self, name, value, refold_binary=False):
        text = str(value)  # a header object's decoded value, as the old folder wrote it
        if "\r" in text or "\n" in text:
            raw = text.encode("ascii", "backslashreplace").decode()
            return f"{name}: {raw}{self.linesep}"
        return super()._fold(name, value, refold_binary)


# patched versions also check what the generator writes; the old ones did not
_NO_CHECK = {"verify_generated_headers": False} if hasattr(SMTP, "verify_generated_headers") else {}
UNPATCHED = UnpatchedPolicy(linesep="\r\n", **_NO_CHECK)  # email.policy.SMTP, unpatched


@pytest.fixture(autouse=True)
def unpatched_email_package(monkeypatch):
    """postroom writes every mail with UNPATCHED (mail_headers.POLICY) during the test."""
    monkeypatch.setattr(mail_headers, "POLICY", UNPATCHED)


BREAKS = sorted(LINE_BREAKS)
BCC = "Bcc: victim@evil.example"


def q_word(text: str) -> str:
    return "=?utf-8?q?" + "".join(f"={b:02X}" for b in text.encode()) + "?="


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def disguises(brk: str) -> list[str]:
    """A header value that carries `brk` and a Bcc line, in the ways an attacker would try."""
    payload = f"Hi{brk}{BCC}{brk}{brk}injected body"
    return [
        f"Re: {payload}",  # raw
        f"Re: {q_word(payload)}",  # quoted-printable encoded word
        f"Re: {b_word(payload)}",  # base64 encoded word
        f"Re:x{q_word(payload)}y",  # glued to other text
        f"Re: {b_word(q_word(payload))}",  # an encoded word inside an encoded word
    ]


def headers_of(raw: bytes) -> list[tuple[str, str]]:
    """The header lines as written (nothing decoded, folded lines joined)."""
    read = email.message_from_bytes(raw, policy=compat32)
    return [(name.lower(), str(value)) for name, value in read.items()]


def test_line_breaks_are_exactly_what_str_splitlines_breaks_on():
    found = {chr(c) for c in range(sys.maxunicode + 1) if len(f"a{chr(c)}b".splitlines()) > 1}
    assert found == set(LINE_BREAKS)


def test_the_unpatched_policy_writes_decoded_line_breaks_and_message_bytes_stops_them():
    """What the tests run against, on any interpreter: a raw assignment injects a Bcc line."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = "Re: " + q_word("Hi\r\n" + BCC)  # not through set_header
    message["To"] = "anna@bakery.example"
    message.set_content("body")
    written = message.as_bytes(policy=UNPATCHED)
    assert b"\r\nBcc: victim@evil.example\r\n" in written  # the bug, as 3.11.7 has it
    assert [name for name, _ in headers_of(written)][:3] == ["subject", "bcc", "to"]
    with pytest.raises(HeaderError):
        message_bytes(message)  # the last check before sending catches it
    # and with the clean header nothing breaks: the policy only differs where the bug is
    clean = EmailMessage()
    set_header(clean, "Subject", "Re: " + q_word("Hi\r\n" + BCC))
    set_header(clean, "To", "anna@bakery.example")
    clean.set_content("body")
    assert clean.as_bytes(policy=UNPATCHED) == clean.as_bytes(policy=SMTP.clone(**_NO_CHECK))


@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(b):04X}" for b in BREAKS])
def test_every_line_break_in_a_subject_or_name_becomes_a_space(brk):
    for value in disguises(brk):
        message = EmailMessage()
        set_header(message, "From", (value, "team@agency.example"))
        set_header(message, "To", (value, "anna@bakery.example"))
        set_header(message, "Subject", value)
        set_header(message, "Date", dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
        set_header(message, "Message-ID", "abc@agency.example")
        message.set_content("the real body\n")
        raw = message_bytes(message)
        names = [name for name, _ in headers_of(raw)]
        assert names == [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "content-type",
            "content-transfer-encoding",
            "mime-version",
        ], value
        read = email.message_from_bytes(raw, policy=email.policy.default)
        assert read["Bcc"] is None and read["Reply-To"] is None
        assert read.get_content().replace("\r\n", "\n") == "the real body\n"
        for name in ("Subject", "From", "To"):  # as a mail reader decodes them
            decoded = str(read[name])
            assert not any(ch in decoded for ch in LINE_BREAKS), (name, value, decoded)
        assert "Hi" in str(read["Subject"]) and "victim@evil.example" in str(read["Subject"])
        assert read["To"].addresses[0].addr_spec == "anna@bakery.example"


@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(b):04X}" for b in BREAKS])
def test_a_line_break_in_an_address_or_message_id_is_refused(brk):
    for name, value in (
        ("To", f"anna@bakery.example{brk}{BCC}"),
        ("Reply-To", f"anna{brk}@bakery.example"),
        ("Cc", f"{q_word(brk)}anna@bakery.example"),
        ("Message-ID", f"abc{brk}@agency.example"),
        ("References", [f"abc{q_word(brk + BCC)}@agency.example"]),
    ):
        with pytest.raises(HeaderError):
            set_header(EmailMessage(), name, value)


def test_a_strangers_message_ids_that_cannot_be_written_are_left_out_of_a_thread():
    ids = [
        "good@bakery.example",
        f"{q_word(chr(13) + chr(10) + BCC)}@evil.example",
        "with space@x",
        "<bracket>@x",
        "fine.2@bakery.example",
    ]
    assert writable_ids(ids) == ["good@bakery.example", "fine.2@bakery.example"]


def test_encoded_text_decodes_once_to_what_a_reader_sees():
    assert header_text("Gr=?utf-8?q?=C3=BC=C3=9Fe?=") == "Grüße"
    assert header_text(f"Re: {b_word(q_word('a' + chr(13) + chr(10) + 'b'))}") == "Re: a b"
    assert hidden_line_break(f"Re: {b_word(q_word('a' + chr(0x2028) + 'b'))}")
    assert not hidden_line_break("Re: =?utf-8?q?ok?= and =? not a word ?=")
    deep = "x" + "\r\n" + BCC
    for _ in range(9):  # one more than header_text decodes
        deep = b_word(deep)
    with pytest.raises(HeaderError, match="nested too deep"):
        header_text(deep)
    assert hidden_line_break(deep)  # too deep to tell counts as a line break


def test_control_characters_and_lone_surrogates_do_not_reach_the_wire():
    message = EmailMessage()
    set_header(message, "Subject", "a\x00b\x1bc\x7fd\udcffe\u0085f")
    set_header(message, "To", "anna@bakery.example")
    message.set_content("x")
    raw = message_bytes(message)
    subject = email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
    assert str(subject) == "a b c d\ufffde f"


def test_headers_postroom_does_not_write_and_a_second_subject_are_refused():
    message = EmailMessage()
    with pytest.raises(HeaderError, match=r"^Bcc: postroom does not write this header$"):
        set_header(message, "Bcc", "victim@evil.example")
    set_header(message, "Subject", "one")
    with pytest.raises(HeaderError, match="set twice"):
        set_header(message, "Subject", "two")


def test_each_refusal_is_one_message_with_the_fields_label():
    cases = [
        (
            lambda: header_text("x" * 2001),
            "Subject: too long to be written into a mail (at most 2,000 characters)",
        ),
        (
            lambda: header_text("x" * 2001, "file name"),
            "File name: too long to be written into a mail (at most 2,000 characters)",
        ),
        (
            lambda: set_header(EmailMessage(), "To", ("x" * 2001, "anna@bakery.example")),
            "Name in To: too long to be written into a mail (at most 2,000 characters)",
        ),
        (
            lambda: set_header(EmailMessage(), "Cc", "anna at bakery"),
            "Address in Cc: not an address that can be written into a mail",
        ),
        (
            lambda: set_header(EmailMessage(), "References", []),
            "References: one or more message ids are needed",
        ),
        (
            lambda: set_header(EmailMessage(), "Message-ID", ["a@b.example", "c@d.example"]),
            "Message-ID: exactly one message id is needed",
        ),
        (
            lambda: set_header(EmailMessage(), "In-Reply-To", "no id"),
            "In-Reply-To: not a message id that can be written into a mail",
        ),
    ]
    for call, says in cases:
        with pytest.raises(HeaderError) as refused:
            call()
        assert str(refused.value) == says
