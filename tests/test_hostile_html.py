"""Hostile markup and headers cost time linear in their size; the safe copy stays safe.

Pure logic, in-process: the text of HTML, the sanitised copy made at filing, the pass each
view makes over it, and the header readers of the ingest path, each timed on adversarial
input of size n and 8n, n grown until the work takes tens of milliseconds (linear: about 8
times as long; the bound allows 20, quadratic would be 64). Where work can be counted (the
length of what nh3 writes, the tags it gets) it is counted instead.
"""

from __future__ import annotations

import base64
import email.message
import importlib.util
import random
from collections.abc import Callable

import mailparser
import pytest

from admin_ui import mail_route
from postroom.html_scan import FORMATTING, MAX_ATTRIBUTES, VOID, _tokens
from postroom.html_text import NOT_SHOWN
from postroom.safe_html import (
    BLOCKED_IMAGE,
    MAX_DEPTH,
    MAX_FORMATTING,
    MAX_INLINE_BYTES,
    MAX_INLINE_IMAGES,
    NOTE_FLAT,
    TAGS,
    flatten,
    html_to_text,
    make_safe,
    show,
)
from smtpd_ingest.headers import ids
from smtpd_ingest.mime_parts import MAX_MIME_HEADER_CHARS
from smtpd_ingest.mime_text import decode_header, parse_params
from smtpd_ingest.parse import header_fields, parse_message
from smtpd_ingest.parser_pool import ParserPool
from tests.test_html_text import HOSTILE_HTML, assert_linear


@pytest.mark.parametrize("name", sorted(HOSTILE_HTML))
def test_sanitising_hostile_html_takes_linear_time(name):
    make = HOSTILE_HTML[name]
    assert_linear(lambda n: make_safe(make(n)), 20_000)


@pytest.mark.parametrize("name", sorted(HOSTILE_HTML))
def test_the_sanitised_copy_of_hostile_html_grows_linearly(name):
    """What html5ever builds is what nh3 writes: 8 times the markup (a few digits longer in
    places), at most 10 times the copy; quadratic growth would be 64 times."""
    make = HOSTILE_HTML[name]
    small, large = len(make_safe(make(50_000)).html), len(make_safe(make(400_000)).html)
    assert large <= 10 * small + 1_000, (small, large)


def well_formed(markup: str) -> tuple[int, int]:
    """How deep the sanitiser's input nests, and how many formatting elements it has open
    at most; fails unless every element it opens is closed by its own end tag, in order,
    and it holds only TAGS, no comment and no stray "<"."""
    stack: list[str] = []
    depth = formatting = 0
    for token in _tokens(markup):
        if token.kind == "text":
            assert "<" not in markup[token.start : token.end]
            continue
        assert token.kind in ("start", "end") and token.name in TAGS, token
        if token.kind == "end":
            assert stack.pop() == token.name
        elif token.name not in VOID:
            stack.append(token.name)
            depth = max(depth, len(stack))
            formatting = max(formatting, sum(name in FORMATTING for name in stack))
    assert not stack
    return depth, formatting


FRAGMENTS = [
    "<p>",
    "</p>",
    "<b>",
    "</b>",
    '<a href="https://x.test/">',
    "</a>",
    '<i ="',
    '">',
    "<td>",
    "</td>",
    "<tr>",
    "<table>",
    "</table>",
    "<li>",
    "<ul>",
    "</ul>",
    "<div>",
    "</div>",
    "<font color=red>",
    "</font>",
    "<h1>",
    "<h2>",
    "</h1>",
    "<script>",
    "</script>",
    "<!--",
    "-->",
    "<select>",
    "<svg>",
    "<title>",
    "</title>",
    "<br>",
    "</br>",
    "< ",
    "x",
    " ",
    "&amp;",
    "<caption>",
    "<span>",
    "</span>",
    "<b/>",
    "<u id='",
    "'>",
    "<plaintext>",
]


def test_the_sanitiser_gets_well_formed_markup_within_the_bounds():
    for name, make in HOSTILE_HTML.items():
        depth, formatting = well_formed(flatten(make(50_000))[0])
        assert depth <= MAX_DEPTH and formatting <= MAX_FORMATTING, name
    chooser = random.Random(13)
    for _ in range(3_000):
        markup = "".join(chooser.choice(FRAGMENTS) for _ in range(chooser.randint(1, 60)))
        flat, _ = flatten(markup, max_depth=12, max_formatting=3)
        depth, formatting = well_formed(flat)
        assert depth <= 12 and formatting <= 3, markup
        assert flatten(flat, max_depth=12, max_formatting=3) == (flat, False), markup
        if "<plaintext>" not in markup:  # its text holds & as it came; the copy has &amp;
            shown, _ = flatten(markup, max_depth=12, max_formatting=3, hidden=NOT_SHOWN)
            kept, text = html_to_text(shown), html_to_text(markup)  # all of it, words may join
            assert "".join(kept.split()) == "".join(text.split()), markup


