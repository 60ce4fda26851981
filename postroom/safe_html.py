"""Received HTML made safe once, when it is filed, and shown cheaply on every view.

Filing (inside the bounded parse stage): `html_to_text` for snippets and search, `make_safe`
for the sanitised copy that the entry page shows. Viewing: `show` turns the stored copy's
image sources into inline data, placeholders or (when asked) remote URLs.

Everything here that reads a stranger's markup costs time linear in its length: a scan by
hand (no backtracking regular expression; html.parser is quadratic on some input before
Python 3.11.13), and nh3 only on input whose nesting the scan has cut to MAX_DEPTH levels
(html5ever checks the stack of open elements at each tag, so its time grows with depth
times tags: 60,000 nested divs took 6 s).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import nh3

MAX_HTML_CHARS = 1_000_000  # HTML kept and sanitised; the raw message keeps all of it
MAX_TEXT_CHARS = 1_000_000  # text kept for snippets and the search index
MAX_DEPTH = 256  # nesting levels kept; deeper elements are shown flat (their text stays)
MAX_SAFE_CHARS = 2_000_000  # sanitised HTML bigger than this is not kept (nh3 can expand)

# Why the stored safe HTML differs from the mail's (Entry.html_note); words in entry.html.
NOTE_CUT = "cut"  # longer than MAX_HTML_CHARS: the rest is only in the raw message
NOTE_FLAT = "flat"  # nested deeper than MAX_DEPTH: deeper levels shown flat
NOTE_TOO_LARGE = "too_large"  # the sanitised result was too big: shown as text
NOTE_TOO_BIG_TO_SHOW = "legacy_too_large"  # filed before sanitising at filing, too big now

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd",
    "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
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
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "text-transform", "line-height",
    "letter-spacing", "white-space", "vertical-align", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right", "padding-bottom",
    "padding-left", "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-radius", "width", "max-width", "min-width", "height", "max-height", "min-height",
    "display", "float", "clear", "table-layout", "direction",
}  # fmt: skip
BLOCKED_IMAGE = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="24">'
        b'<rect width="120" height="24" fill="#eef2f6"/><text x="6" y="16" font-size="11" '
        b'fill="#61707f">image held back</text></svg>'
    ).decode()
)
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")
REMOTE = ("http:", "https:", "//")
LINK_TARGETS = ("http:", "https:", "mailto:", "tel:", "#")  # data: is for images only


@dataclass(frozen=True)
class SafeHtml:
    html: str  # sanitised; image sources still cid:, remote or data:image (see `show`)
    note: str = ""  # one of the NOTE_ codes, "" when the whole mail is shown as it came


# --- a linear scan of HTML -------------------------------------------------------------------

VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
})  # fmt: skip
RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "textarea",
                      "title", "noscript"})  # fmt: skip
HIDDEN = frozenset({"script", "style"})  # their content is no text for a reader
# A start tag closes the element on top of the stack when html5ever would close it too.
_CLOSES = {"li": {"li"}, "dd": {"dd", "dt"}, "dt": {"dd", "dt"}, "td": {"td", "th"},
           "th": {"td", "th"}, "tr": {"td", "th", "tr"}, "option": {"option"}}  # fmt: skip
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hgroup", "hr", "main", "menu", "nav", "ol", "p", "pre", "section",
    "summary", "table", "ul",
})  # fmt: skip
# Block elements: their tags separate words in the text version.
_BREAKS = _CLOSES_P | {"br", "li", "dd", "dt", "td", "th", "tr", "tbody", "thead", "tfoot",
                       "caption", "html", "body", "head", "title", "option", "img"}  # fmt: skip
_NAME = re.compile(r"[^\s/>]*")  # one greedy run, no alternatives: linear


class _Finder:
    """str.find that remembers its last answer per needle, so that scanning for the same
    needle again and again from increasing positions reads each character once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._found: dict[str, int] = {}

    def find(self, needle: str, start: int) -> int:
        known = self._found.get(needle)
        if known is not None and (known == -1 or known >= start):
            return known
        found = self.text.find(needle, start)
        self._found[needle] = found
        return found


