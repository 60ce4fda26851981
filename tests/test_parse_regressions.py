"""Three mails whose content the parser once lost, each built here from a few lines.

- an Outlook 2000 multipart whose boundary parameter is folded inside its quotes;
- a To: of 5,000 encoded words, which the email package's address parsers cannot take;
- an ISO-2022-JP subject with characters Python's codec cannot map (NEC circled digits).
Plus: what the parse keeps when a mail's structure cannot be walked at all.
"""

from __future__ import annotations

import base64
import unicodedata

import pytest

from smtpd_ingest.parse import Address, ParseError, header_fields, parse_message
from tests.test_html_text import assert_linear, seconds

BOUNDARY = "----=_NextPart_000_0007_01C0F9B5.0B37F5E0"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()


def outlook_folded(fold: str) -> bytes:
    """A mail with a text part and three images, its boundary folded after 28 characters."""
    folded = BOUNDARY[:28] + fold + BOUNDARY[28:]
    lines = [
        "From: Anna Miller <anna@bakery.example>",
        "Subject: Fotos",
        "MIME-Version: 1.0",
        "X-Mailer: Microsoft Outlook 9.0",
        "Content-Type: multipart/related;",
        f'\tboundary="{folded}"',
        "",
        "This is a multi-part message in MIME format.",
        "",
        f"--{BOUNDARY}",
        "Content-Type: text/plain; charset=iso-8859-1",
        "",
        "Hallo, anbei drei Fotos.",
    ]
    for number in range(3):
        lines += [
            f"--{BOUNDARY}",
            f'Content-Type: image/png; name="foto{number}.png"',
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="foto{number}.png"',
            "",
            PNG,
        ]
    lines.append(f"--{BOUNDARY}--")
    return "\r\n".join(lines).encode()


@pytest.mark.parametrize("fold", ["\r\n\t", "\r\n ", "\n\t  "])
def test_a_boundary_folded_inside_its_quotes_yields_the_text_and_three_images(fold):
    mail = parse_message(outlook_folded(fold))
    assert mail.text.strip() == "Hallo, anbei drei Fotos."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        (f"foto{n}.png", "image/png") for n in range(3)
    ]
    assert mail.attachments[0].data.startswith(b"\x89PNG")
    assert mail.warnings == ()


def huge_to(words: int, separator: str) -> bytes:
    to = separator.join(f"=?utf-8?q?Empf=C3=A4nger:{n}?=" for n in range(words))
    return (
        "From: Anna Miller <anna@bakery.example>\r\n"
        f"To: {to} <team@agency.example>\r\n"
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_der_B=C3=A4ckerei?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Die Bestellung ist da.\r\n"
    ).encode()


@pytest.mark.parametrize("separator", [" ", "\r\n "])
def test_a_to_of_5000_encoded_words_costs_the_to_header_only(separator):
    mail = parse_message(huge_to(5000, separator))
    assert mail.subject == "Grüße aus der Bäckerei"
    assert mail.from_ == Address("Anna Miller", "anna@bakery.example")
    assert mail.text.strip() == "Die Bestellung ist da."
    assert [(w.item, w.code) for w in mail.warnings] == [("To", "header_too_long")]


def test_a_to_the_registry_cannot_parse_is_read_by_the_simple_reader():
    nested = "(" * 1200 + "x" + ")" * 1200  # within the registry's 4 KB, past its recursion
    raw = (
        f"From: anna@bakery.example\r\nTo: Team {nested} <team@agency.example>\r\n"
        "Subject: hi\r\n\r\nbody\r\n"
    ).encode()
    mail = parse_message(raw)
    assert mail.to == (Address("Team", "team@agency.example"),)
    assert [(w.item, w.code) for w in mail.warnings] == [("To", "header_unreadable")]
    assert "RecursionError" in mail.warnings[0].detail
    assert mail.subject == "hi" and mail.text.strip() == "body"


def iso_2022_jp_word(text_bytes: bytes) -> str:
    return f"=?ISO-2022-JP?B?{base64.b64encode(text_bytes).decode()}?="


