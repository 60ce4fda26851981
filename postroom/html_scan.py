"""A linear scan of HTML: tokens as a browser's tokenizer finds them, for the well-formed copy
that html5ever (through nh3) gets, both for the sanitised copy and for the text of a mail.

Every character is read a bounded number of times, whatever the markup: no regular expression
that backtracks, and not html.parser (quadratic on some input before Python 3.11.13). Used by
postroom/safe_html.py and postroom/html_text.py, at filing, inside the bounded parse stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_HTML_CHARS = 1_000_000  # HTML kept and sanitised; the raw message keeps all of it
MAX_TEXT_CHARS = 1_000_000  # text kept for snippets and the search index
MAX_DEPTH = 256  # nesting levels kept; deeper elements are shown flat (their text stays)
MAX_FORMATTING = 16  # formatting elements (b, i, font, a, …) open at once; more are left out
MAX_ATTRIBUTES = 64  # attributes passed on per tag (html5ever checks each against the others)

VOID = frozenset(
    {
        "area",
        "base",
        "basefont",
        "bgsound",
        "br",
        "col",
        "embed",
        "frame",
        "hr",
        "image",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
RAW_TEXT = frozenset(
    {"script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title", "noscript"}
)
HIDDEN = frozenset({"script", "style"})  # their content is no text for a reader
# The tags the sanitiser keeps (postroom/safe_html.py); `flatten` passes on no others.
TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "center",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "div",
        "dl",
        "dt",
        "em",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "u",
        "ul",
    }
)
# The HTML standard's formatting elements: html5ever re-opens those left open at every new
# block (its list of active formatting elements), so their number open at once is capped.
FORMATTING = frozenset(
    {
        "a",
        "b",
        "big",
        "code",
        "em",
        "font",
        "i",
        "nobr",
        "s",
        "small",
        "strike",
        "strong",
        "tt",
        "u",
    }
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TABLE_PARTS = frozenset({"tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup"})
_SCOPE = frozenset({"table", "td", "th", "caption"})  # where a search for an open p stops
# Special elements other than address, div and p: an open li (dd, dt) below one stays open.
_LIST_STOP = frozenset(
    {
        "blockquote",
        "caption",
        "center",
        "col",
        "colgroup",
        "dl",
        "ol",
        "pre",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        *_HEADINGS,
    }
)
_CLOSES_P = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "ul",
        "li",
        "dd",
        "dt",
    }
)
# Single character classes, each run matched greedily: linear. HTML's white space only.
_NAME = re.compile(r"[^\t\n\f\r />]*")
_SPACES = re.compile(r"[\t\n\f\r ]*")
_ATTRIBUTE_NAME = re.compile(r"[^\t\n\f\r />=]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")


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
    cut: int = -1  # where the attribute after the first MAX_ATTRIBUTES starts, if any


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
            name = _NAME.match(markup, lt + 2).group()
            end, _ = _tag_end(markup, lt + 2 + len(name))
            if end == -1:  # a tag cut off by the end of the markup is no tag
                yield _Token("other", lt, length)
                return
            yield _Token("end", lt, end, _lower(name))
        elif _letter(markup, lt + 1):
            name = _NAME.match(markup, lt + 1).group()
            end, cut = _tag_end(markup, lt + 1 + len(name))
            if end == -1:
                yield _Token("other", lt, length)
                return
            name = _lower(name)
            yield _Token("start", lt, end, name, cut)
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


def _lower(name: str) -> str:
    """A tag name as html5ever compares it: only ASCII letters are lowered (\u212a is no k)."""
    return name.lower() if name.isascii() else name


def _tag_end(markup: str, position: int) -> tuple[int, int]:
    """Where a tag whose name ends at position ends (after its >), or -1 if the markup ends
    first, and where its attribute after the first MAX_ATTRIBUTES starts (-1: none). The
    attribute states of the HTML tokenizer, so a quote counts only where it opens a value
    (`<b ="x>` ends at its first >, as in a browser)."""
    length = len(markup)
    attributes, cut = 0, -1
    while True:
        position = _SPACES.match(markup, position).end()  # before an attribute name
        if position >= length:
            return -1, cut
        char = markup[position]
        if char == ">":
            return position + 1, cut
        if char == "/":  # self-closing: > ends the tag, anything else starts an attribute
            position += 1
            if markup.startswith(">", position):
                return position + 1, cut
            continue
        # an attribute name; its first character may be anything, even = or a quote
        attributes += 1
        if attributes > MAX_ATTRIBUTES and cut == -1:
            cut = position
        position = _ATTRIBUTE_NAME.match(markup, position + 1).end()
        position = _SPACES.match(markup, position).end()
        if position >= length:
            return -1, cut
        if markup[position] != "=":
            continue  # > and / are handled above; anything else starts the next attribute
        position = _SPACES.match(markup, position + 1).end()  # before the value
        if position >= length:
            return -1, cut
        char = markup[position]
        if char == ">":
            return position + 1, cut
        if char in "\"'":
            close = markup.find(char, position + 1)
            if close == -1:
                return -1, cut
            position = close + 1
            continue
        position = _UNQUOTED.match(markup, position).end()
        if position >= length:
            return -1, cut
        if markup[position] == ">":
            return position + 1, cut


def _raw_text_end(markup: str, position: int, name: str, finder: Finder) -> int:
    """Where the content of a script, style or the like ends: at its own end tag."""
    length = len(markup)
    while True:
        close = finder.find("</", position)
        if close == -1:
            return length
        after = close + 2 + len(name)
        candidate = markup[close + 2 : after]
        if (
            candidate.isascii()
            and candidate.lower() == name
            and markup[after : after + 1]
            in (
                " ",
                "\t",
                "\n",
                "\r",
                "\f",
                "/",
                ">",
            )
        ):
            return close
        position = close + 2


# --- the sanitiser's input ---------------------------------------------------------------------


class _Flattener:
    """The open elements of the copy being written, with each name's open positions."""

    def __init__(self, max_depth: int, max_formatting: int) -> None:
        self.max_depth, self.max_formatting = max_depth, max_formatting
        self.stack: list[tuple[str, bool]] = []  # (name, written)
        self.positions: dict[str, list[int]] = {}
        self.written = 0  # open elements whose start tag was written
        self.formatting = 0  # of these, formatting elements
        self.pieces: list[str] = []

    def last(self, names: frozenset[str] | tuple[str, ...]) -> int:
        """The position of the innermost open element of these names, -1 if none is open."""
        return max((found[-1] for name in names if (found := self.positions.get(name))), default=-1)

    def push(self, name: str, tag: str) -> bool:
        """Open an element; its tag is written unless too deep or too much formatting is open."""
        formatting = name in FORMATTING
        write = self.written < self.max_depth and not (
            formatting and self.formatting >= self.max_formatting
        )
        self.positions.setdefault(name, []).append(len(self.stack))
        self.stack.append((name, write))
        if write:
            self.pieces.append(tag)
            self.written += 1
            self.formatting += formatting
        return write

    def close_to(self, position: int) -> None:
        """Close the element at position and all inside it, each with an end tag of its own."""
        while len(self.stack) > position:
            name, written = self.stack.pop()
            self.positions[name].pop()
            if written:
                self.pieces.append(f"</{name}>")
                self.written -= 1
                self.formatting -= name in FORMATTING

    def close_for(self, name: str) -> None:
        """Close what the start tag `name` closes in a browser (or less: never more)."""
        if name in _CLOSES_P and (p := self.last(("p",))) > self.last(_SCOPE):
            self.close_to(p)
        table = self.last(("table",))
        if name in ("td", "th", "tr") or name in _TABLE_PARTS:  # cells, rows, row groups end
            names = {"td": ("td", "th"), "th": ("td", "th"), "tr": ("tr", "td", "th")}
            while (found := self.last(names.get(name, _TABLE_PARTS))) > table:
                self.close_to(found)
            return
        if name == "li":
            found, stop = self.last(("li",)), self.last(_LIST_STOP)
        elif name in ("dd", "dt"):
            found, stop = self.last(("dd", "dt")), self.last(_LIST_STOP - {"dd", "dt"})
        elif name == "table":  # a table straight inside a table ends it
            found, stop = table, self.last(("td", "th", "caption"))
        elif name == "a":  # a link inside a link ends it
            found, stop = self.last(("a",)), self.last(_SCOPE)
        elif name in _HEADINGS and self.stack and self.stack[-1][0] in _HEADINGS:
            found, stop = len(self.stack) - 1, -1
        else:
            return
        if found > stop:
            self.close_to(found)