@dataclass
class _Token:
    kind: str  # text, start, end, other (comment, doctype, processing instruction)
    start: int
    end: int
    name: str = ""


def _tokens(markup: str) -> Iterator[_Token]:
    """Split HTML into text, tags and comments, the way a browser's tokenizer would, closely
    enough for text and nesting; every character is read a bounded number of times."""
    finder = _Finder(markup)
    length = len(markup)
    position = 0
    while position < length:
        lt = finder.find("<", position)
        if lt == -1:
            yield _Token("text", position, length)
            return
        if lt > position:
            yield _Token("text", position, lt)
        following = markup[lt + 1 : lt + 2]
        if following == "!" and markup.startswith("<!--", lt):
            end = _comment_end(markup, lt, finder)
            yield _Token("other", lt, end)
        elif following in ("!", "?") or (following == "/" and not _letter(markup, lt + 2)):
            end = finder.find(">", lt + 1)
            end = length if end == -1 else end + 1
            yield _Token("other", lt, end)
        elif following == "/":
            name = _NAME.match(markup, lt + 2).group().lower()
            end = _tag_end(markup, lt + 2 + len(name), finder)
            yield _Token("end", lt, end, name)
        elif _letter(markup, lt + 1):
            name = _NAME.match(markup, lt + 1).group().lower()
            end = _tag_end(markup, lt + 1 + len(name), finder)
            yield _Token("start", lt, end, name)
            if name in RAW_TEXT or name == "plaintext":
                close = length if name == "plaintext" else _raw_text_end(markup, end, name, finder)
                if close > end:
                    yield _Token("raw", end, close, name)
                end = close
        else:  # a lone "<" is text
            end = lt + 1
            yield _Token("text", lt, end)
        position = end


def _letter(markup: str, index: int) -> bool:
    return index < len(markup) and markup[index].isascii() and markup[index].isalpha()


def _comment_end(markup: str, lt: int, finder: _Finder) -> int:
    """Where a comment that opens at lt ends: after -->, --!>, or at once for <!--> and <!--->."""
    for empty in ("<!-->", "<!--->"):
        if markup.startswith(empty, lt):
            return lt + len(empty)
    ends = [e + len(n) for n in ("-->", "--!>") if (e := finder.find(n, lt + 4)) != -1]
    return min(ends) if ends else len(markup)


def _tag_end(markup: str, position: int, finder: _Finder) -> int:
    """Where a tag ends: after the first > that is not inside a quoted attribute value."""
    length = len(markup)
    while True:
        gt = finder.find(">", position)
        if gt == -1:
            return length
        eq = markup.find("=", position, gt)
        if eq == -1:
            return gt + 1
        value = eq + 1
        while value < gt and markup[value] in " \t\n\r\f":
            value += 1
        quote = markup[value] if value < length else ""
        if quote in ('"', "'"):
            close = finder.find(quote, value + 1)
            if close == -1:
                return length
            position = close + 1
        else:
            position = value if value > eq + 1 else eq + 1


def _raw_text_end(markup: str, position: int, name: str, finder: _Finder) -> int:
    """Where the content of a script, style or the like ends: at its own end tag."""
    length = len(markup)
    while True:
        close = finder.find("</", position)
        if close == -1:
            return length
        after = close + 2 + len(name)
        candidate = markup[close + 2 : after]
        if candidate.isascii() and candidate.lower() == name and markup[after : after + 1] in (
            " ", "\t", "\n", "\r", "\f", "/", ">",
        ):  # fmt: skip
            return close
        position = close + 2


# --- text ------------------------------------------------------------------------------------


def html_to_text(markup: str) -> str:
    """Reduce HTML to plain text for snippets and the search index (at most MAX_TEXT_CHARS)."""
    if not markup:
        return ""
    markup = markup[:MAX_HTML_CHARS]
    pieces: list[str] = []
    for token in _tokens(markup):
        if token.kind == "text" or (token.kind == "raw" and token.name not in HIDDEN):
            pieces.append(markup[token.start : token.end])
        elif token.kind in ("start", "end"):
            pieces.append("\n" if token.name in _BREAKS else " ")
    text = html.unescape("".join(pieces))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)[:MAX_TEXT_CHARS]


