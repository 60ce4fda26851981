"""The text of a mail's HTML, for snippets and the search index: what a reader sees of it,
in time linear in its length whatever it holds.

The hostile markup and the linear-time check here serve tests/test_hostile_html.py (the
sanitised copy) and bench/html_text.py as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import pytest

from postroom import html_text
from postroom.html_scan import MAX_HTML_CHARS, MAX_TEXT_CHARS
from postroom.safe_html import html_to_text, make_safe

# Each makes hostile markup of about n units; all defeat a naive scanner or html5ever.
HOSTILE_HTML: dict[str, Callable[[int], str]] = {
    "script tags never closed": lambda n: "<script>x" * n,
    "style and script mixed": lambda n: "<style>a</styl<script>b</scrip" * n,
    "tags never closed": lambda n: "<a title=x " * n,
    "quotes never closed": lambda n: '<a title="x>' * n,
    "comments never closed": lambda n: "<!-- x -- >" * n,
    "end tags of nothing": lambda n: "<b x>" * (n // 4) + "</x>" * n,
    "nested divs": lambda n: "<div>" * n + "x",
    "paragraphs never closed": lambda n: "<p>x" * n,
    "one long tag": lambda n: "<div " + "a=1 " * n + ">",
    # html5ever checks each attribute's name against the tag's others: quadratic in one tag
    "one tag of many attributes": lambda n: (
        "<div " + "".join(f"a{i}=1 " for i in range(n // 6)) + ">x"
    ),
    "lone brackets": lambda n: "< <" * n,
    # html5ever re-opens formatting left open at each new block; other attributes each time
    # defeat its "Noah's Ark" clause (which merges only like ones): 95 KB took 7.6 s and 2.2 GB
    "formatting left open in paragraphs": lambda n: "".join(
        f'<p><b title="{i}">x</p>' for i in range(n // 20)
    ),
    "links left open in paragraphs": lambda n: "".join(
        f'<p><a href="https://x.test/{i}">x</p>' for i in range(n // 30)
    ),
    "formatting left open in divs and lists": lambda n: "".join(
        f"<div><font color=#{i:06x}><i class={i}>x</div><li><u id={i}>y" for i in range(n // 60)
    ),
    "formatting left open in table cells": lambda n: (
        "<table>" + "".join(f"<tr><td><b title={i}>x<td><s title={i}>y" for i in range(n // 40))
    ),
    "formatting left open in headings": lambda n: "".join(
        f"<h1><strong title={i}>x<h2><em id={i}>y" for i in range(n // 40)
    ),
    "formatting behind a quote that opens no value": lambda n: "".join(
        f'<i ="><p><b x={i}>x</p>">' for i in range(n // 25)
    ),
    "blocks inside inline elements": lambda n: "<span><div></span>" * (n // 18),
    "lists inside items": lambda n: "<ul><li><ul></li>" * (n // 17),
    "cells outside tables": lambda n: "<td><b id=1><caption></td></b><p>x" * (n // 36),
    # what html.parser reads again from each "<" to the end when nothing closes it
    "comment left open at the end": lambda n: "<p>x" * (2 * n) + "<!--" + "y" * n,
    "comments opened again and again": lambda n: "<!--" * (2 * n),
    "character data never closed": lambda n: "<![CDATA[" * n,
    "declarations never closed": lambda n: "<!x" * (3 * n),
    "end tags never closed": lambda n: "</a" * (3 * n),
}


def seconds(work: Callable[[], object]) -> float:
    """CPU seconds of the shortest of three runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def assert_linear(work: Callable[[int], object], n: int) -> None:
    """Work on 8n costs less than 20 times work on n, n grown (up to 8 times) until that
    takes 30 ms, so that the measure is not lost in the noise."""
    small, most = seconds(partial(work, n)), 8 * n
    while small < 0.03 and n < most:
        n *= 2
        small = seconds(partial(work, n))
    large = seconds(partial(work, 8 * n))
    assert large < 20 * small, f"n = {n}: {small:.3f} s, 8n: {large:.3f} s"


