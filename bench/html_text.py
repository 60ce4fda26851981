"""HTML to text, candidate against candidate: quality, speed and hostile input.

Usage: .venv/bin/python bench/html_text.py [--corpus ../shared/corpus] [--only NAME,...]
       [--hostile-n 20000] [--timeout 20] [--show N]

Quality: for every corpus mail with both a text/plain and a text/html body (as
`email.message.EmailMessage.get_body` finds them under `policy.default`), the words of each
candidate's text of the HTML against the words of the plain part (difflib's ratio on the
lower-cased word lists, each cut to MAX_WORDS): mean and median over the mails; and the
length of all the candidate's texts against the plain parts' (layout padding, markup).
Speed: CPU seconds for the text of every HTML body of the corpus (best of three), and the
ratio to the baseline `scan` (postroom's own tokenizer, as html_to_text was before issue 16);
and for the largest HTML body that has a plain alternative, repeated up to MAX_HTML_CHARS.
Hostile: each case of tests/test_hostile_html.py (and a few aimed at these libraries) at n and
8n units in a child process with a time limit: the ratio of the two times (linear is about 8,
quadratic 64), a time-out, or the exception raised.
inscriptis and html2text are no dependencies of postroom: `.venv/bin/pip install inscriptis
html2text` to measure them (without, they show as raising ModuleNotFoundError).
"""

from __future__ import annotations

import argparse
import difflib
import email
import email.policy
import html
import multiprocessing
import re
import statistics
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import nh3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from postroom import html_text  # noqa: E402
from postroom.html_scan import _CLOSES_P as CLOSES_P  # noqa: E402
from postroom.html_scan import HIDDEN, flatten  # noqa: E402
from postroom.html_scan import _tokens as scan_tokens  # noqa: E402
from tests.test_html_text import HOSTILE_HTML  # noqa: E402

MAX_WORDS = 3000  # words compared per mail (difflib's ratio is quadratic in the worst case)
WORD = re.compile(r"\w+")

# The tags the old scan turned into a line break: those that close a <p>, and these.
SCAN_BREAKS = CLOSES_P | frozenset(
    {"br", "td", "th", "tr", "tbody", "thead", "tfoot", "caption", "html", "body", "head"}
    | {"title", "option", "img"}
)


def scan(markup: str) -> str:
    """The baseline: postroom's html_to_text before issue 16, on its own tokenizer."""
    pieces: list[str] = []
    for token in scan_tokens(markup):
        if token.kind == "text" or (token.kind == "raw" and token.name not in HIDDEN):
            pieces.append(markup[token.start : token.end])
        elif token.kind in ("start", "end"):
            pieces.append("\n" if token.name in SCAN_BREAKS else " ")
    text = html.unescape("".join(pieces))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def inscriptis_default(markup: str) -> str:
    """inscriptis as it comes (lxml's libxml2 parser; the relaxed CSS profile)."""
    import inscriptis

    return inscriptis.get_text(markup)


def inscriptis_strict(markup: str) -> str:
    """inscriptis with the strict CSS profile, given the flattened copy (bounded depth)."""
    import inscriptis
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    config = ParserConfig(css=CSS_PROFILES["strict"])
    return inscriptis.get_text(flatten(markup)[0], config)


def _html2text(markup: str) -> str:
    import html2text

    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_links = converter.ignore_images = converter.ignore_emphasis = True
    return converter.handle(markup)


def html2text_raw(markup: str) -> str:
    """html2text (html.parser underneath) on the markup as it came."""
    return _html2text(markup)


def html2text_flat(markup: str) -> str:
    """html2text on the flattened copy: well-formed, so html.parser meets no open construct."""
    return _html2text(flatten(markup)[0])


def postroom_now(markup: str) -> str:
    """postroom's html_to_text as it is now (postroom/html_text.py)."""
    from postroom.html_text import html_to_text

    return html_to_text(markup)


