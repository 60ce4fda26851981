"""The mail of bench/parse.py: generated from a seed, the same bytes in every run.

typical_mail: about 10 KB, multipart/mixed of text and HTML alternatives (quoted-printable UTF-8)
and a small PNG, a German subject and names in encoded words, a few To and Cc, a DKIM signature
and Received lines. big_mail: about 14 MB on the wire, text, HTML, three photos and a PDF, base64.
crowded_mail: a To of 300 addresses (a third in encoded words) and a References of 80 ids.
"""

from __future__ import annotations

import base64
import quopri
import random
import struct
import zlib
from pathlib import Path

SEED = 16
TYPICAL_SIZE = 10 * 1024
BIG_SIZE = 14_000_000
WORDS = (
    "Angebot Lieferung Rechnung Größe Maße Rückfrage Bestellung Übergabe Termin Woche Straße "
    "Zusammenfassung Entwurf Änderung Startseite Kontaktformular Bilder Texte Impressum "
    "Datenschutz Freigabe bitte danke gerne schon noch morgen heute nächste über für mit und "
    "oder aber wir Sie Ihnen unsere Ihre neue alte große kleine schöne prüfen schicken ändern "
    "einbauen hochladen ersetzen besprechen"
)


def sentences(rng: random.Random, count: int) -> list[str]:
    """German-looking sentences of 8-16 words (umlauts and ß included)."""
    words = WORDS.split()
    return [
        _capitalised(" ".join(rng.choice(words) for _ in range(rng.randint(8, 16)))) + "."
        for _ in range(count)
    ]


def _capitalised(text: str) -> str:
    """The text with its first letter upper case (str.capitalize lowers the nouns)."""
    return text[:1].upper() + text[1:]