def test_an_iso_2022_jp_subject_the_codec_cannot_map_has_no_control_characters():
    katakana = b"\x1b$B%F%9%H\x1b(B"  # テスト
    circled = b'\x1b$B-!-"\x1b(B'  # ①② (NEC row 13, not in Python's iso2022_jp)
    raw = (
        f"From: a@b.example\r\nSubject: {iso_2022_jp_word(katakana)} "
        f"{iso_2022_jp_word(circled)}\r\n\r\nx\r\n"
    ).encode()
    subject = parse_message(raw).subject
    assert subject == "テスト①②"
    assert not any(unicodedata.category(ch) == "Cc" for ch in subject)


def test_no_control_character_reaches_a_subject_name_or_filename():
    raw = (
        b"From: =?utf-8?q?Anna=1B=07=C2=85_Miller?= <anna@bakery.example>\r\n"
        b"Subject: =?utf-8?q?a=00b=1B$Bc=0D=0Ad=C2=9Be?=\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--B\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''re%1Bchnung%C2%9B.pdf\r\n\r\nx\r\n"
        b"--B--\r\n"
    )
    mail = parse_message(raw)
    texts = [mail.subject, mail.from_.name, *(a.filename for a in mail.attachments)]
    texts += [a.original_filename for a in mail.attachments]
    for text in texts:
        assert not any(unicodedata.category(ch) == "Cc" for ch in text), repr(text)
    assert mail.subject == "a b $Bc d e"
    assert mail.from_.name == "Anna  Miller"  # a run of controls became one space


def test_a_mail_beyond_walking_still_gives_its_sender_and_subject_however_long_its_header():
    filler = "".join(f"X-Filler-{n}: {'y' * 900}\r\n" for n in range(200))  # 180 KB of header
    parts = "".join("--B\n\n" for _ in range(10_001))  # more parts than the package may build
    raw = (
        f"{filler}From: Anna <anna@bakery.example>\r\nSubject: Angebot\r\n"
        f"Content-Type: multipart/mixed; boundary=B\r\n\r\n{parts}--B--\r\n"
    ).encode()
    with pytest.raises(ParseError, match="more than 10,000 MIME parts") as refused:
        parse_message(raw)
    assert refused.value.subject == "Angebot"
    assert refused.value.sender == Address("Anna", "anna@bakery.example")


def test_nesting_deeper_than_the_limit_is_not_split_and_costs_no_time_per_level():
    def nested(levels: int) -> bytes:
        opens = "".join(
            f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(levels)
        )
        lines = "line\n" * 20_000  # each line was tested against every enclosing boundary
        return f"From: a@b.example\nSubject: deep\n{opens}\n{lines}".encode()

    mail = parse_message(nested(200))
    assert mail.subject == "deep"
    assert [(w.item, w.code) for w in mail.warnings] == [("MIME", "nested_too_deep")]
    took = [seconds(lambda n=n: parse_message(nested(n))) for n in (100, 400)]
    assert took[1] < 2.5 * took[0], took  # beyond 50 levels, depth costs nothing


HOSTILE_PART_HEADERS = [
    "Content-Type: text/plain" + "; a=b" * 399,  # 2 KB of parameters
    "Content-Type: text/plain; a=b (" + "(x" * 990,  # comments nested past the recursion limit
    "Content-Transfer-Encoding: base64" + " (x)" * 1000,  # the registry: 76 ms for 3.9 KB
    'Content-Disposition: attachment; filename="' + "; " * 1000 + '"',
]


@pytest.mark.parametrize("header", HOSTILE_PART_HEADERS)
def test_hostile_headers_in_every_part_cost_time_linear_in_the_parts(header):
    def parse(parts: int) -> object:
        body = "".join(f"--B\r\n{header}\r\n\r\nx\r\n" for _ in range(parts))
        raw = f"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n{body}--B--"
        return parse_message(raw.encode())

    assert_linear(parse, 50)