def test_sixty_thousand_nested_levels_are_kept_to_the_depth_bound():
    markup = "<div>" * 60_000 + "deep text" + "</div>" * 60_000  # 660 KB, as reported
    assert len(markup) == 660_009
    safe = make_safe(markup)
    assert safe.note == NOTE_FLAT and "deep text" in safe.html
    assert safe.html.count("<div>") == MAX_DEPTH


def test_formatting_left_open_is_closed_inside_its_block_and_capped():
    markup = "".join(f'<p><b title="{i}">x{i}</p>' for i in range(4_000))  # the reported mail
    safe = make_safe(markup)
    assert safe.html.count("<b ") == 4_000 and safe.html.count("<p>") == 4_000
    assert safe.html.startswith('<p><b title="0">x0</b></p><p><b title="1">x1</b></p>')
    nested = "".join(f"<i id={i}>w{i} " for i in range(100))
    safe = make_safe(nested)
    assert safe.note == NOTE_FLAT and safe.html.count("<i>") == MAX_FORMATTING
    assert html_to_text(safe.html).split() == [f"w{i}" for i in range(100)]


def test_flattening_keeps_every_word_and_only_the_shallow_tags():
    markup = "".join(f"<div><b>w{i}</b>" for i in range(1000)) + "</div>" * 1000
    flat, changed = flatten(markup, max_depth=10)
    assert changed
    assert html_to_text(flat).split() == [f"w{i}" for i in range(1000)]
    assert flat.count("<div>") == 10 and flat.count("<b>") == 9  # ten levels: w0 to w8 bold
    assert flatten(flat, max_depth=10) == (flat, False)
    usual = "<table><tr><td><p>a<p>b<li>c<li>d<tr><td>e</table><p>f"
    assert flatten(usual, max_depth=5) == (  # unclosed elements end where a browser ends them
        "<table><tr><td><p>a</p><p>b</p><li>c</li><li>d</li></td></tr><tr><td>e</td></tr>"
        "</table><p>f</p>",
        False,
    )


def test_tags_and_text_reach_the_sanitiser_as_a_browser_reads_them():
    assert flatten('<i ="><b x=1>x</b>">')[0] == '<i ="><b x=1>x</b>"&gt;</i>'.replace(
        "&gt;", ">"
    )  # the quote opens no value: the tag ends at the first >
    assert flatten("a<script>1</script><style>p{}</style>< b<!-- c -->d")[0] == "a&lt; bd"
    assert flatten("<textarea>&amp;<b></textarea><xmp>&amp;</xmp>")[0] == "&amp;&lt;b>&amp;amp;"
    assert flatten("<select><b>x</select><svg><title><b>y</title></svg><B>z")[0] == (
        "<b>x&lt;b>y<B>z</b></b>"  # select and svg are left out, their end tags too
    )
    assert flatten("<stri\u212ae>x</stri\u212ae>")[0] == "x"  # no Kelvin sign in tag names
    many = "".join(f' a{i}="{i}"' for i in range(MAX_ATTRIBUTES))
    assert flatten(f"<p{many} title=t>x<img{many}/src=y>")[0] == f"<p{many} >x<img{many}/></p>"


def test_parse_workers_have_a_memory_limit():
    import resource

    pool = ParserPool(workers=1, timeout=30)
    try:
        soft, _ = pool._pool.submit(resource.getrlimit, resource.RLIMIT_AS).result(timeout=30)
    finally:
        pool.close()
    assert 0 < soft <= 2 << 30


