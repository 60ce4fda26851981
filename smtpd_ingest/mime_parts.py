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
from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.policy import EmailPolicy, default

from smtpd_ingest import plain_headers
from smtpd_ingest.filenames import filename
from smtpd_ingest.headers import HEADER_TOO_LONG, HEADER_UNREADABLE, ParseWarning, describe
from smtpd_ingest.mime_text import header_text, one_line, parse_params, use_linear_params

# The registry's parser splits the rest of a header again at every token: its time grows
# with the square of a header's length (16 KB of "; a=b" took 0.15 s; 3.9 KB of comments in
# a Content-Transfer-Encoding 76 ms).
MAX_MIME_HEADER_CHARS = 2048  # a longer Content-Type or -Disposition: the compat32 reading
MIME_BUDGET_CHARS = 32_768  # of such headers per mail read by the registry; the rest: compat32
MAX_FETCH_CHARS = 1024  # any other header longer than this is handed out as plain text


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


MAX_BUILT_PARTS = 10_000  # parts the email package may build of one mail (walked: 1,000)
MAX_BUILT_DEPTH = 50  # a multipart deeper than this is not split: its parts are not walked
MAX_FOLD_CHECKS = 8  # folded quoted boundaries per mail looked up in the raw message


class Budget:
    """What one parse may still spend: characters of MIME headers for the header registry,
    and looks into the raw message for a folded boundary (each reads the whole message)."""

    def __init__(self, raw: bytes = b"", chars: int = MIME_BUDGET_CHARS) -> None:
        self.raw = raw
        self.chars = chars
        self.fold_checks = MAX_FOLD_CHECKS


class _Policy(EmailPolicy):
    """policy.default, joining folds inside the quotes of a Content-Type, handing out a long
    header as plain text (never to the registry), with one Budget per parse (`for_one_mail`)."""

    budget: Budget | None = None

    def for_one_mail(self, raw: bytes) -> _Policy:
        """A copy of this policy with a fresh Budget, for one parse of `raw`."""
        return self.clone(budget=Budget(raw))

    def header_fetch_parse(self, name: str, value: str):
        """The registry's header object; for a value too long for it, the plain text; for
        Content-Transfer-Encoding (read for every part's payload) its first word."""
        if hasattr(value, "name"):
            return value
        if name.strip().lower() == "content-transfer-encoding":
            words = header_text(value).split(None, 1)
            return one_line(words[0]).lower() if words else ""
        if len(value) <= MAX_FETCH_CHARS:
            return super().header_fetch_parse(name, value)
        return one_line(header_text(value))

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        """Split a header as policy.default does. A Content-Type folded inside its quotes is
        unfolded as the RFC says (the line break goes, the blank stays), unless its boundary
        then is not in the message and the boundary without the blank is (Outlook 2000)."""
        name, value = super().header_source_parse(sourcelines)
        if len(sourcelines) > 1 and name.strip().lower() == "content-type" and self.budget:
            joined = _join_quoted_folds(value)
            if joined != value and self.budget.fold_checks > 0:
                self.budget.fold_checks -= 1
                if _delimits(joined, self.budget.raw) and not _delimits(value, self.budget.raw):
                    value = joined
        return name, value


def _delimits(value: str, raw: bytes) -> bool:
    """Tell whether the boundary of a Content-Type value (unfolded) starts a line of raw."""
    view = _compat_view_of([("content-type", "".join(value.splitlines()))])
    try:
        boundary = view.get_boundary()
    except Exception:  # noqa: BLE001 - no boundary to look for
        return False
    if not boundary:
        return False
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    return b"\n" + delimiter in raw or raw.startswith(delimiter)