def flatten(
    markup: str,
    max_depth: int = MAX_DEPTH,
    max_formatting: int = MAX_FORMATTING,
    hidden: frozenset[str] = HIDDEN,
) -> tuple[str, bool]:
    """Rewrite HTML for the sanitiser as a well-formed copy that html5ever builds in linear time.

    Only TAGS are passed on (nh3 drops the others and keeps their text); the hidden raw-text
    elements (scripts and styles) go with their content, the content of other raw-text
    elements becomes text; comments go.
    Every element is closed by an end tag of its own, inside its parent (so no formatting is
    left open for html5ever to re-open at each new block); at most max_depth elements are
    open at once and at most max_formatting formatting elements: the tags of further ones are
    left out, their text stays. Returns the copy and whether tags were left out for a bound.
    """
    out = _Flattener(max_depth, max_formatting)
    pieces = out.pieces
    left_out = False
    raw = ""  # the raw-text element whose content comes next
    for token in _tokens(markup):
        kind, name = token.kind, token.name
        if kind == "text":
            text = markup[token.start : token.end]
            pieces.append("&lt;" if text == "<" else text)  # a lone < is text, kept as text
        elif kind == "raw":
            if raw not in hidden:
                content = markup[token.start : token.end]
                if raw not in ("textarea", "title"):  # no character references in these
                    content = content.replace("&", "&amp;")
                pieces.append(content.replace("<", "&lt;"))
        elif kind == "start" and name in TAGS:
            out.close_for(name)
            tag = markup[token.start : token.end if token.cut == -1 else token.cut]
            tag += "" if token.cut == -1 else ">"  # the attributes past MAX_ATTRIBUTES go
            if name in VOID:
                pieces.append(tag)
            elif not out.push(name, tag):
                left_out = True
                if out.written >= max_depth:
                    pieces.append(" ")  # the words on either side stay apart
        elif kind == "start":
            raw = name if name in RAW_TEXT or name == "plaintext" else ""
        elif kind == "end" and name in TAGS and (found := out.positions.get(name)):
            out.close_to(found[-1])
    out.close_to(0)
    return "".join(pieces), left_out
