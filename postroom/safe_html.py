"""Received HTML made safe once, when it is filed, and shown cheaply on every view.

Filing (inside the bounded parse stage): `html_to_text` for snippets and search, `make_safe`
for the sanitised copy that the entry page shows. Viewing: `show` turns the stored copy's
image sources into inline data, placeholders or (when asked) remote URLs.

Everything here that reads a stranger's markup costs time and memory linear in its length:
the scan of postroom/html_scan.py, and nh3 only on the well-formed copy that scan writes, with
at most MAX_DEPTH elements open at once (html5ever checks the stack of open elements at each
tag: 60,000 nested divs took 6 s) and at most MAX_FORMATTING formatting elements, each closed
inside its parent (html5ever re-opens formatting left open at every new block: 4,000 unclosed
<b title=…> in as many paragraphs took 7 s and 2 GB).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass

import nh3

from postroom.html_scan import (  # the bounds are re-exported
    MAX_DEPTH,
    MAX_FORMATTING,
    MAX_HTML_CHARS,
    MAX_TEXT_CHARS,
    TAGS,
    Finder,
    flatten,
)
from postroom.html_text import html_to_text  # re-exported

__all__ = [
    "BLOCKED_IMAGE",
    "MAX_DEPTH",
    "MAX_FORMATTING",
    "MAX_HTML_CHARS",
    "MAX_INLINE_BYTES",
    "MAX_INLINE_IMAGES",
    "MAX_SAFE_CHARS",
    "MAX_TEXT_CHARS",
    "NOTE_CUT",
    "NOTE_FLAT",
    "NOTE_TOO_BIG_TO_SHOW",
    "NOTE_TOO_LARGE",
    "TAGS",
    "SafeHtml",
    "flatten",
    "html_to_text",
    "make_safe",
    "show",
]

MAX_SAFE_CHARS = 2_000_000  # sanitised HTML bigger than this is not kept (nh3 can expand)

# Why the stored safe HTML differs from the mail's (Entry.html_note); words in entry.html.
NOTE_CUT = "cut"  # longer than MAX_HTML_CHARS: the rest is only in the raw message
NOTE_FLAT = "flat"  # deeper than MAX_DEPTH or MAX_FORMATTING: those tags left out
NOTE_TOO_LARGE = "too_large"  # the sanitised result was too big: shown as text
NOTE_TOO_BIG_TO_SHOW = "legacy_too_large"  # filed before sanitising at filing, too big now

ATTRIBUTES = {
    "*": {"style", "title", "align", "valign", "width", "height", "dir", "lang"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor"},
    "col": {"span"},
    "ol": {"start", "type"},
}
# Only properties that cannot fetch anything (no background, no list-style-image, no content).
STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "white-space",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "width",
    "max-width",
    "min-width",
    "height",
    "max-height",
    "min-height",
    "display",
    "float",
    "clear",
    "table-layout",
    "direction",
}
BLOCKED_IMAGE = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="24">'
        b'<rect width="120" height="24" fill="#eef2f6"/><text x="6" y="16" font-size="11" '
        b'fill="#61707f">image held back</text></svg>'
    ).decode()
)
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")
MAX_INLINE_IMAGES = 100  # distinct cid: images placed per view; more are shown held back
MAX_INLINE_BYTES = 10_000_000  # data URLs written per view; further images are held back
REMOTE = ("http:", "https:", "//")
LINK_TARGETS = ("http:", "https:", "mailto:", "tel:", "#")  # data: is for images only


@dataclass(frozen=True)
class SafeHtml:
    html: str  # sanitised; image sources still cid:, remote or data:image (see `show`)
    note: str = ""  # one of the NOTE_ codes, "" when the whole mail is shown as it came


# --- sanitising ------------------------------------------------------------------------------


def make_safe(markup: str) -> SafeHtml:
    """Sanitise a mail's HTML once, within bounds of size and nesting, for storing.

    Image sources are kept as cid:, remote or data:image URLs (anything else is dropped);
    `show` decides per view what each becomes.
    """
    note = ""
    if len(markup) > MAX_HTML_CHARS:
        markup, note = markup[:MAX_HTML_CHARS], NOTE_CUT
    markup = markup.encode("utf-8", "replace").decode("utf-8")  # no lone surrogate for nh3
    markup, flattened = flatten(markup)
    if flattened:
        note = note or NOTE_FLAT

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            stripped = value.strip()
            lowered = stripped.lower()
            if lowered.startswith("cid:"):
                return "cid:" + stripped[4:].strip("<>")
            if lowered.startswith(REMOTE):
                return value
            if lowered.startswith("data:image/") and not lowered.startswith("data:image/svg"):
                return value
            return None
        if tag == "a" and attribute == "href":
            return value if value.strip().lower().startswith(LINK_TARGETS) else None
        return value

    cleaned = nh3.clean(
        markup,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid", "data", "tel"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=attribute_filter,
        filter_style_properties=STYLE_PROPERTIES,
    )
    if len(cleaned) > MAX_SAFE_CHARS:
        return SafeHtml("", NOTE_TOO_LARGE)
    return SafeHtml(cleaned, note)


# --- each view -------------------------------------------------------------------------------


def show(
    safe: str,
    *,
    inline_images: Callable[[list[str]], dict[str, tuple[str, bytes]]],
    load_remote_images: bool = False,
) -> tuple[str, int]:
    """Return stored safe HTML ready for the frame, and how many remote images were held back.

    `inline_images(content_ids)` returns (content type, bytes) of those of the mail's own
    parts that it finds; it is asked once, for at most MAX_INLINE_IMAGES ids. Each part is
    encoded once, and at most MAX_INLINE_BYTES of data URLs are written per view (a mail can
    name one image many thousand times): the images past that are shown held back.
    Reads nh3's output, in which text holds no "<" and every attribute is written
    name="value" with no " inside: one pass over the tags, linear in the length.
    """
    pieces: list[str] = []
    cids: list[tuple[int, str]] = []  # (index in pieces, content id) of each cid: image
    held_back = 0
    position = 0  # safe before this is in pieces
    finder = Finder(safe)
    cursor = 0
    while (lt := finder.find("<", cursor)) != -1:
        end, quotes = _serialised_tag(safe, lt, finder)
        if safe.startswith("<img ", lt):
            for opening, closing in quotes:
                if safe[opening - 5 : opening] != " src=":
                    continue
                source = html.unescape(safe[opening + 1 : closing])
                pieces.append(safe[position : opening + 1])
                if source[:4].lower() == "cid:":
                    cids.append((len(pieces), source[4:]))
                    pieces.append("")  # filled in below
                else:
                    source, held = _image_source(source, load_remote_images)
                    held_back += held
                    pieces.append(html.escape(source))
                position = closing
        cursor = end
    pieces.append(safe[position:])
    _place_inline_images(pieces, cids, inline_images)
    return "".join(pieces), held_back


def _place_inline_images(
    pieces: list[str],
    cids: list[tuple[int, str]],
    inline_images: Callable[[list[str]], dict[str, tuple[str, bytes]]],
) -> None:
    """Fill in the cid: images: each part asked for and encoded once, within the byte cap."""
    if not cids:
        return
    wanted = list(dict.fromkeys(content_id for _, content_id in cids))[:MAX_INLINE_IMAGES]
    parts = inline_images(wanted)
    encoded: dict[str, str] = {}
    budget = MAX_INLINE_BYTES
    for index, content_id in cids:
        if content_id not in encoded:
            found = parts.get(content_id)
            usable = found is not None and found[0] in INLINE_TYPES
            encoded[content_id] = (
                f"data:{found[0]};base64,{base64.b64encode(found[1]).decode()}" if usable else ""
            )
        url = encoded[content_id]
        if url and len(url) <= budget:
            budget -= len(url)
            pieces[index] = html.escape(url)
        else:
            pieces[index] = BLOCKED_IMAGE


def _serialised_tag(safe: str, lt: int, finder: Finder) -> tuple[int, list[tuple[int, int]]]:
    """Where a tag of nh3's output that opens at lt ends, and its quoted values' quotes."""
    quotes = []
    position = lt + 1
    while True:
        gt, quote = finder.find(">", position), finder.find('"', position)
        if gt == -1:
            return len(safe), quotes
        if quote == -1 or gt < quote:
            return gt + 1, quotes
        closing = finder.find('"', quote + 1)
        if closing == -1:
            return len(safe), quotes
        quotes.append((quote, closing))
        position = closing + 1


def _image_source(source: str, load_remote: bool) -> tuple[str, int]:
    """What one stored image source (not cid:) becomes in a view, and 1 if it is a remote
    image held back."""
    lowered = source.lower()
    if lowered.startswith(REMOTE):
        return (source, 0) if load_remote else (BLOCKED_IMAGE, 1)
    if lowered.startswith("data:image/") and not lowered.startswith("data:image/svg"):
        return source, 0
    return BLOCKED_IMAGE, 0
