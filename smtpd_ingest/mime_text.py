"""Decode mail bytes and header values to text without losing letters or leaking surrogates."""

from __future__ import annotations

import base64
import binascii
import codecs
import email.message
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from charset_normalizer import from_bytes

# Codecs that are "text encodings" to Python but must never be applied to mail bytes:
# they interpret backslashes or dots, always fail, or can produce lone surrogates.
_REFUSED_CODECS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)

# Declared charsets replaced by the superset that senders really use (as browsers do).
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "tis-620": "cp874",
    "iso8859-9": "cp1254",
    "big5": "big5hkscs",
}

# Declared single-byte Western charsets; bytes that are valid UTF-8 beyond ASCII win over them.
_WESTERN = frozenset({"ascii", "iso8859-1", "iso8859-15", "cp1252"})

# What charset-normalizer may answer, most common in mail first; equally good answers (the
# rule for short text) go to the earliest. DOS and Mac code pages are left out on purpose.
_GUESS_CANDIDATES = [
    "cp1252",
    "gb18030",
    "cp932",
    "euc_jp",
    "big5",
    "cp949",
    "cp1251",
    "koi8_r",
    "koi8_u",
    "cp1250",
    "iso8859_2",
    "cp1253",
    "iso8859_7",
    "cp1254",
    "cp1256",
    "cp1255",
    "cp1257",
    "cp874",
    "iso8859_5",
]
_GUESS_RANK = {name: rank for rank, name in enumerate(_GUESS_CANDIDATES)}

# Non-ASCII characters that Western European text read as cp1252 is made of.
_WESTERN_LETTERS = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿŠšŽžŒœŸ"
_WESTERN_MARKS = "€‚„…•–—‘’“”™«»°©®·§£¡¿½\xa0"
_NOT_WESTERN = re.compile(f"[^\\x00-\\x7f{_WESTERN_LETTERS}{_WESTERN_MARKS}]")
_NON_ASCII_RUN = re.compile("[^\\x00-\\x7f]{3}")