def png(rng: random.Random, width: int = 64, height: int = 48) -> bytes:
    """A real PNG of a few KB: blocks of colour with some noise, like a small screenshot."""
    colours = [bytes(rng.randrange(256) for _ in range(3)) for _ in range(6)]
    rows = b"".join(
        b"\x00"
        + b"".join(
            rng.randbytes(3) if rng.random() < 0.2 else colours[(x // 8 + y // 8 * 3) % 6]
            for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        """Length, type, data and CRC of one PNG chunk."""
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def jpeg_like(rng: random.Random, size: int) -> bytes:
    """A JPEG's frame around random bytes (compressed image data looks random)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + (
        rng.randbytes(size - 22) + b"\xff\xd9"
    )


def pdf_like(rng: random.Random, size: int) -> bytes:
    """A PDF's frame around deflate-looking streams of random bytes, `size` bytes in all."""
    parts, number = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"], 1
    tail = b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 >>\nstartxref\n0\n%%EOF\n"
    left = size - len(parts[0]) - len(tail)
    while left > 0:
        head = f"{number} 0 obj\n<< /Length {{}} /Filter /FlateDecode >>\nstream\n"
        foot = b"\nendstream\nendobj\n"
        length = max(1, min(512 * 1024, left - len(head) - len(foot) - 8))
        block = head.format(length).encode() + rng.randbytes(length) + foot
        parts.append(block[:left])
        left -= len(parts[-1])
        number += 1
    return b"".join(parts) + tail


def base64_lines(data: bytes) -> str:
    """Base64 in lines of 76, as mail carries it."""
    return base64.encodebytes(data).decode("ascii")


def qp(text: str) -> str:
    """UTF-8 text in quoted-printable."""
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def html_of(paragraphs: list[str]) -> str:
    """A mail client's HTML for the paragraphs: a styled table layout."""
    cells = "\n".join(
        f'<tr><td style="padding:4px 0;font-family:Arial,sans-serif;font-size:14px">{p}</td></tr>'
        for p in paragraphs
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>p{margin:0}</style></head>\n'
        '<body><table role="presentation" width="100%" cellpadding="0" cellspacing="0">\n'
        f"{cells}\n</table>\n"
        '<p style="color:#888">Mit freundlichen Grüßen<br>Anna Müller<br>'
        '<a href="https://example.de/">example.de</a></p>\n</body></html>\n'
    )


def head(rng: random.Random, number: int, extra: str = "") -> str:
    """The header block of a reply from a German customer, as it arrives at the inbox."""
    signature = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for _ in range(344)
    )
    folded = "\n\t".join(signature[i : i + 70] for i in range(0, len(signature), 70))
    return (
        "Return-Path: <anna.mueller@example.de>\n"
        "Received: from mail.example.de (mail.example.de [192.0.2.10])\n"
        "\tby mx.in.example (Postfix) with ESMTPS id 4QxY2k0c7Zz9sSX\n"
        "\tfor <inbox+1.abc@in.example>; Sun, 6 Dec 2026 16:02:11 +0100 (CET)\n"
        "Received: from [10.0.0.23] (p5b2c3d4e.dip0.t-ipconnect.de [91.44.61.78])\n"
        "\tby mail.example.de (Postfix) with ESMTPSA id 9C1A2B3C4D\n"
        "\tfor <support@in.example>; Sun, 6 Dec 2026 16:02:10 +0100 (CET)\n"
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.de; s=mail;\n"
        "\tt=1796569330; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
        f"\th=From:To:Cc:Subject:Date:From; b={folded}\n"
        "From: =?UTF-8?Q?Anna_M=C3=BCller?= <anna.mueller@example.de>\n"
        "To: Support <support@in.example>,\n"
        " =?UTF-8?Q?J=C3=BCrgen_Wei=C3=9F?= <juergen.weiss@example.com>\n"
        "Cc: =?UTF-8?B?QsOkcmJlbCBHcsO8bmVy?= <baerbel.gruener@example.de>,\n"
        ' team@example.de, "Otto Normal" <otto@example.org>\n'
        "Subject: =?UTF-8?Q?AW:_R=C3=BCckfrage_zur_Gr=C3=B6=C3=9Fe_der_Bilder_auf?=\n"
        " =?UTF-8?Q?_der_Startseite_=E2=80=93_Bestellung_4711?=\n"
        "Date: Sun, 6 Dec 2026 16:02:09 +0100\n"
        f"Message-ID: <{number}.{rng.randrange(10**9)}@mail.example.de>\n"
        "In-Reply-To: <4711.1796560000@in.example>\n"
        "References: <4711.1796500000@in.example>\n <4711.1796560000@in.example>\n"
        f"{extra}"
        "MIME-Version: 1.0\n"
        "User-Agent: Mozilla Thunderbird\n"
        "Content-Language: de-DE\n"
    )


def alternative(text: str, html: str, boundary: str) -> str:
    """A multipart/alternative entity of the text and the HTML, both quoted-printable."""
    return (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
        f"--{boundary}\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"
        f"{qp(text)}\n"
        f"--{boundary}\n"
        "Content-Type: text/html; charset=UTF-8\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"
        f"{qp(html)}\n"
        f"--{boundary}--\n"
    )


def attachment(ctype: str, name_params: str, data: bytes) -> str:
    """One base64 attachment entity (name_params: the filename parameter(s), written out)."""
    return (
        f"Content-Type: {ctype}\n"
        f"Content-Disposition: attachment;{name_params}\n"
        "Content-Transfer-Encoding: base64\n\n"
        f"{base64_lines(data)}"
    )


def mixed(header: str, entities: list[str], boundary: str) -> bytes:
    """A multipart/mixed message of the entities, with CRLF line ends as on the wire."""
    body = "".join(f"--{boundary}\n{entity}\n" for entity in entities)
    text = (
        f'{header}Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
        "This is a multi-part message in MIME format.\n"
        f"{body}--{boundary}--\n"
    )
    return text.replace("\n", "\r\n").encode("ascii")


def typical_mail(seed: int = SEED, size: int = TYPICAL_SIZE) -> bytes:
    """About `size` bytes: text and HTML alternatives and a small PNG, as most mail arrives."""
    paragraphs = 1
    while True:
        rng = random.Random(seed)
        text_paragraphs = [" ".join(sentences(rng, 3)) for _ in range(paragraphs)]
        text = "Hallo Jürgen,\n\n" + "\n\n".join(text_paragraphs) + "\n\nViele Grüße\nAnna\n"
        entities = [
            alternative(text, html_of(text_paragraphs), "------------alt0E3C5B7D9F"),
            attachment('image/png; name="Lageplan.png"', ' filename="Lageplan.png"', png(rng)),
        ]
        raw = mixed(head(rng, 1), entities, "------------mix1A2B3C4D5E")
        if len(raw) >= size:
            return raw
        paragraphs += 1


def big_mail(seed: int = SEED, size: int = BIG_SIZE) -> bytes:
    """About `size` bytes: text, HTML, a big PDF and three photos, base64 as on the wire."""
    rng = random.Random(seed)
    header = head(rng, 2)
    paragraphs = [" ".join(sentences(rng, 4)) for _ in range(12)]
    text = "Hallo Jürgen,\n\n" + "\n\n".join(paragraphs) + "\n\nViele Grüße\nAnna\n"
    entities = [alternative(text, html_of(paragraphs * 8), "------------alt0E3C5B7D9F")]
    for number in range(1, 4):
        name = f"Foto_Baustelle_{number}.jpg"
        photo = jpeg_like(rng, 250_000 + rng.randrange(50_000))
        entities.append(attachment(f'image/jpeg; name="{name}"', f' filename="{name}"', photo))
    pdf_name = "\n filename*=UTF-8''Pr%C3%A4sentation%20Relaunch%20Q3%202026.pdf"
    boundary = "------------mix1A2B3C4D5E"
    without_pdf = len(
        mixed(header, [*entities, attachment("application/pdf", pdf_name, b"")], boundary)
    )
    pdf_size = max(1, (size - without_pdf) * 57 // 78)  # 57 bytes in a base64 line of 78
    entities.append(attachment("application/pdf", pdf_name, pdf_like(rng, pdf_size)))
    return mixed(header, entities, boundary)


def crowded_mail(seed: int = SEED, recipients: int = 300, references: int = 80) -> bytes:
    """A newsletter-ish mail: a To of `recipients` addresses, a long References, short text."""
    rng = random.Random(seed)
    people = []
    for number in range(recipients):
        address = f"kunde{number}@firma{number % 37}.example"
        if number % 3 == 0:
            name = f"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller_{number}?="
        elif number % 3 == 1:
            name = f'"Schmidt, Eva {number}"'
        else:
            name = ""
        people.append(f"{name} <{address}>" if name else address)
    ids = [f"<{rng.randrange(10**12)}.{n}@lists.example.org>" for n in range(references)]
    header = head(rng, 3).replace(
        "To: Support <support@in.example>,\n",
        "To: " + ",\n ".join(people) + ",\n Support <support@in.example>,\n",
    )
    header = header.replace(
        "References: <4711.1796500000@in.example>\n <4711.1796560000@in.example>\n",
        "References: " + "\n ".join(ids) + "\n",
    )
    text = "\n\n".join(" ".join(sentences(rng, 3)) for _ in range(5))
    body = (
        "Content-Type: text/plain; charset=UTF-8\n"
        f"Content-Transfer-Encoding: quoted-printable\n\n{qp(text)}\n"
    )
    return (header + body).replace("\n", "\r\n").encode("ascii")


def write_inputs(folder: Path, big_size: int) -> dict[str, Path]:
    """Write every input mail into folder; return name -> path."""
    mails = {
        "typical": typical_mail(),
        "crowded": crowded_mail(),
        "big": big_mail(size=big_size),
    }
    paths = {}
    for name, raw in mails.items():
        paths[name] = folder / f"{name}.eml"
        paths[name].write_bytes(raw)
    return paths