class PartMessage(EmailMessage):
    """An EmailMessage whose type and boundary come from `mime_of` (never raise)."""

    def get_content_type(self) -> str:
        """The part's type, as `mime_of` read it."""
        return mime_of(self).content_type

    def get_boundary(self, failobj=None):
        """The multipart boundary, as `mime_of` read it; none deeper than MAX_BUILT_DEPTH,
        where the email package would test every line against every enclosing boundary."""
        if self.__dict__.get("_postroom_depth", 0) >= MAX_BUILT_DEPTH:
            return failobj
        return mime_of(self).params.get("boundary", failobj)


class TooManyParts(Exception):
    """The mail has more MIME parts than the email package may build of it."""


class BoundedFeedParser(BytesFeedParser):
    """The email package's feed parser, building at most MAX_BUILT_PARTS parts (each costs
    time and memory: 25 MB of empty parts would be 3 million) and noting each part's depth."""

    def __init__(self, policy: EmailPolicy) -> None:
        super().__init__(policy=policy)
        self.built = 0

    def _new_message(self) -> None:
        self.built += 1
        if self.built > MAX_BUILT_PARTS:
            raise TooManyParts(f"the mail has more than {MAX_BUILT_PARTS:,} MIME parts")
        super()._new_message()
        self._cur.__dict__["_postroom_depth"] = len(self._msgstack) - 1


def build_tree(raw: bytes) -> EmailMessage:
    """The MIME tree of raw, by the email package with POLICY and within its bounds; raises
    what the email package raises, and TooManyParts."""
    parser = BoundedFeedParser(POLICY.for_one_mail(raw))
    parser.feed(raw)
    return parser.close()


POLICY = _Policy(message_factory=PartMessage)


def mime_of(part: Message) -> Mime:
    """Read a part's Content-Type and -Disposition once (cached on the part); never raises:
    the feedparser asks while it builds the tree."""
    cached = part.__dict__.get("_postroom_mime")
    if cached is None:
        try:
            cached = _read(part)
        except Exception as exc:  # noqa: BLE001 - any failure costs this part's headers only
            item = "Content-Type" if _first(part, "content-type") else "Content-Disposition"
            warning = ParseWarning(item, HEADER_UNREADABLE, describe(exc))
            cached = Mime(part.get_default_type(), {}, None, None, warning)
        part.__dict__["_postroom_mime"] = cached
    return cached


_BARE: dict[str, Mime] = {}  # the reading of a part without either header, by default type


