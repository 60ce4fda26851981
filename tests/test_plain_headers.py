"""Wherever the plain readers (smtpd_ingest/plain_headers.py) answer, the header registry of
`email.policy.default` answers the same (names: where they are ASCII or well-formed UTF-8
encoded words); on plain headers they answer at all."""

from __future__ import annotations

import base64
import time
from email.policy import default

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smtpd_ingest import plain_headers

SETTINGS = settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ATOM = st.text("abcXYZ019!#$%&'*+/=^_`{|}~-", min_size=1, max_size=8)  # no "?": "=?" is not plain
WORD = st.text("abcXYZ019!#$%&'*+.^_`{|}~-", min_size=1, max_size=8)
QUOTED = st.text("abc ,;:<>@.()[]'\t", max_size=10).map(lambda t: f'"{t}"')
QUOTED_NAME = st.text("abc ,<>@.[]'\t", max_size=10).map(lambda t: f'"{t}"')  # no : ; ( )
BLANK = st.sampled_from(["", " ", "  ", "\t"])
# characters that make a header not plain, or plain in a way worth a look
NOISE = st.text("aZ0 \t\"\\()<>@,;:.=?*'/\u00e4\u00a0\x85\r\n", max_size=40)
NAME_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)


def registry_addresses(text: str) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in default.header_factory("to", text).addresses]


def registry_mime(name: str, text: str) -> tuple[str, dict[str, str]]:
    header = default.header_factory(name, text)
    value = header.content_type if name == "content-type" else header.content_disposition
    return value, {k.lower(): v for k, v in header.params.items()}


@st.composite
def address_lists(draw) -> str:
    items = []
    for _ in range(draw(st.integers(1, 4))):
        spec = ".".join(draw(st.lists(ATOM, min_size=1, max_size=2))) + "@" + draw(ATOM)
        shape = draw(st.sampled_from(["bare", "phrase", "quoted", "angle"]))
        if shape == "bare":
            items.append(draw(BLANK) + spec + draw(BLANK))
        elif shape == "angle":
            items.append(f"{draw(BLANK)}<{spec}>{draw(BLANK)}")
        else:
            words = draw(st.lists(ATOM, min_size=1, max_size=3))
            name = draw(QUOTED_NAME) if shape == "quoted" else draw(BLANK).join(words) or words[0]
            items.append(f"{draw(BLANK)}{name}{draw(BLANK)}<{spec}>{draw(BLANK)}")
    return ",".join(items)


@st.composite
def encoded_names(draw) -> str:
    """A list of one or two mailboxes whose names are encoded words (UTF-8, B or Q)."""
    items = []
    for _ in range(draw(st.integers(1, 2))):
        data = draw(NAME_TEXT).encode()
        if draw(st.booleans()):
            word = "=?utf-8?b?" + base64.b64encode(data).decode() + "?="
        else:
            word = "=?UTF-8?Q?" + "".join(f"={b:02X}" for b in data) + "?="
        prefix = draw(st.sampled_from(["", "Anna ", "M\u00fcller "]))
        items.append(f"{prefix}{word} <{draw(ATOM)}@{draw(ATOM)}>")
    return ", ".join(items)


@st.composite
def mime_headers(draw) -> str:
    value = f"{draw(WORD)}/{draw(WORD)}" if draw(st.booleans()) else draw(WORD)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.text("abcNAME-_", min_size=1, max_size=6))
        param = draw(st.one_of(WORD, QUOTED))
        value += f";{draw(BLANK)}{name}{draw(BLANK)}={draw(BLANK)}{param}{draw(BLANK)}"
    return value + draw(st.sampled_from(["", ";", "; "]))


@SETTINGS
@given(address_lists())
@example('Anna   Miller <anna@bakery.example>, "Miller, Anna" <a@b.example>, c@d.example')
def test_plain_address_lists_read_as_the_registry_reads_them(text):
    assert plain_headers.addresses(text) == registry_addresses(text)


@SETTINGS
@given(st.one_of(address_lists(), NOISE, st.builds(str.__add__, address_lists(), NOISE)))
def test_where_the_address_reader_answers_the_registry_agrees(text):
    found = plain_headers.addresses(text)
    if found is not None:
        assert found == registry_addresses(text)


@SETTINGS
@given(encoded_names())
def test_encoded_and_8bit_names_read_as_the_registry_reads_them(text):
    registry = default.header_factory("to", text)
    if not registry.defects:
        assert plain_headers.addresses(text) == registry_addresses(text)


@SETTINGS
@given(st.one_of(mime_headers(), NOISE, st.builds(str.__add__, mime_headers(), NOISE)))
@example('text/plain; charset="utf-8"; format=flowed')
@example('multipart/mixed; boundary="----=_Part_1"; charset=a; charset=b')
@example('attachment; filename="Rechnung 2026.pdf"')
def test_where_the_mime_readers_answer_the_registry_agrees(text):
    for name, reader in (
        ("content-type", plain_headers.content_type),
        ("content-disposition", plain_headers.disposition),
    ):
        found = reader(text)
        if found is not None:
            assert found == registry_mime(name, text), name


@pytest.mark.parametrize(
    "text, reader",
    [
        ('text/plain; charset="utf-8"', plain_headers.content_type),
        ("attachment; filename=a.pdf", plain_headers.disposition),
        ('Anna Miller <anna@bakery.example>, "B, C" <b@c.example>', plain_headers.addresses),
    ],
)
def test_the_plain_shape_is_answered_without_the_registry(text, reader):
    assert reader(text) is not None


def best_of(work, text: str) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        work(text)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "text/plain" + "; a=b" * n + "; a",
        lambda n: 'text/plain; a="' + "x" * n,
        lambda n: "attachment" + "; a=b" * n + ";;",
        lambda n: "a@b.c, " * n + "<",
        lambda n: "Anna " * n + "<a@b",
        lambda n: "a." * n + "@",
    ],
)
def test_the_plain_readers_take_linear_time_on_what_they_refuse(make):
    small, large = make(20_000), make(160_000)  # 8 times as long: at most 8 times the time
    for reader in (plain_headers.content_type, plain_headers.disposition, plain_headers.addresses):
        assert reader(small) is None
        assert best_of(reader, large) < 20 * max(best_of(reader, small), 1e-4), reader.__name__