_SURROGATES = re.compile("[\ud800-\udfff]")
_NON_ASCII = re.compile("[^\x00-\x7f\ud800-\udfff]")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_LINE_BREAK = re.compile(rb"[\r\n]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BASE64_LETTERS = re.compile(r"[A-Za-z0-9+/]*")


def scrub(text: str) -> str:
    """Replace any lone surrogate with U+FFFD so the text is valid Unicode."""
    return _SURROGATES.sub("\ufffd", text)


# C0 (tab and line breaks included), DEL, C1 (ESC is C0): none belongs in a one-line value.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # and the two line separators


def one_line(text: str) -> str:
    """A subject, name or filename as one line: every run of control characters (C0 with
    tab and line breaks, DEL, C1, U+2028/9) becomes one space, lone surrogates U+FFFD, ends
    trimmed."""
    return _CONTROLS.sub(" ", scrub(text)).strip()


def raw_bytes(value: object) -> bytes:
    """Return the original octets of a header value the stdlib holds with surrogateescape."""
    text = value if isinstance(value, str) else str(value)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate outside the escape range: not from the wire
        return scrub(text).encode("utf-8")


def codec_name(charset: str | None) -> str | None:
    """Return the Python codec to decode a declared charset with, or None if unusable."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").strip()
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _REFUSED_CODECS:
        return None
    return _SUPERSETS.get(info.name, info.name)  # bytes-to-bytes codecs fail when decoding


def guess_decode(data: bytes) -> str:
    """Decode unlabelled bytes: UTF-8, Western cp1252, charset-normalizer's guess, latin-1.

    UTF-8 may carry a few stray bytes (read as cp1252). charset-normalizer comes after cp1252
    because on short text such as a name or a subject it often answers Farsi or Greek code
    pages for plain German; its equally good answers go to the charset most common in mail.
    """
    if not data:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = _mostly_utf8(data)
    if text is not None:
        return text
    western = codecs.charmap_decode(data, "strict", _CP1252_OR_LATIN1)[0]
    if _looks_western(western):
        return western
    return _normalizer_guess(data) or western


def _looks_western(text: str) -> bool:
    """Tell whether cp1252-decoded text reads like a Western European language."""
    return not _NOT_WESTERN.search(text) and not _NON_ASCII_RUN.search(text)


def _mostly_utf8(data: bytes) -> str | None:
    """Decode bytes that are UTF-8 with a few stray bytes, reading each stray byte as cp1252."""
    text = data.decode("utf-8", "surrogateescape")
    stray = len(_SURROGATES.findall(text))
    if len(_NON_ASCII.findall(text)) <= stray:
        return None
    return _SURROGATES.sub(lambda m: _CP1252_OR_LATIN1[ord(m.group()) - 0xDC00], text)


def _byte_char(byte: int) -> str:
    """Read one byte as cp1252, or as latin-1 where cp1252 leaves it undefined."""
    try:
        return bytes((byte,)).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


# A decoding table: every byte as cp1252, the five bytes cp1252 leaves undefined as latin-1.
_CP1252_OR_LATIN1 = "".join(_byte_char(byte) for byte in range(256))


MAX_GUESSES = 200  # charset-normalizer calls per mail (each about 0.15 ms on a short text)
_GUESSES: ContextVar[list[int] | None] = ContextVar("guesses", default=None)


@contextmanager
def guess_budget(guesses: int = MAX_GUESSES) -> Iterator[None]:
    """Within: at most `guesses` charset-normalizer calls; past them unlabelled text is read
    as cp1252 (a mail of thousands of encoded words, each in another unknown charset)."""
    token = _GUESSES.set([guesses])
    try:
        yield
    finally:
        _GUESSES.reset(token)


def _normalizer_guess(data: bytes) -> str | None:
    """Ask charset-normalizer; among equally good answers take the most common charset."""
    left = _GUESSES.get()
    if left is not None:
        if left[0] <= 0:
            return None
        left[0] -= 1
    try:
        matches = list(from_bytes(data, cp_isolation=_GUESS_CANDIDATES))
        if not matches:
            return None
        encoding = min(
            (round(match.chaos, 2), _GUESS_RANK.get(name, len(_GUESS_RANK)), name)
            for match in matches
            for name in [match.encoding, *match.could_be_from_charset]
        )[2]
        text = data.decode(encoding)
    except Exception:  # noqa: BLE001 - a detector failure only means "no guess"
        return None
    return None if _SURROGATES.search(text) else text


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode bytes with the declared charset, falling back to a guess when it does not fit."""
    if not data:
        return ""
    codec = codec_name(charset)
    if codec is None:
        return guess_decode(data)
    if codec in _WESTERN:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if not text.isascii():
                return text
    try:
        text: str | None = data.decode(codec)
    except (UnicodeError, LookupError, ValueError, TypeError):
        text = None
    if codec.startswith("iso2022_jp") and (text is None or "\x1b" in text):
        return _jis_as_cp932(data)  # refused, or escape sequences left in the text
    if text is None or _SURROGATES.search(text):
        return guess_decode(data)
    return text


_JIS_ESCAPE = re.compile(rb"\x1b(\$[@B]|\$\(D|\([BJI])")


def _jis_as_cp932(data: bytes) -> str:
    """Decode ISO-2022-JP that Python's codecs refuse, as mail readers do: the JIS X 0208
    pairs through Microsoft's code page 932, which also has the NEC and IBM extensions
    (circled digits, Roman numerals) that senders' ISO-2022-JP carries. Escape sequences
    switch sets and are never text; a byte that still fits nothing becomes U+FFFD."""
    pieces: list[str] = []
    double = False
    position = 0
    for match in _JIS_ESCAPE.finditer(data):
        pieces.append(_jis_run(data[position : match.start()], double))
        double = match.group(1).startswith(b"$")
        position = match.end()
    pieces.append(_jis_run(data[position:], double))
    return "".join(pieces).replace("\x1b", "\ufffd")


def _jis_run(run: bytes, double: bool) -> str:
    """One run between escape sequences: ASCII, or JIS pairs turned into Shift_JIS."""
    if not double:
        return run.decode("ascii", "replace")
    shifted = bytearray()
    for at in range(0, len(run) - 1, 2):
        high, low = run[at], run[at + 1]
        if not (0x21 <= high <= 0x7E and 0x21 <= low <= 0x7E):
            shifted += b"\x81\x48"  # a full-width question mark
            continue
        shifted.append((high + 1) // 2 + (0x70 if high <= 0x5E else 0xB0))
        if high % 2:
            shifted.append(low + (0x1F if low <= 0x5F else 0x20))
        else:
            shifted.append(low + 0x7E)
    return shifted.decode("cp932", "replace")


def unfold(value: object) -> bytes:
    """Return a header value's octets with folding removed and stray line breaks as spaces."""
    data = _FOLD.sub(b"", raw_bytes(value))
    return _LINE_BREAK.sub(b" ", data).strip()


def header_text(value: object) -> str:
    """Return a header value as text with 8-bit bytes guessed but encoded words left as is."""
    if value is None:
        return ""
    return scrub(guess_decode(unfold(value)))


MAX_DECODED_SOURCE = 16_384  # characters of a header decoded as text; more is no subject


def decode_header(value: object) -> str:
    """Decode a raw header value: unfold, guess 8-bit bytes, decode RFC 2047 encoded words;
    of a longer value (a subject is stored to 998 characters) the first MAX_DECODED_SOURCE."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return decode_words(header_text(text[:MAX_DECODED_SOURCE])).strip()


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words in text, joining adjacent words of the same charset."""
    if "=?" not in text:
        return text
    pieces: list[str | tuple[str, list[bytes]]] = []  # words: (charset, their octets)
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            continue
        between = text[position : match.start()]
        previous_is_word = bool(pieces) and isinstance(pieces[-1], tuple)
        if between and not (previous_is_word and between.isspace()):
            pieces.append(between)
        charset = match.group(1).split("*", 1)[0].lower()
        last = pieces[-1] if pieces else None
        if isinstance(last, tuple) and last[0] == charset:
            last[1].append(data)  # joined once at the end: adding up bytes would be quadratic
        else:
            pieces.append((charset, [data]))
        position = match.end()
    pieces.append(text[position:])
    return scrub(
        "".join(p if isinstance(p, str) else decode_bytes(b"".join(p[1]), p[0]) for p in pieces)
    )


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    """Return the octets an encoded word carries, or None if it cannot be decoded."""
    if encoding in "bB":
        letters = payload.strip().rstrip("=")
        if not _BASE64_LETTERS.fullmatch(letters) or len(letters) % 4 == 1:
            return None  # a stray character would shift every bit after it: keep the word
        return base64.b64decode(letters + "=" * (-len(letters) % 4))  # padding may be missing
    try:
        return binascii.a2b_qp(payload.encode("utf-8", "surrogateescape"), header=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


_PARAM_MARKS = re.compile(r'[;"]')  # one character class: linear


def parse_params(value: object) -> list[str]:
    """Split a header's parameters as email.message._parseparam does, in linear time.

    The stdlib's copies the rest of the header for every parameter and counts the quotes
    from the start again for every ";" inside quotes: quadratic (an 80 KB Content-Type took
    4 s on Python 3.11). The email package calls it for every get_param(), so parse.py
    puts this one in its place (`use_linear_params`).
    """
    text = str(value)
    params = []
    start = 0
    odd = False  # inside quotes: an odd number of quotes not after a backslash so far
    for mark in _PARAM_MARKS.finditer(text):
        at = mark.start()
        if text[at] == '"':
            if not (at > start and text[at - 1] == "\\"):
                odd = not odd
        elif not odd:
            params.append(text[start:at])
            start, odd = at + 1, False
    params.append(text[start:])
    return [_tidy_param(param) for param in params]


def _tidy_param(param: str) -> str:
    if "=" in param:
        name, _, value = param.partition("=")
        param = name.strip().lower() + "=" + value.strip()
    return param.strip()


def use_linear_params() -> None:
    """Make the email package split parameters with parse_params (whatever its version)."""
    email.message._parseparam = parse_params
