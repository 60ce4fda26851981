"""parse_message turns any received bytes into a ParsedMail, or says why it cannot."""

from __future__ import annotations

import base64
import dataclasses
import email
import pickle
import re
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smtpd_ingest.parse import (
    Address,
    ParsedAttachment,
    ParsedMail,
    ParseError,
    parse_message,
)

SURROGATE = re.compile("[\ud800-\udfff]")


@pytest.fixture(scope="module")
def corpus_results(corpus_dir: Path, corpus_files) -> dict[str, ParsedMail | Exception]:
    """Parse every corpus mail once; keep the result or the exception it raised."""
    results: dict[str, ParsedMail | Exception] = {}
    for path in corpus_files:
        try:
            results[str(path.relative_to(corpus_dir))] = parse_message(path.read_bytes())
        except Exception as error:  # noqa: BLE001 - the test below reports every kind
            results[str(path.relative_to(corpus_dir))] = error
    return results


def strings_in(value: object):
    """Yield every str inside a ParsedMail, its Addresses and its attachments."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from strings_in(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from strings_in(item)


def mime(headers: str, body: bytes | str = b"") -> bytes:
    """Build a message from header lines (\\n-separated) and a body, with CRLF line ends."""
    if isinstance(body, str):
        body = body.encode()
    head = headers.strip("\n").replace("\n", "\r\n").encode("utf-8")
    return head + b"\r\n\r\n" + body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def with_attachment(disposition: str, data: bytes = b"hello") -> bytes:
    """Build a mail with one base64 attachment under the given Content-Disposition value."""
    encoded = base64.b64encode(data).decode()
    return mime(
        "From: a@sender.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B",
        "--B\nContent-Type: text/plain\n\nSee attached.\n"
        f"--B\nContent-Type: application/octet-stream\nContent-Disposition: {disposition}\n"
        f"Content-Transfer-Encoding: base64\n\n{encoded}\n--B--\n",
    )


# --- the whole corpus --------------------------------------------------------------------


def test_every_corpus_mail_parses_or_is_refused_with_a_reason(corpus_results):
    assert len(corpus_results) >= 600, "the corpus looks incomplete"
    crashed = {
        name: f"{type(r).__name__}: {r}"
        for name, r in corpus_results.items()
        if isinstance(r, Exception) and not isinstance(r, ParseError)
    }
    assert not crashed
    refused = {name: str(r) for name, r in corpus_results.items() if isinstance(r, ParseError)}
    assert all(reason.strip() for reason in refused.values())
    # every corpus mail's structure can be walked: the endless enclosure chain too, whose
    # outer message keeps the chain as one enclosed message (walked no deeper than that)
    assert refused == {}
    endless = corpus_results["flanker/enclosed-endless.eml"]
    assert [a.content_type for a in endless.attachments] == ["message/rfc822"]


def test_no_corpus_parse_leaks_a_surrogate_into_any_text(corpus_results):
    leaking = {
        name: [s[:60] for s in strings_in(result) if SURROGATE.search(s)]
        for name, result in corpus_results.items()
        if isinstance(result, ParsedMail)
    }
    assert not {name: found for name, found in leaking.items() if found}


def test_a_parse_survives_the_trip_to_and_from_a_worker_process(corpus_dir):
    raw = (corpus_dir / "mailparser-js" / "nodemailer.eml").read_bytes()
    mail = parse_message(raw)
    assert pickle.loads(pickle.dumps(mail)) == mail  # noqa: S301 - our own object
    assert parse_message(raw) == mail  # deterministic: generated names, order, flags
    error = ParseError("a reason")
    assert str(pickle.loads(pickle.dumps(error))) == "a reason"  # noqa: S301


def test_outlook_mail_brings_its_attachments(corpus_dir):
    mail = parse_message((corpus_dir / "mail-parser" / "mail_test_7").read_bytes())
    assert mail.subject == "I: Ordine"
    assert mail.from_ is not None and mail.from_.address == "geronazzo@voidstudicom.it"
    assert mail.from_.name == "Mariachiara Geronazzo"
    assert mail.date == datetime(2017, 6, 9, 15, 56, tzinfo=UTC)
    assert mail.text.startswith("Ciao sere mi puoi dire")
    assert "<html" in mail.html
    names = [a.filename for a in mail.attachments]
    assert names[0] == "image001.jpg" and names[-2:] == ["20170609091403417.pdf", "att18831.htm"]
    pdf = mail.attachments[-2]
    assert pdf.content_type == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert not any(a.inline for a in mail.attachments)
    assert not (mail.is_bounce or mail.is_list or mail.auto_submitted)


def test_bounce_is_flagged_and_keeps_its_delivery_report(corpus_dir):
    mail = parse_message((corpus_dir / "flanker" / "bounce" / "mailbox-full.eml").read_bytes())
    assert mail.is_bounce and mail.auto_submitted
    assert "returned to you" in mail.text
    report = [a for a in mail.attachments if a.content_type == "message/delivery-status"]
    assert len(report) == 1 and b"Reporting-Mta: dns; mtain-db01" in report[0].data


def test_enclosed_message_becomes_an_eml_attachment_named_after_its_subject(corpus_dir):
    mail = parse_message((corpus_dir / "flanker" / "enclosed.eml").read_bytes())
    assert mail.subject == "Wow" and mail.text == "Hello\n"
    (enclosed,) = mail.attachments
    assert enclosed.filename == "Thanks!.eml"
    assert enclosed.content_type == "message/rfc822"
    inner = email.message_from_bytes(enclosed.data)
    assert inner["Subject"] == "Thanks!" and inner.is_multipart()


def test_cid_images_are_inline_parts_the_html_refers_to(corpus_dir):
    mail = parse_message((corpus_dir / "mail-parser" / "mail_test_2").read_bytes())
    inline = {a.content_id: a.filename for a in mail.attachments if a.inline}
    assert inline == {"intestazione.jpg": "intestazione.jpg", "logo.jpg": "logometeo.jpg"}
    assert all(f"cid:{cid}" in mail.html for cid in inline)
    (pdf,) = [a for a in mail.attachments if not a.inline]
    assert pdf.filename == "Bollettino.pdf" and pdf.content_id is None


def test_utf8_filename_written_raw_in_the_header_keeps_its_letters(corpus_dir):
    mail = parse_message((corpus_dir / "mail-parser" / "mail_test_1").read_bytes())
    assert [a.filename for a in mail.attachments] == ["ФНС_РФ558.zip"]


# --- headers -----------------------------------------------------------------------------


def test_raw_latin1_subject_and_name_keep_their_letters():
    raw = "From: Jörg Müller <j@sender.test>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode("latin-1")
    mail = parse_message(raw)
    assert mail.subject == "Grüße"
    assert mail.from_ is not None and mail.from_.name == "Jörg Müller"


@pytest.mark.parametrize(
    ("subject", "charset"),
    [
        ("“Quoted” – dash … €5", "cp1252"),
        ("Ça va? Très bien, à bientôt!", "latin-1"),
        ("Zażółć gęślą jaźń", "iso-8859-2"),
        ("Привет мир", "koi8-r"),
        ("Привет мир", "cp1251"),
        ("中文邮件内容", "gb2312"),
        ("日本語のテキスト", "shift_jis"),
        ("Grüße, ФНС", "utf-8"),
    ],
)
def test_unlabelled_8bit_subjects_are_read_in_the_likeliest_charset(subject, charset):
    assert parse_message(b"Subject: " + subject.encode(charset) + b"\r\n\r\n").subject == subject


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?utf-8?Q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
        ("=?utf-8?Q?Gr=FC=DFe?=", "Grüße"),  # declared UTF-8, really Latin-1
        ("=?us-ascii?B?R3L831x=?=", "Grüß\\"),  # declared ASCII, really cp1252, bad padding
        ("=?x-no-such-charset?Q?caf=C3=A9?=", "café"),
        ("=?utf-8?B?w6Rw?= =?utf-8?B?ZmVs?= pie", "äpfel pie"),  # space between words dropped
        ("=?utf-8?B?8J+Y?= =?utf-8?B?gA==?=", "😀"),  # a character split over two words
    ],
)
def test_encoded_words_are_decoded_even_with_a_wrong_charset(header, expected):
    assert parse_message(mime(f"Subject: {header}")).subject == expected


def test_addresses_dates_and_ids_are_read_from_the_headers():
    mail = parse_message(
        mime(
            "From: =?utf-8?Q?Z=C3=B6e?= <  zoe@sender.test  >\n"
            'To: "Team, Agency" <team@agency.test>, bob@agency.test\n'
            "Cc: Carol <carol@agency.test>\n"
            "Reply-To: replies@sender.test\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0200 (CEST)\n"
            "Message-ID: <abc.123@sender.test>\n"
            'In-Reply-To: Your message of "Sun, 31 Dec 2023" <prev@agency.test>\n'
            "References: <one@a.test> <two@b.test>\n <prev@agency.test> <one@a.test>\n"
        )
    )
    assert mail.from_ is not None and (mail.from_.name, mail.from_.address) == (
        "Zöe",
        "zoe@sender.test",
    )
    assert [(a.name, a.address) for a in mail.to] == [
        ("Team, Agency", "team@agency.test"),
        ("", "bob@agency.test"),
    ]
    assert [a.address for a in mail.cc + mail.reply_to] == [
        "carol@agency.test",
        "replies@sender.test",
    ]
    assert mail.date == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    assert mail.message_id == "abc.123@sender.test"
    assert mail.in_reply_to == ("prev@agency.test",)
    assert mail.references == ("one@a.test", "two@b.test", "prev@agency.test")


@pytest.mark.parametrize(
    ("headers", "message_id", "references"),
    [
        ("Message-ID: abc@x.test\nReferences: a@x.test b@y", "abc@x.test", ("a@x.test", "b@y")),
        ("Message-ID: <>\nReferences: <>, nonsense", None, ()),
        ("References: <broken@x.test", None, ("broken@x.test",)),
        ("Subject: no ids at all", None, ()),
    ],
)
def test_ids_without_brackets_or_with_garbage_are_tolerated(headers, message_id, references):
    mail = parse_message(mime(headers))
    assert (mail.message_id, mail.references) == (message_id, references)


@pytest.mark.parametrize("date", ["", "Date: yesterday", "Date: Mon, 45 Foo 2024 99:00:00 +9999"])
def test_a_missing_or_unreadable_date_is_none(date):
    assert parse_message(mime(f"Subject: x\n{date}".strip())).date is None


def test_a_date_without_a_known_zone_is_taken_as_utc():
    mail = parse_message(mime("Date: Mon, 1 Jan 2024 10:00:00 -0000"))
    assert mail.date == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "auto", "is_list"),
    [
        ("Auto-Submitted: auto-replied", True, False),
        ("Auto-Submitted: no", False, False),
        ("Auto-Submitted: No ; comment", False, False),
        ("X-Autoreply: yes", True, False),
        ("X-Autorespond: Out of office", True, False),
        ("Precedence: auto_reply", True, False),
        ("Precedence: bulk", False, True),
        ("Precedence: list", False, True),
        ("List-Id: News <news.agency.test>", False, True),
        ("Subject: a person wrote this", False, False),
    ],
)
def test_automatic_and_list_mail_is_flagged(headers, auto, is_list):
    mail = parse_message(mime(headers))
    assert (mail.auto_submitted, mail.is_list, mail.is_bounce) == (auto, is_list, False)


# --- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["us-ascii", "utf-8", "x-unknown", None])
def test_a_mislabelled_body_keeps_its_letters(declared):
    charset = f"; charset={declared}" if declared else ""
    body = "Schöne Grüße aus Köln, à bientôt".encode("latin-1")
    mail = parse_message(mime(f"Content-Type: text/plain{charset}", body))
    assert mail.text == "Schöne Grüße aus Köln, à bientôt"


def test_a_latin1_label_on_utf8_bytes_is_read_as_utf8():
    body = "Grüße".encode()
    mail = parse_message(mime("Content-Type: text/plain; charset=iso-8859-1", body))
    assert mail.text == "Grüße"


def test_html_without_a_charset_parameter_uses_its_meta_tag():
    body = '<html><head><meta charset="koi8-r"></head><body>Привет</body></html>'
    mail = parse_message(mime("Content-Type: text/html", body.encode("koi8-r")))
    assert "Привет" in mail.html


def test_plain_and_html_alternatives_both_arrive_and_stray_utf8_bytes_survive():
    utf8_with_a_latin1_word = "Grüße – ".encode() + "Müller".encode("latin-1")
    body = (
        b"--A\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + utf8_with_a_latin1_word
        + b"\n--A\nContent-Type: text/html; charset=utf-8\n\n<p>Hi</p>\n--A--\n"
    )
    mail = parse_message(
        mime("MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=A", body)
    )
    assert mail.text == "Grüße – Müller"  # the line break before a boundary belongs to it
    assert mail.html == "<p>Hi</p>"
    assert mail.attachments == ()


def test_stdlib_defects_are_listed_by_class_name():
    mail = parse_message(mime("Content-Type: multipart/mixed", "no boundary here"))
    assert "NoBoundaryInMultipartDefect" in mail.defects
    assert mail.text == "no boundary here"


# --- attachments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "safe", "original"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd", "../../etc/passwd"),
        ('attachment; filename="C:\\evil\\x.exe"', "x.exe", "C:\\evil\\x.exe"),
        ("attachment; filename*=utf-8''a%00b%07%0Ac.txt", "abc.txt", "a b c.txt"),
        ('attachment; filename=".htaccess"', "htaccess", ".htaccess"),
        ("attachment; filename*=utf-8''%E2%80%AEgnp.exe", "gnp.exe", "\u202egnp.exe"),
        ('attachment; filename="=?utf-8?Q?Pr=C3=BCfung.pdf?="', "Prüfung.pdf", "Prüfung.pdf"),
    ],
)
def test_attachment_filenames_are_made_safe(disposition, safe, original):
    (attachment,) = parse_message(with_attachment(disposition)).attachments
    assert (attachment.filename, attachment.original_filename) == (safe, original)
    assert attachment.data == b"hello"


def test_a_500_character_filename_is_shortened_keeping_its_extension():
    name = "x" * 500 + ".pdf"
    (attachment,) = parse_message(with_attachment(f'attachment; filename="{name}"')).attachments
    assert attachment.filename == "x" * 146 + ".pdf"
    assert attachment.original_filename == name


def test_nameless_attachments_get_numbered_names_from_their_type():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    parts = "".join(
        f"--B\nContent-Type: {ctype}\n{extra}Content-Transfer-Encoding: base64\n\n{png}\n"
        for ctype, extra in [
            ("image/png", "Content-ID: <logo@x.test>\n"),
            ("image/png", 'Content-Disposition: attachment; filename=".."\n'),
            ("application/x-unheard-of", ""),
        ]
    )
    mail = parse_message(mime("Content-Type: multipart/mixed; boundary=B", parts + "--B--\n"))
    assert [(a.filename, a.inline, a.content_id) for a in mail.attachments] == [
        ("attachment.png", True, "logo@x.test"),
        ("attachment-2.png", False, None),
        ("attachment-3.bin", False, None),
    ]


# --- TNEF --------------------------------------------------------------------------------


def tnef_attribute(level: int, attribute: int, kind: int, data: bytes) -> bytes:
    """Encode one TNEF attribute: level, id, type, length, data, checksum ([MS-OXTNEF])."""
    header = struct.pack("<BHHI", level, attribute, kind, len(data))
    return header + data + struct.pack("<H", sum(data) & 0xFFFF)


def winmail_dat() -> bytes:
    """Build a TNEF blob with a body and one file (tnefparse ships no sample to use)."""
    message, attachment = 1, 2
    return b"".join(
        [
            struct.pack("<IH", 0x223E9F78, 1),  # signature, key
            tnef_attribute(message, 0x9006, 0x0008, struct.pack("<I", 0x10000)),  # version
            tnef_attribute(message, 0x9007, 0x0006, struct.pack("<II", 1252, 0)),  # code page
            tnef_attribute(message, 0x800C, 0x0002, "Grüße aus Outlook\x00".encode("cp1252")),
            tnef_attribute(attachment, 0x9002, 0x0006, bytes(14)),  # starts an attachment
            tnef_attribute(attachment, 0x8010, 0x0001, b"report.txt\x00"),  # its title
            tnef_attribute(attachment, 0x800F, 0x0006, b"quarterly numbers"),  # its data
        ]
    )


def mail_with_winmail(blob: bytes) -> bytes:
    """Wrap a winmail.dat blob in a mail the way Outlook sends it."""
    return mime(
        "From: a@sender.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B",
        "--B\nContent-Type: application/ms-tnef; name=winmail.dat\n"
        "Content-Disposition: attachment; filename=winmail.dat\n"
        f"Content-Transfer-Encoding: base64\n\n{base64.b64encode(blob).decode()}\n--B--\n",
    )


def test_winmail_dat_is_unpacked_into_its_files_and_body():
    mail = parse_message(mail_with_winmail(winmail_dat()))
    assert mail.text == "Grüße aus Outlook"
    assert mail.attachments == (
        ParsedAttachment("report.txt", "report.txt", "text/plain", b"quarterly numbers"),
    )


def test_a_winmail_dat_that_cannot_be_unpacked_is_kept_as_it_is():
    mail = parse_message(mail_with_winmail(b"this is not TNEF"))
    (kept,) = mail.attachments
    assert (kept.filename, kept.content_type, kept.data) == (
        "winmail.dat",
        "application/ms-tnef",
        b"this is not TNEF",
    )


# --- damaged mail --------------------------------------------------------------------------


def test_a_truncated_mail_is_still_parsed():
    raw = mime(
        'From: a@sender.test\nContent-Type: multipart/mixed; boundary="outer"',
        "--outer\nContent-Type: text/plain\n\nFoo\n--outer\n"
        'Content-Type: multipart/alternative; boundary="inner"\n\n--inn',
    )
    assert parse_message(raw).text.startswith("Foo")


def test_a_broken_encoded_word_is_kept_as_written():
    raw = mime("From: =?UTF-8?B?R*9vLCBCYXI=?= <foo.bar@sender.test>")
    mail = parse_message(raw)
    assert mail.from_ == Address("=?UTF-8?B?R*9vLCBCYXI=?=", "foo.bar@sender.test")


def test_a_forwarded_message_with_a_broken_multipart_keeps_its_bytes():
    inner = (
        b'Subject: inner\nContent-Type: multipart/mixed; boundary="nowhere"\n\n'
        b"Gr\xfc\xdfe, but no parts\n"
    )
    raw = mime(
        "Content-Type: multipart/mixed; boundary=B",
        b"--B\nContent-Type: message/rfc822\n\n" + inner + b"--B--\n",
    )
    (enclosed,) = parse_message(raw).attachments
    assert enclosed.filename == "inner.eml"
    assert b"Gr\xfc\xdfe, but no parts" in enclosed.data


# --- limits ------------------------------------------------------------------------------


def nested(levels: int) -> bytes:
    """Build a mail of multipart/mixed parts nested the given number of levels deep."""
    opens = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(1, levels)
    )
    closes = "".join(f"\n--b{i}--" for i in reversed(range(levels)))
    return mime(
        'From: a@sender.test\nContent-Type: multipart/mixed; boundary="b0"',
        "--b0\n" + opens + "Content-Type: text/plain\n\nbottom" + closes,
    )


def test_nesting_up_to_the_limit_is_parsed():
    assert parse_message(nested(50)).text == "bottom"


def test_nesting_deeper_than_50_levels_costs_only_the_parts_below_the_limit():
    mail = parse_message(nested(60))
    assert mail.text == "" and mail.from_ == Address("", "a@sender.test")
    assert [(w.item, w.code) for w in mail.warnings] == [("MIME", "nested_too_deep")]


def test_nesting_thousands_of_levels_deep_is_read_down_to_the_limit():
    mail = parse_message(b"Subject: deep\n" + nested(3000))
    assert (mail.subject, mail.from_) == ("deep", Address("", "a@sender.test"))
    assert [(w.item, w.code) for w in mail.warnings] == [("MIME", "nested_too_deep")]


def test_more_parts_than_the_package_may_build_are_refused_with_sender_and_subject():
    parts = "".join("--B\n\n" for _ in range(10_001))
    raw = mime(
        "Subject: many\nFrom: a@sender.test\nContent-Type: multipart/mixed; boundary=B", parts
    )
    with pytest.raises(ParseError, match="more than 10,000 MIME parts") as refused:
        parse_message(raw)
    assert refused.value.subject == "many"
    assert refused.value.sender == Address("", "a@sender.test")
    assert pickle.loads(pickle.dumps(refused.value)).subject == "many"  # noqa: S301


def test_parts_beyond_1000_are_left_to_the_raw_message_with_a_warning():
    parts = "".join(f"--B\nContent-Type: text/plain\n\npart {i}\n" for i in range(1500))
    raw = mime("Content-Type: multipart/mixed; boundary=B", parts + "--B--\n")
    mail = parse_message(raw)
    assert mail.text.split("\n")[:2] == ["part 0", "part 1"]
    assert "part 998" in mail.text and "part 999" not in mail.text  # 1000 with the container
    assert [(w.item, w.code) for w in mail.warnings] == [("MIME", "too_many_parts")]


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 50, b"no headers, just text"])
def test_input_that_is_not_a_mail_still_parses(raw):
    assert isinstance(parse_message(raw), ParsedMail)