def _first(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.strip().lower() == name:
            return value
    return None


def _read(part: Message) -> Mime:
    raw_type, raw_disposition = _first(part, "content-type"), _first(part, "content-disposition")
    if raw_type is None and raw_disposition is None:  # one shared reading: parts can be many
        default_type = part.get_default_type()
        return _BARE.setdefault(default_type, Mime(default_type))
    texts = [header_text(v) if v is not None else None for v in (raw_type, raw_disposition)]
    for label, text in zip(("Content-Type", "Content-Disposition"), texts, strict=True):
        if text is not None and len(text) > MAX_MIME_HEADER_CHARS:
            warning = ParseWarning(label, HEADER_TOO_LONG, f"{len(text):,} characters")
            return _compat_read(part, warning)
    try:
        read = _registry_fields(*texts, getattr(part.policy, "budget", None))
    except Exception as exc:  # noqa: BLE001 - any failure costs this part's headers only
        label = "Content-Type" if raw_type is not None else "Content-Disposition"
        return _compat_read(part, ParseWarning(label, HEADER_UNREADABLE, describe(exc)))
    if read is None:  # a mail of very many parts: the rest read as before the registry
        return _compat_read(part, None)
    content_type, params, disposition, name = read
    if name is not None and any(
        mark in text for text in texts if text for mark in ("=?", "\\", "\ufffd")
    ):
        # encoded words and 8-bit bytes: the charset fallback; backslashes as the sender
        # meant them (Windows paths), where the registry reads them as quoting
        name = filename(_compat_view(part))
    return Mime(content_type or part.get_default_type(), dict(params), disposition, name)


_Fields = tuple[str | None, tuple[tuple[str, str], ...], str | None, str | None]


def _registry_fields(
    type_text: str | None, disposition_text: str | None, budget: Budget | None
) -> _Fields | None:
    """What the registry reads of a Content-Type and -Disposition: type (None: the part's
    default), parameters, disposition, file name. The same header texts come again and again
    ("text/plain; charset=utf-8"): they are read once (`_remembered`) and cost no budget
    then; new ones spend the mail's budget, and None says it is spent."""
    key = (type_text, disposition_text)
    found = _REMEMBERED.get(key)
    if found is not None:
        return found
    if budget is not None:
        budget.chars -= len(type_text or "") + len(disposition_text or "")
        if budget.chars < 0:
            return None
    found = _read_fields(type_text, disposition_text)
    if len(_REMEMBERED) >= MAX_REMEMBERED:
        _REMEMBERED.pop(next(iter(_REMEMBERED)))
    _REMEMBERED[key] = found
    return found


MAX_REMEMBERED = 1024  # header pairs (each at most 2 × MAX_MIME_HEADER_CHARS) kept, oldest out
_REMEMBERED: dict[tuple[str | None, str | None], _Fields] = {}


def _read_fields(type_text: str | None, disposition_text: str | None) -> _Fields:
    content_type, params, names = None, {}, []
    if type_text is not None:
        content_type, params = plain_headers.content_type(type_text) or _registry(
            "content-type", type_text
        )
        names.append(params.get("name"))
    disposition = None
    if disposition_text is not None:
        disposition, disposition_params = plain_headers.disposition(disposition_text) or _registry(
            "content-disposition", disposition_text
        )
        names.insert(0, disposition_params.get("filename"))
    name = next((n.strip() for n in names if n and n.strip()), None)
    if content_type is not None and "/" not in content_type:
        content_type = "text/plain"
    return content_type, tuple(params.items()), disposition, name


def _registry(name: str, text: str) -> tuple[str | None, dict[str, str]]:
    """The registry's reading of a Content-Type or -Disposition: (value, parameters)."""
    header = _HEADER_CLASSES[name](name, text)
    value = header.content_type if name == "content-type" else header.content_disposition
    params = {one_line(k).lower(): str(v) for k, v in header.params.items()}
    return one_line(value or "").lower() or None, params


# The registry makes a new class for every header it reads (HeaderRegistry.__getitem__); the
# two read for every part are made once.
_HEADER_CLASSES = {
    name: default.header_factory[name] for name in ("content-type", "content-disposition")
}


def _compat_read(part: Message, warning: ParseWarning | None) -> Mime:
    """The compat32 reading: parameters split in linear time, 8-bit bytes guessed."""
    view = _compat_view(part)
    if view.get("content-type") is None:
        content_type = part.get_default_type()
    else:
        content_type = one_line(Message.get_content_type(view))
    try:
        found = [(k, v if isinstance(v, str) else str(v[2])) for k, v in view.get_params() or []]
    except Exception:  # noqa: BLE001 - RFC 2231 pieces the email package cannot put together
        text = view.get("content-type") or ""
        found = [(*p.partition("=")[::2],) for p in parse_params(text)]
        found = [(k, v.strip().strip('"')) for k, v in found]
    params = {one_line(k).lower(): one_line(v) for k, v in found[1:]}
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
    return _compat_view_of(part.raw_items())


def _compat_view_of(headers) -> Message:
    """A compat32 Message of the Content-Type and -Disposition among (name, raw value)
    pairs, 8-bit bytes decoded."""
    _linear_params_in_use()
    view = Message()
    for name, value in headers:
        if name.strip().lower() in ("content-type", "content-disposition"):
            view[name] = header_text(value)
    return view


@functools.cache
def _linear_params_in_use() -> None:
    """Before the first compat32 reading: the email package's own splitting is quadratic."""
    use_linear_params()