class _BlockReader(HTMLParser):
    """html.parser over nh3's copy: the breaks of postroom/html_text.py, pre not kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.breaks, self.space = 0, False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "br":
            self.breaks += 1
        elif tag in html_text.PARAGRAPHS:
            self.breaks = max(self.breaks, 2)
        elif tag in html_text.LINES:
            self.breaks = max(self.breaks, 1)
        else:
            self.space = True

    def handle_data(self, data: str) -> None:
        if not data.isspace():
            self.pieces.append("\n" * self.breaks or " " * self.space)
            self.breaks, self.space = 0, False
        self.pieces.append(data.translate(html_text._SPACE))


def nh3_html_parser(markup: str) -> str:
    """nh3 keeps the blocks of the flattened copy, html.parser reads what it writes."""
    flat, _ = flatten(markup[: html_text.MAX_HTML_CHARS], hidden=html_text.NOT_SHOWN)
    tags = html_text.PARAGRAPHS | html_text.LINES | html_text.CELLS
    reader = _BlockReader()
    reader.feed(nh3.clean(flat, tags=tags, attributes={}, link_rel=None))
    reader.close()
    return html_text._tidy("".join(reader.pieces))


CANDIDATES: dict[str, Callable[[str], str]] = {
    "scan": scan,
    "inscriptis": inscriptis_default,
    "inscriptis-strict-flat": inscriptis_strict,
    "html2text": html2text_raw,
    "html2text-flat": html2text_flat,
    "nh3+html.parser": nh3_html_parser,
    "postroom": postroom_now,
}

# Beyond the sanitiser's cases: what hurts table layout, CSS lengths or html.parser.
EXTRA_HOSTILE: dict[str, Callable[[int], str]] = {
    "wide cell above many rows": lambda n: (
        "<table><tr><td>" + "x" * (4 * n) + "</td></tr>" + "<tr><td>y</td></tr>" * (n // 5)
    ),
    "tables nested in cells": lambda n: "<table><tr><td>x" * (n // 15),
    "many cells in one row": lambda n: "<table><tr>" + "<td>x</td>" * (n // 10),
    "indented lines": lambda n: (
        '<div style="padding-left:99999em">' * 8 + "<br>x" * (n // 5) + "</div>" * 8
    ),
    "a CSS length of dots": lambda n: '<p style="margin-top:' + "." * (10 * n) + '">x</p>',
}


def corpus_mails(root: Path) -> list[tuple[str, str | None, str]]:
    """(path, plain text or None, HTML) of every corpus mail that has an HTML body."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name in ("README.md", "LICENSE", "NOTICE"):
            continue
        try:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            html_part = message.get_body(preferencelist=("html",))
            if html_part is None:
                continue
            markup = html_part.get_content()
            plain_part = message.get_body(preferencelist=("plain",))
            plain = plain_part.get_content() if plain_part is not None else None
        except Exception:  # noqa: BLE001, S112 - a fuzzer seed the reference cannot read
            continue
        if isinstance(markup, str) and markup.strip():
            found.append((str(path.relative_to(root)), plain, markup))
    return found


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())[:MAX_WORDS]


def quality(convert: Callable[[str], str], mails) -> tuple[list[float], float]:
    """Similarity of the candidate's words to the plain part's, per mail that has both, and
    the length of all its texts against the plain parts' (padding and markup make it grow)."""
    ratios, written, plain_chars = [], 0, 0
    for _, plain, markup in mails:
        if plain is None or not words(plain):
            continue
        try:
            text = convert(markup)
        except Exception:  # noqa: BLE001 - a raise counts as no text at all
            text = ""
        matcher = difflib.SequenceMatcher(None, words(text), words(plain), autojunk=False)
        ratios.append(matcher.ratio())
        written, plain_chars = written + len(text), plain_chars + len(plain)
    return ratios, written / plain_chars


def speed(convert: Callable[[str], str], mails) -> tuple[float, int]:
    """CPU seconds for every HTML body (best of three), and how many raised."""
    best, failures = float("inf"), 0
    for _ in range(3):
        failures = 0
        start = time.process_time()
        for _, _, markup in mails:
            try:
                convert(markup)
            except Exception:  # noqa: BLE001
                failures += 1
        best = min(best, time.process_time() - start)
    return best, failures


