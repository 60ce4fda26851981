"""Unpack Outlook winmail.dat (TNEF) attachments with tnefparse."""

from __future__ import annotations

from dataclasses import dataclass

from tnefparse import TNEF

from smtpd_ingest.mime_text import decode_bytes, scrub

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})


@dataclass(frozen=True)
class TnefContent:
    files: tuple[tuple[str, bytes], ...]  # (decoded name, may be empty; data)
    text: str = ""
    html: str = ""


def is_tnef(content_type: str, filename: str | None) -> bool:
    """Tell whether a MIME part is a TNEF blob by its type or its winmail.dat name."""
    return content_type in TNEF_TYPES or (filename or "").strip().lower() == "winmail.dat"


def unpack_tnef(data: bytes) -> TnefContent | None:
    """Return the files and body inside a TNEF blob, or None if it cannot be unpacked."""
    try:
        tnef = TNEF(data, do_checksum=False)
        codepage = tnef.codepage
        files = tuple(
            (_name(attachment, codepage), bytes(attachment.data))
            for attachment in tnef.attachments
            if isinstance(attachment.data, bytes | bytearray)
        )
        files = tuple((name, blob) for name, blob in files if name or blob)
        text = _text(tnef.body, codepage)
        html = _text(tnef.htmlbody, codepage)
    except Exception:  # noqa: BLE001 - tnefparse raises anything on damaged input
        return None
    if not files and not text and not html:
        return None
    return TnefContent(files=files, text=text, html=html)


def _name(attachment: object, codepage: str | None) -> str:
    """Return a TNEF attachment's long filename, else its short one, decoded."""
    try:
        name = attachment.long_filename()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - short names are decoded as strict UTF-8 by tnefparse
        name = getattr(attachment, "_name", b"")
    return _text(name, codepage).strip()


def _text(value: object, codepage: str | None) -> str:
    """Return a TNEF string property as text, whether tnefparse left it as bytes or str."""
    if isinstance(value, bytes | bytearray):
        return decode_bytes(bytes(value).rstrip(b"\x00"), codepage)
    if isinstance(value, str):
        return scrub(value.rstrip("\x00"))
    return ""