def invoice_with_part(content_type: bytes, extra: bytes = b"") -> bytes:
    return (
        b"From: Anna <anna@x.test>\r\nSubject: Invoice 42\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        b"--XX\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice.\r\n"
        b"--XX\r\nContent-Type: " + content_type + b"\r\n" + extra + b"\r\nJVBERi0=\r\n"
        b'--XX\r\nContent-Type: image/png; name="ok.png"\r\n\r\nx\r\n--XX--\r\n'
    )


@pytest.mark.parametrize(
    "content_type",
    [
        b"application/pdf; name*=a.pdf; name*0=b.pdf",  # RFC 2231 pieces that do not join
        b"application/pdf; name*=a.pdf; name*0=b.pdf; x-pad=" + b"a" * 2100,  # compat32 too
        b"application/pdf; name*" + b"1" * 4400 + b"=a",  # a piece number int() refuses
    ],
)
def test_a_content_type_the_email_package_cannot_read_costs_that_part_only(content_type):
    mail = parse_message(invoice_with_part(content_type))
    assert mail.text.strip() == "Please find the invoice."
    assert [a.content_type for a in mail.attachments] == ["application/pdf", "image/png"]


def test_a_too_long_content_disposition_is_named_as_such():
    disposition = b"Content-Disposition: attachment; filename*" + b"1" * 4400 + b"=a\r\n"
    mail = parse_message(invoice_with_part(b"application/pdf", disposition))
    assert [(w.item, w.code) for w in mail.warnings] == [("Content-Disposition", "header_too_long")]
    assert len(mail.attachments) == 2


def test_a_fold_inside_quotes_keeps_its_blank_where_the_message_says_so():
    raw = (
        b"From: a@x.test\r\nContent-Type: multipart/mixed;\r\n"
        b'\tboundary="=_mixed\r\n 0035F5E3C1257A1F_="\r\n\r\n'
        b"--=_mixed 0035F5E3C1257A1F_=\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--=_mixed 0035F5E3C1257A1F_=\r\nContent-Type: application/pdf;\r\n"
        b' name="Quarterly report\r\n 2024.pdf"\r\n\r\nx\r\n--=_mixed 0035F5E3C1257A1F_=--\r\n'
    )
    mail = parse_message(raw)
    assert mail.text.strip() == "hello"
    assert [a.filename for a in mail.attachments] == ["Quarterly report 2024.pdf"]


def test_a_subject_of_alternating_unknown_charsets_costs_linear_time_and_little():
    def subject_mail(words: int) -> bytes:
        subject = "\r\n ".join(f"=?x{n % 2}?q?=E9=E8=F0?=" for n in range(words))
        return f"From: m@evil.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()

    assert_linear(lambda n: parse_message(subject_mail(n)), 2_000)
    assert_linear(lambda n: header_fields(subject_mail(n)), 2_000)  # after a timeout


@pytest.mark.parametrize("shape", ['"', '""', '"a', 'a"', ".,"])
def test_address_headers_the_registry_finds_hard_cost_linear_time(shape):
    def quotes(n: int) -> bytes:
        value = shape * (n // len(shape))
        headers = "".join(f"{name}: {value}\r\n" for name in ("From", "To", "Cc", "Reply-To"))
        return f"{headers}Subject: quotes\r\n\r\nbody\r\n".encode()

    assert_linear(lambda n: parse_message(quotes(n)), 2_000)


@pytest.mark.parametrize(
    "subject, stored",
    [
        (b"=?iso-2022-jp?Q?=1B?= =?iso-2022-jp?Q?=1B?=", "\ufffd\ufffd"),  # escapes, no text
        (b"=?utf-8?q?=01=02?=", "=?utf-8?q?=01=02?="),  # control characters only: as written
    ],
)
def test_a_subject_that_decodes_to_nothing_printable_is_never_lost(subject, stored):
    raw = b"From: a@b.example\r\nSubject: " + subject + b"\r\n\r\nx\r\n"
    assert parse_message(raw).subject == stored
    assert header_fields(raw)[0] == stored