def _timed(name: str, case: str, n: int, pipe) -> None:
    """Child: CPU seconds of the candidate on the case at n and 8n, or the exception."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    sys.setrecursionlimit(10_000)
    make = {**HOSTILE_HTML, **EXTRA_HOSTILE}[case]
    convert = CANDIDATES[name]
    try:
        times, sizes = [], []
        for size in (n, 8 * n):
            markup = make(size)
            start = time.process_time()
            out = convert(markup)
            times.append(time.process_time() - start)
            sizes.append(len(out))
        pipe.send(("ok", times, sizes, len(make(8 * n))))
    except BaseException as error:  # noqa: BLE001 - reported, not raised
        pipe.send(("raised", type(error).__name__, str(error)[:60]))


def hostile(name: str, n: int, timeout: float) -> dict[str, str]:
    """Each hostile case for one candidate: 8n/n time ratio, or what went wrong."""
    context = multiprocessing.get_context("fork")
    results = {}
    for case in {**HOSTILE_HTML, **EXTRA_HOSTILE}:
        parent, child = context.Pipe()
        process = context.Process(target=_timed, args=(name, case, n, child))
        process.start()
        if parent.poll(timeout):
            answer = parent.recv()
            if answer[0] == "ok":
                (small, large), (_, out), size = answer[1], answer[2], answer[3]
                grow = f" out {out / size:.1f}x in" if out > 2 * size else ""
                results[case] = f"{large:.2f}s ({large / max(small, 1e-3):.0f}x){grow}"
            else:
                results[case] = f"raised {answer[1]}: {answer[2]}"
        else:
            results[case] = f"TIMEOUT >{timeout:.0f}s"
        process.kill()
        process.join()
    return results


def main() -> None:
    """Measure the candidates named (all by default) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--hostile-n", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--show", type=int, default=0, help="print N outputs of each candidate")
    parser.add_argument("--skip-hostile", action="store_true")
    args = parser.parse_args()
    names = args.only.split(",")

    mails = corpus_mails(Path(args.corpus))
    paired = sum(1 for _, plain, _ in mails if plain is not None)
    total = sum(len(markup) for _, _, markup in mails)
    print(f"{len(mails)} HTML bodies ({total / 1e6:.2f} MB), {paired} with a plain alternative")
    print(
        f"{'candidate':24} {'quality mean':>12} {'median':>7} {'length':>7} {'CPU s':>7} "
        f"{'vs scan':>8} raised"
    )
    baseline = None
    for name in names:
        ratios, length = quality(CANDIDATES[name], mails)
        seconds, failures = speed(CANDIDATES[name], mails)
        if name == "scan":
            baseline = seconds
        relative = f"{seconds / baseline:.2f}x" if baseline else "-"
        print(
            f"{name:24} {statistics.mean(ratios):12.3f} {statistics.median(ratios):7.3f} "
            f"{length:7.2f} {seconds:7.3f} {relative:>8} {failures}"
        )
    path, _, largest = max((m for m in mails if m[1] is not None), key=lambda m: len(m[2]))
    big = largest * (html_text.MAX_HTML_CHARS // len(largest))
    print(f"\n{path} ({len(largest) // 1000} KB) repeated to {len(big) // 1000} KB: CPU s")
    for name in names:
        big_seconds, failures = speed(CANDIDATES[name], [(path, None, big)])
        print(f"{name:24} {big_seconds:7.3f}" + (" raised" if failures else ""))
    if args.show:
        chosen = [m for m in mails if m[1] is not None][: args.show]
        for path, _, markup in chosen:
            for name in names:
                print(f"\n===== {path} — {name}\n{CANDIDATES[name](markup)[:1500]}")
    if args.skip_hostile:
        return
    print(f"\nhostile input, n = {args.hostile_n} units and 8n: CPU s at 8n (8n/n ratio)")
    for name in names:
        print(f"\n{name}")
        for case, result in hostile(name, args.hostile_n, args.timeout).items():
            print(f"  {case:48} {result}")


if __name__ == "__main__":
    main()