def test_paragraphs_and_line_breaks_are_kept_and_words_stay_apart():
    markup = (
        "<h1>Offer</h1><p>Dear Anna,</p><p>the <b>new</b> logo<br>is ready.<br><br>Regards</p>"
        "<div>first</div><div>second</div>one<span>word</span>"
    )
    assert html_to_text(markup) == (
        "Offer\n\nDear Anna,\n\nthe new logo\nis ready.\n\nRegards\n\nfirst\nsecond\noneword"
    )


def test_line_breaks_of_the_source_are_spaces_but_preformatted_text_keeps_its_lines():
    markup = "<p>one\ntwo   three</p><pre>a  b\n  c\n\n\n\nd</pre>"
    assert html_to_text(markup) == "one two three\n\na b\nc\n\nd"


def test_scripts_styles_comments_and_the_title_leave_no_text():
    markup = (
        "<html><head><title>Newsletter</title><style>p { color: red }</style>"
        "<script>var secret = 1;</script></head><body><!-- tracking -->"
        "<p>Visible</p><script type=text/javascript>alert('x')</script>"
        "<style>.a{}</style>also <noscript>shown without scripts</noscript></body></html>"
    )
    assert html_to_text(markup) == "Visible\n\nalso shown without scripts"


def test_character_references_are_decoded_once():
    markup = "<p>Gr&uuml;&szlig;e &amp; more: &lt;b&gt; &#8364;5&nbsp;net &amp;amp; &copy</p>"
    assert html_to_text(markup) == "Grüße & more: <b> €5 net &amp; ©"


def test_the_text_of_links_lists_and_tables_is_kept_in_order():
    markup = (
        '<p>See <a href="https://x.test/a?b=1&amp;c=2">the plan</a>.</p>'
        "<ul><li>one<li>two</ul><ol><li>three</li></ol>"
        "<table><tr><th>Name</th><th>Room</th></tr><tr><td>Anna</td><td>12</td></tr></table>"
        "<img src=cid:logo alt=Logo>after"
    )
    assert (
        html_to_text(markup) == "See the plan.\n\none\ntwo\n\nthree\n\nName Room\nAnna 12\n\nafter"
    )


def test_markup_as_a_browser_reads_it():
    assert html_to_text("1 < 2 and 3 > 2, <p>but<x") == "1 < 2 and 3 > 2,\n\nbut"  # cut: no tag
    assert html_to_text("<p>unclosed <b>bold <i>both") == "unclosed bold both"
    assert html_to_text("<div>" * 5_000 + "deep" + "</div>" * 5_000) == "deep"
    assert html_to_text("<textarea><b>typed</b></textarea>") == "<b>typed</b>"
    assert html_to_text("") == html_to_text("<br><p></p>") == ""


def test_the_text_is_bounded_and_any_input_leaves_one():
    assert len(html_to_text("<p>" + "words " * 190_000)) <= MAX_TEXT_CHARS
    cut = html_to_text("x" * MAX_HTML_CHARS + "beyond")
    assert cut == "x" * MAX_TEXT_CHARS
    assert html_to_text("<p>a\ud800b<p>c") == "a?b\n\nc"  # a lone surrogate: nh3 takes none
    for markup in ("\x00<p>\ud800", "<a " * 1000, "&" * 1000, "<!--", "<![CDATA[x", "</"):
        assert isinstance(html_to_text(markup), str)


def test_a_library_failure_leaves_the_text_with_its_tags_stripped(monkeypatch):
    def fail(*_args, **_kwargs):
        raise ValueError("a library fault")

    monkeypatch.setattr(html_text.nh3, "clean", fail)
    assert html_to_text("<p>Dear <b>Anna</b>,</p>&amp; more<x") == "Dear Anna , & more"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE_HTML))
def test_the_text_of_hostile_html_takes_linear_time(name):
    make = HOSTILE_HTML[name]
    assert_linear(lambda n: html_to_text(make(n)), 20_000)


@pytest.mark.slow
def test_a_megabyte_of_unclosed_tags_is_read_within_a_second():
    markup = "<a title=x " * 90_000  # 990 KB, one tag never ended
    assert len(markup) <= MAX_HTML_CHARS
    assert seconds(lambda: html_to_text(markup)) < 1.0
    assert html_to_text(markup) == ""


def test_the_sanitiser_takes_a_lone_surrogate_too():
    assert "a?b" in make_safe("<p>a\ud800b</p>").html.replace("\ufffd", "?")
