"""The MIME tree as the email package's modern policy builds it, made safe for strangers' mail.

`POLICY` is `email.policy.default` (header registry, defects recorded) with two changes:
- a boundary that a sender's mailer folded inside its quotes (Outlook 2000 did) is joined
  again before the tree is built, so the parts are found;
- each part's Content-Type and Content-Disposition are read once (`mime_of`), by the header
  registry, and where the registry raises or a header is too long for it, by the compat32
  reading with linear parameter splitting: that header alone falls back, with a warning.
The tree's own questions (content type, boundary) are answered from that reading, so a header
the registry cannot take never stops the parse of the whole mail.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.policy import EmailPolicy, default

from smtpd_ingest.filenames import filename
from smtpd_ingest.headers import HEADER_TOO_LONG, HEADER_UNREADABLE, ParseWarning, describe
from smtpd_ingest.mime_text import header_text, one_line, use_linear_params

MAX_MIME_HEADER_CHARS = 16_384  # a longer Content-Type or -Disposition: the compat32 reading


@dataclass(frozen=True)
class Mime:
    """What a part's Content-Type and Content-Disposition say."""

    content_type: str  # lowercased "maintype/subtype"; the default type if none is given
    params: dict[str, str] = field(default_factory=dict)  # of Content-Type, names lowercased
    disposition: str | None = None  # "inline", "attachment" (lowercased) or None
    filename: str | None = None  # decoded, as the sender wrote it
    warning: ParseWarning | None = None  # the registry could not read one of the headers


def _join_quoted_folds(value: str) -> str:
    """Drop each line break, and the blanks after it, that stands inside quotes: a folded
    quoted parameter (a boundary) means the text without the fold. One pass, linear."""
    out: list[str] = []
    quoted = escaped = skipping = False
    for char in value:
        if skipping:
            if char in " \t":
                continue
            skipping = False
        if quoted and char in "\r\n":
            skipping = True
            continue
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        out.append(char)
    return "".join(out)


class _Policy(EmailPolicy):
    """policy.default, joining folds inside the quotes of a Content-Type."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        """Split a header as policy.default does; join a folded quoted parameter."""
        name, value = super().header_source_parse(sourcelines)
        if len(sourcelines) > 1 and name.strip().lower() == "content-type":
            value = _join_quoted_folds(value)
        return name, value


class PartMessage(EmailMessage):
    """An EmailMessage whose type and boundary come from `mime_of` (never raise)."""

    def get_content_type(self) -> str:
        """The part's type, as `mime_of` read it."""
        return mime_of(self).content_type

    def get_boundary(self, failobj=None):
        """The multipart boundary, as `mime_of` read it."""
        return mime_of(self).params.get("boundary", failobj)


POLICY = _Policy(message_factory=PartMessage)


def mime_of(part: Message) -> Mime:
    """Read a part's Content-Type and -Disposition once (cached on the part)."""
    cached = part.__dict__.get("_postroom_mime")
    if cached is None:
        cached = _read(part)
        part.__dict__["_postroom_mime"] = cached
    return cached


def _first(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.strip().lower() == name:
            return value
    return None


def _read(part: Message) -> Mime:
    raw_type, raw_disposition = _first(part, "content-type"), _first(part, "content-disposition")
    texts = [header_text(v) if v is not None else None for v in (raw_type, raw_disposition)]
    if any(t is not None and len(t) > MAX_MIME_HEADER_CHARS for t in texts):
        longest = max(len(t or "") for t in texts)
        return _compat_read(part, ParseWarning(_label(raw_type), HEADER_TOO_LONG, f"{longest:,}"))
    try:
        return _registry_read(part, *texts)
    except Exception as exc:  # noqa: BLE001 - any failure costs this part's headers only
        return _compat_read(part, ParseWarning(_label(raw_type), HEADER_UNREADABLE, describe(exc)))


def _label(raw_type: str | None) -> str:
    return "Content-Type" if raw_type is not None else "Content-Disposition"


def _default_type(part: Message) -> str:
    return part.get_default_type()


def _registry_read(part: Message, type_text: str | None, disposition_text: str | None) -> Mime:
    params: dict[str, str] = {}
    content_type = _default_type(part)
    names: list[str | None] = []
    if type_text is not None:
        header = default.header_factory("content-type", type_text)
        content_type = one_line(header.content_type).lower() or content_type
        params = {one_line(k).lower(): str(v) for k, v in header.params.items()}
        names.append(params.get("name"))
    disposition = None
    if disposition_text is not None:
        header = default.header_factory("content-disposition", disposition_text)
        disposition = one_line(header.content_disposition or "").lower() or None
        names.insert(0, dict(header.params).get("filename"))
    name = next((n.strip() for n in names if n and n.strip()), None)
    raw_text = (type_text or "") + (disposition_text or "")
    if name is not None and ("\ufffd" in name or "=?" in raw_text or "\\" in raw_text):
        # encoded words and 8-bit bytes: the charset fallback; backslashes as the sender
        # meant them (Windows paths), where the registry reads them as quoting
        name = filename(_compat_view(part))
    if "/" not in content_type:
        content_type = "text/plain"
    return Mime(content_type, params, disposition, name)


def _compat_read(part: Message, warning: ParseWarning) -> Mime:
    """The compat32 reading: parameters split in linear time, 8-bit bytes guessed."""
    view = _compat_view(part)
    if view.get("content-type") is None:
        content_type = _default_type(part)
    else:
        content_type = one_line(Message.get_content_type(view))
    params = {
        one_line(k).lower(): one_line(v if isinstance(v, str) else str(v[2]))
        for k, v in (view.get_params() or [])[1:]
    }
    disposition = view.get_content_disposition()
    return Mime(
        content_type,
        params,
        one_line(disposition) if disposition else None,
        filename(view),
        warning,
    )


def _compat_view(part: Message) -> Message:
    """Copy a part's Content-Type and -Disposition, 8-bit bytes decoded, into a compat32
    Message, whose parameters are split in linear time."""
    _linear_params_in_use()
    view = Message()
    for name, value in part.raw_items():
        if name.strip().lower() in ("content-type", "content-disposition"):
            view[name] = header_text(value)
    return view


@functools.cache
def _linear_params_in_use() -> None:
    """Before the first compat32 reading: the email package's own splitting is quadratic."""
    use_linear_params()