# --- sanitising ------------------------------------------------------------------------------


def flatten(markup: str, max_depth: int = MAX_DEPTH) -> tuple[str, bool]:
    """Drop the tags of elements nested deeper than max_depth, keeping their text.

    The nesting is counted as a browser would build it, or deeper (an end tag closes only an
    element that is open; a few start tags close their like, as html5ever does), so what nh3
    gets is never much deeper than max_depth. Returns the markup and whether it changed.
    """
    stack: list[tuple[str, bool]] = []  # (name, kept)
    open_count: dict[str, int] = {}
    pieces: list[str] = []
    position = 0  # markup before this is in pieces or dropped
    changed = False

    def pop() -> bool:
        name, kept = stack.pop()
        open_count[name] -= 1
        return kept

    for token in _tokens(markup):
        if token.kind == "start":
            name = token.name
            top = stack[-1][0] if stack else ""
            if top in _CLOSES.get(name, ()) or (top == "p" and name in _CLOSES_P):
                pop()
            if name in VOID:
                continue
            keep = len(stack) < max_depth
            stack.append((name, keep))
            open_count[name] = open_count.get(name, 0) + 1
        elif token.kind == "end" and open_count.get(token.name):
            keep = True
            while stack:
                name = stack[-1][0]
                kept = pop()
                if name == token.name:
                    keep = kept
                    break
        else:
            continue
        if not keep:  # a space instead: words on either side stay apart
            pieces += [markup[position : token.start], " "]
            position = token.end
            changed = True
    if not changed:
        return markup, False
    pieces.append(markup[position:])
    return "".join(pieces), True


def make_safe(markup: str) -> SafeHtml:
    """Sanitise a mail's HTML once, within bounds of size and nesting, for storing.

    Image sources are kept as cid:, remote or data:image URLs (anything else is dropped);
    `show` decides per view what each becomes.
    """
    note = ""
    if len(markup) > MAX_HTML_CHARS:
        markup, note = markup[:MAX_HTML_CHARS], NOTE_CUT
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
    inline_image: Callable[[str], tuple[str, bytes] | None],
    load_remote_images: bool = False,
) -> tuple[str, int]:
    """Return stored safe HTML ready for the frame, and how many remote images were held back.

    `inline_image(content_id)` returns (content type, bytes) of one of the mail's own parts.
    Reads nh3's output, in which text holds no "<" and every attribute is written
    name="value" with no " inside: one pass over the tags, linear in the length.
    """
    pieces: list[str] = []
    held_back = 0
    position = 0  # safe before this is in pieces
    finder = _Finder(safe)
    cursor = 0
    while (lt := finder.find("<", cursor)) != -1:
        end, quotes = _serialised_tag(safe, lt, finder)
        if safe.startswith("<img ", lt):
            for opening, closing in quotes:
                if safe[opening - 5 : opening] != " src=":
                    continue
                source = html.unescape(safe[opening + 1 : closing])
                source, held = _image_source(source, inline_image, load_remote_images)
                held_back += held
                pieces += [safe[position : opening + 1], html.escape(source)]
                position = closing
        cursor = end
    pieces.append(safe[position:])
    return "".join(pieces), held_back


def _serialised_tag(safe: str, lt: int, finder: _Finder) -> tuple[int, list[tuple[int, int]]]:
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


def _image_source(
    source: str, inline_image: Callable[[str], tuple[str, bytes] | None], load_remote: bool
) -> tuple[str, int]:
    """What one stored image source becomes in a view, and 1 if it is a remote image held back."""
    lowered = source.lower()
    if lowered.startswith("cid:"):
        found = inline_image(source[4:])
        if found and found[0] in INLINE_TYPES:
            return f"data:{found[0]};base64,{base64.b64encode(found[1]).decode()}", 0
        return BLOCKED_IMAGE, 0
    if lowered.startswith(REMOTE):
        return (source, 0) if load_remote else (BLOCKED_IMAGE, 1)
    if lowered.startswith("data:image/") and not lowered.startswith("data:image/svg"):
        return source, 0
    return BLOCKED_IMAGE, 0
