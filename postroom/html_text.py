"""The text of a mail's HTML, for snippets and the search index (when a mail has no text part).

html5ever (through nh3) reads the markup as a browser does and writes it back with only the
block elements, no attributes, no comments and no "<" in its text; that copy is read in one
pass (each "<" opens a tag) and its character references decoded by the standard library.
nh3 gets the well-formed copy that `flatten` (postroom/html_scan.py) makes, in which html5ever
works in linear time. html.parser, which the issue proposed for reading nh3's copy, took 6
times as long there and is quadratic on unfinished constructs before Python 3.11.13
(CVE-2025-6069); inscriptis and html2text were measured too: bench/html_text.py.
"""

from __future__ import annotations

import html
import logging

import nh3

from postroom.html_scan import HIDDEN, MAX_HTML_CHARS, MAX_TEXT_CHARS, flatten

log = logging.getLogger(__name__)

# Elements that start a paragraph of their own (a blank line before and after) …
PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "hr"}
)
# … and those that start a line.
LINES = frozenset({"br", "div", "li", "dd", "dt", "tr", "caption", "center"})
CELLS = frozenset({"td", "th"})  # the cells of a row stay on its line, a space apart
# The title is no text of the mail (a browser shows it in the tab bar, a mail client nowhere).
NOT_SHOWN = HIDDEN | {"title"}
_SPACE = str.maketrans("\t\n\f\r", "    ")


def _lines(blocks: str) -> str:
    """The text of nh3's output, each block on its lines, character references still in.

    That output is HTML serialised by html5ever with the tags of PARAGRAPHS, LINES and CELLS
    only and no attributes: each "<" opens a tag `<name>` or `</name>`, text holds none.
    """
    pieces = blocks.split("<")
    out = [pieces[0].translate(_SPACE)]
    preformatted = 0  # open pre elements: their line breaks are kept
    breaks, space = 0, False  # what the tags since the last text ask for
    for piece in pieces[1:]:
        tag, _, text = piece.partition(">")
        name = tag.removeprefix("/")
        if name == "br":  # each one a line break: two make a blank line
            breaks += 1
        elif name in PARAGRAPHS:
            breaks = max(breaks, 2)
        elif name in LINES:
            breaks = max(breaks, 1)
        elif name in CELLS:
            space = True
        if name == "pre":
            preformatted = max(preformatted + (-1 if tag[0] == "/" else 1), 0)
        if text and not text.isspace():
            out.append("\n" * breaks or " " * space)
            breaks, space = 0, False
        out.append(text if preformatted else text.translate(_SPACE))
    return "".join(out)


def html_to_text(markup: str) -> str:
    """Reduce HTML to plain text for snippets and the search index (at most MAX_TEXT_CHARS).

    Paragraphs are kept apart by a blank line, other blocks by a line break; scripts, styles,
    comments and the title leave no text. Never raises: should a library fail, the text is
    the markup's with its tags stripped.
    """
    if not markup:
        return ""
    markup = markup[:MAX_HTML_CHARS]
    try:
        text = _read(markup)
    except Exception:
        log.warning("html to text: the HTML could not be read, tags stripped", exc_info=True)
        text = _stripped(markup)
    return _tidy(text)[:MAX_TEXT_CHARS]


def _read(markup: str) -> str:
    """The text of the markup, blocks as line breaks, by nh3 and html.parser."""
    flat, _ = flatten(markup, hidden=NOT_SHOWN)
    flat = flat.encode("utf-8", "replace").decode()  # nh3 takes no lone surrogate
    blocks = nh3.clean(flat, tags=PARAGRAPHS | LINES | CELLS, attributes={}, link_rel=None)
    return html.unescape(_lines(blocks))


def _stripped(markup: str) -> str:
    """The markup's text with everything from each "<" to the next ">" left out: the plain
    strip for when the libraries fail."""
    pieces = markup.split("<")
    return html.unescape(" ".join([pieces[0]] + [piece.partition(">")[2] for piece in pieces[1:]]))


def _tidy(text: str) -> str:
    """White space within each line made single, at most one blank line in a row, none at
    either end."""
    lines: list[str] = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip("\n")
