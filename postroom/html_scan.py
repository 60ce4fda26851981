"""A linear scan of HTML: tokens as a browser's tokenizer would find them, closely enough for
the text of a mail and for how deep its elements nest.

Every character is read a bounded number of times, whatever the markup: no regular expression
that backtracks, and not html.parser (quadratic on some input before Python 3.11.13). Used by
postroom/safe_html.py, at filing, inside the bounded parse stage.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_HTML_CHARS = 1_000_000  # HTML kept and sanitised; the raw message keeps all of it
MAX_TEXT_CHARS = 1_000_000  # text kept for snippets and the search index
MAX_DEPTH = 256  # nesting levels kept; deeper elements are shown flat (their text stays)

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


class Finder:
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
    finder = Finder(markup)
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


def _comment_end(markup: str, lt: int, finder: Finder) -> int:
    """Where a comment that opens at lt ends: after -->, --!>, or at once for <!--> and <!--->."""
    for empty in ("<!-->", "<!--->"):
        if markup.startswith(empty, lt):
            return lt + len(empty)
    ends = [e + len(n) for n in ("-->", "--!>") if (e := finder.find(n, lt + 4)) != -1]
    return min(ends) if ends else len(markup)


def _tag_end(markup: str, position: int, finder: Finder) -> int:
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


def _raw_text_end(markup: str, position: int, name: str, finder: Finder) -> int:
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


# --- text and nesting ------------------------------------------------------------------------


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