def test_the_stored_copy_keeps_image_sources_that_each_view_decides_on():
    markup = (
        '<p onclick="steal()">Hi</p><img src="cid:<logo@x>" alt="logo">'
        '<img src="https://tracker.test/p.gif"><img src="data:image/svg+xml,<svg/>">'
        '<img src="javascript:alert(1)"><a href="javascript:alert(1)">x</a>'
        '<a href="data:text/html,x">y</a><a href="https://ok.test/">z</a>'
    )
    safe = make_safe(markup).html
    assert "onclick" not in safe and "javascript" not in safe and "data:text" not in safe
    assert 'src="cid:logo@x"' in safe and 'src="https://tracker.test/p.gif"' in safe
    assert "svg" not in safe and 'href="https://ok.test/"' in safe

    parts = {"logo@x": ("image/png", b"PNG")}
    shown, held_back = show(
        safe, inline_images=lambda ids: {i: parts[i] for i in ids if i in parts}
    )
    assert held_back == 1 and "tracker.test" not in shown
    assert 'src="data:image/png;base64,UE5H"' in shown and BLOCKED_IMAGE in shown
    loaded, held_back = show(safe, inline_images=lambda _ids: {}, load_remote_images=True)
    assert held_back == 0 and 'src="https://tracker.test/p.gif"' in loaded


def test_a_view_asks_for_inline_images_once_and_writes_a_bounded_page():
    """20,000 references to one 100 KB image made a 2.5 GB page with a query each."""
    image = ("image/png", b"\x89PNG" * 25_000)
    asked: list[list[str]] = []

    def inline_images(ids: list[str]) -> dict[str, tuple[str, bytes]]:
        asked.append(ids)
        return {i: image for i in ids if i.startswith("a")}

    refs = '<img src="cid:a">' * 20_000 + "".join(f'<img src="cid:n{i}">' for i in range(500))
    safe = make_safe(refs).html
    shown, held_back = show(safe, inline_images=inline_images)
    assert len(asked) == 1 and len(asked[0]) == MAX_INLINE_IMAGES and asked[0][0] == "a"
    placed = shown.count("data:image/png;base64,")
    assert placed == MAX_INLINE_BYTES // len(base64.b64encode(image[1]) + b"data:image/png;base64,")
    assert shown.count(BLOCKED_IMAGE) == 20_500 - placed and held_back == 0
    assert len(shown) < len(safe) + MAX_INLINE_BYTES + 20_500 * len(BLOCKED_IMAGE)
    assert show(safe, inline_images=lambda _ids: {})[0].count(BLOCKED_IMAGE) == 20_500


def test_image_tags_written_inside_attribute_values_are_left_alone():
    """Attribute values of the stored copy may hold "<img src=": only real tags are read."""
    markup = (
        '<a title="<img src=">x</a><img alt=\'a" src="\' src="https://t.test/a.gif">'
        "<p title=' src=\"https://evil.test/ onerror=alert(1) x'>y</p>"
    )
    safe = make_safe(markup).html
    shown, held_back = show(safe, inline_images=lambda _ids: {}, load_remote_images=True)
    assert held_back == 0
    assert shown == safe  # nothing to change: the remote image is loaded as asked
    shown, held_back = show(safe, inline_images=lambda _ids: {})
    assert held_back == 1 and shown == safe.replace("https://t.test/a.gif", BLOCKED_IMAGE)


def test_header_readers_take_linear_time_on_hostile_headers():
    # message ids with no brackets and no @: the old pattern tried every start and end
    assert_linear(lambda n: ids("a" * (20 * n)), 10_000)
    assert ids("first@x.test, @nobody second@y.test") == ("first@x.test", "second@y.test")
    # many encoded words of one charset: their bytes were added up again and again
    assert_linear(lambda n: decode_header("=?utf-8?q?ab?= " * n), 10_000)
    assert decode_header("=?utf-8?q?a?= =?utf-8?q?=C3=A4?=") == "aä"
    # the subject of mail that cannot be parsed, found in its raw bytes
    assert_linear(lambda n: header_fields(b"X: y\r\n" * n + b"Subject: " + b"s" * n), 10_000)
    raw = b"From: a\r\nsubject:  Hello\r\n  folded\tthere\r\nTo: b\r\n\r\nSubject: body"
    assert " ".join(header_fields(raw)[0].split()) == "Hello folded there"


def test_a_parsed_mail_carries_its_text_and_its_safe_html():
    html = "<div>" * 5000 + "<script>alert(1)</script>Offer attached" + "</div>" * 5000
    raw = (
        "From: a@b.test\r\nSubject: html only\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
    ).encode()
    mail = parse_message(raw)
    assert mail.text == "" and mail.html_text == "Offer attached"
    assert "Offer attached" in mail.html_safe and "script" not in mail.html_safe
    assert mail.html_note == NOTE_FLAT


def stdlib_parseparam() -> Callable[[str], list[str]]:
    """The email package's own parameter splitter, from a fresh copy of its module."""
    spec = importlib.util.spec_from_file_location("stdlib_message", email.message.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._parseparam


def test_parameters_are_split_as_the_email_package_does_in_linear_time():
    original = stdlib_parseparam()
    long_type = "text/plain" + "; a=b" * (MAX_MIME_HEADER_CHARS // 5)  # read by compat32
    parse_message(f"Content-Type: {long_type}\r\n\r\nbody\r\n".encode())
    assert email.message._parseparam is parse_params  # what the email package calls from then on
    chooser = random.Random(13)
    for _ in range(20_000):
        text = "".join(chooser.choice(';"\\= aB\t') for _ in range(chooser.randint(0, 14)))
        assert parse_params(text) == original(text), text
    header = 'text/plain; name="a;b"; charset=UTF-8; x="\\";"; ;'
    assert parse_params(header) == original(header)
    assert_linear(lambda n: parse_params('text/plain; a="' + "; " * n), 20_000)
    assert_linear(lambda n: parse_params("text/plain" + "; a=b" * n), 20_000)


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/mixed; boundary="' + "; " * 20_000,  # the parser asks for the boundary
        "text/plain" + "; a=b" * 20_000,
        "text/plain" + "".join(f"; name*{i}*=x" for i in range(5_000)),
    ],
)
def test_a_hostile_content_type_is_read_in_linear_time(content_type):
    def parse(n: int) -> object:
        scale = content_type[: len(content_type) * n // 20_000]
        return parse_message(f"From: a@b.test\r\nContent-Type: {scale}\r\n\r\nbody".encode())

    assert_linear(parse, 5_000)


def test_addresses_nested_beyond_the_recursion_limit_leave_the_mail_readable():
    raw = "From: " + "(" * 5000 + "\r\nTo: " + "a:" * 5000 + "\r\nSubject: deep\r\n\r\nhi"
    mail = parse_message(raw.encode())
    assert mail.subject == "deep" and mail.from_ is None and mail.text == "hi"
    assert [warning.item for warning in mail.warnings] == ["From", "To"]


def test_received_headers_reach_mail_parser_bounded(monkeypatch):
    """mail-parser's reading of a Received header grows with the square of its length (a
    search per clause): it gets at most MAX_HOPS of them, each cut to MAX_RECEIVED bytes."""
    given: list[bytes] = []
    parse = mailparser.parse_from_bytes
    monkeypatch.setattr(mailparser, "parse_from_bytes", lambda raw: given.append(raw) or parse(raw))
    reported = b"Received: from x by y (" + b"envelope-from <a " * 3700 + b")\r\n"  # 63 KB
    hostile = [
        reported * 4,  # 4 times the reported size, in 4 headers
        b"Received: from x by y (" + b"envelope-from <a " * 4 * 3700 + b")\r\n",  # in one
        b"Received: from x by y (" + b"envelope-from\r\n <a" * 4 * 3500 + b")\r\n",  # folded
        b"Received: from a by b with ESMTP id x; Mon, 1 Jan 2024 00:00:00 +0000\r\n" * 4000,
    ]
    for head in hostile:
        mail_route.hops(head + b"Subject: x\r\n\r\nbody")
    assert len(given) == len(hostile)
    for raw in given:
        fields = raw.split(b"\r\nReceived:")
        assert len(fields) <= mail_route.MAX_HOPS
        assert all(len(field) <= mail_route.MAX_RECEIVED + 4 for field in fields)
        assert len(raw) <= mail_route.MAX_HOPS * (mail_route.MAX_RECEIVED + 4)
    usual = b"".join(
        b"Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\r\n"
        b"\tby in.example.net (Postfix) with ESMTPS id A%d\r\n"
        b"\tfor <x@y.test>; Mon, 1 Jan 2024 00:00:0%d +0000\r\n" % (i, i, i, i, i)
        for i in (2, 1)
    )
    found = mail_route.hops(usual + b"Received: late\r\nSubject: x\r\n\r\nReceived: body")
    assert [(hop.sender, hop.receiver, hop.protocol) for hop in found] == [
        ("mx1.example.org (mx1.example.org [192.0.2.1])", "in.example.net (Postfix)", "ESMTPS"),
        ("mx2.example.org (mx2.example.org [192.0.2.2])", "in.example.net (Postfix)", "ESMTPS"),
    ]
