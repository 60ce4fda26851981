"""The search syntax of postroom: turn what a user types into a `SearchQuery`.

The parser is pure (no database); `storage.search.search` runs the result on SQLite FTS5 or
PostgreSQL with the same meaning. Terms are separated by whitespace and every term must match:

    invoice               the word anywhere: subject, text, addresses, attachment names;
                          case-insensitive
    "opening hours"       these words next to each other, in this order
    from:anna             a sender whose address or name contains "anna" (from:"Anna Schmidt")
    to:team@agency.test   a to or cc recipient whose address or name contains it
    subject:logo          the word in the subject; subject:"new logo" for a phrase
    has:attachment        entries with attachments
    is:open  is:done      the entry's status
    kind:note             inbound, outbound, note, call or system; kind:note,call for either
    project:12            project with id 12 (a value of digits only is an id)
    project:bakery        a project whose name contains the words (project:"Bakery Schmidt")
    after:2026-11-27      occurred on or after that day, from its 00:00 in the searcher's zone
    before:2026-12-01     occurred before that day's 00:00 there; the day itself is left out
    -word  -"a phrase"    NOT: leaves out entries that match; works before any filter too
                          (-from:newsletter, -is:done, -has:attachment)

Every filter has a German name too, and the value words of has:, is: and kind: German forms
(von: an: betreff: hat:anhang ist:offen ist:erledigt art:notiz projekt: nach: vor:; the table
is storage.query_aliases). They mean the English ones and may be mixed with them.

Decisions on edge cases:

* Filter names are case-insensitive (FROM:anna, Von:anna). The value follows the colon directly;
  `from: anna` is an error that says so. A quoted value may hold spaces: subject:"a b".
* A `"` always starts a phrase that runs to the next `"`; an unclosed quote is an error.
  `said"hello"` is two terms, `said` and the phrase `hello`. `""` is ignored.
* A word with a colon whose prefix is a known filter is that filter. If the prefix is a
  word but no filter (`foo:bar`, `col:`, `a:b:c`, also `Re:`), that is an error naming the
  filters and suggesting quotes, because it is most likely a misspelt filter - except when
  it looks like a URL (`https://…`, `mailto:…`, `tel:…`), which is a plain word. A colon
  after something that is not a word (`10:30`, `12:00:00`, `:-)`, `::1`) is a plain word.
* A leading `-` followed by something means NOT (so `-5` is NOT 5); a lone `-` is a word.
* Search words are literal text: FTS5 operators (AND OR NOT NEAR * ^ : ( ) + -) and SQL
  have no meaning in them. Words without any letter or digit (`*`, `--`, `';`) can match
  nothing in the index and are left out when searching; they are kept here.
* Values of from:/to: are lower-cased (stored addresses are lower-case). Text is NFC
  normalised; control characters and lone surrogates count as whitespace.
* Repeated filters all apply (after: and before: make a range; two is: give nothing).
* Limits keep the SQL small: at most MAX_QUERY_CHARS characters, MAX_TERMS terms and
  MAX_TERM_CHARS characters in one word or phrase; beyond them QuerySyntaxError.

`parse_query` raises only QuerySyntaxError (a ValueError); its message is meant for users.
`str(query)` gives a canonical text that parses back to an equal query.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from storage import query_aliases as aliases

FILTERS = aliases.ENGLISH_KEYWORDS
TEXT = "text"  # the field of plain words and phrases

MAX_QUERY_CHARS = 2000
MAX_TERMS = 30
MAX_TERM_CHARS = 300
MAX_PROJECT_ID = 2**31 - 1


def N_(message: str) -> str:
    """Marks an English message id for `pybabel extract` (babel.cfg reads this module);
    admin_ui shows a QuerySyntaxError in the reader's language from its message_id and
    values. storage imports nothing of ours, so it keeps its own copy of the mark."""
    return message


NOT_TEXT = N_("the search must be text")
TOO_LONG = N_("the search is too long (%(length)d characters) — use at most %(limit)d")
TOO_MANY = N_("the search has too many words — use at most %(limit)d words and filters")
UNCLOSED = N_('a quote is not closed — add the closing " or remove the quote')
UNKNOWN_FILTER = N_(
    'unknown filter "%(name)s:" — use from:, to:, subject:, has:attachment, is:open, is:done,'
    " kind:, project:, after:, before: (in German von:, an:, betreff:, hat:anhang, ist:offen,"
    " ist:erledigt, art:, projekt:, nach:, vor:); to search for the text itself, put it in"
    ' quotes: "%(word)s"'
)
WORD_TOO_LONG = N_("a word or phrase is too long (%(length)d characters) — use at most %(limit)d")
NO_VALUE = N_("%(name)s: needs a value right after the colon, like %(example)s")
HAS_VALUE = N_('%(name)s: only knows %(name)s:%(word)s, not "%(value)s"')
IS_VALUE = N_('%(name)s: must be %(choices)s or %(last)s, not "%(value)s"')
KIND_VALUE = N_('unknown kind "%(value)s" — use %(choices)s')
PROJECT_TOO_LARGE = N_('%(name)s: "%(value)s" is too large to be a project id')
NOT_A_DATE = N_('%(name)s: needs a date like 2026-11-27, not "%(value)s"')
NO_SUCH_DAY = N_("%(name)s: %(value)s is not a real date")

_EXAMPLES = {
    "from": "from:anna@example.com",
    "to": "to:team@example.com",
    "subject": 'subject:"new logo"',
    "has": "has:attachment",
    "is": "is:open",
    "kind": "kind:note",
    "project": 'project:"Bakery Schmidt"',
    "after": "after:2026-11-27",
    "before": "before:2026-11-27",
    "von": "von:anna@example.com",
    "an": "an:team@example.com",
    "betreff": 'betreff:"neues Logo"',
    "hat": "hat:anhang",
    "ist": "ist:offen",
    "art": "art:notiz",
    "typ": "typ:notiz",
    "projekt": 'projekt:"Bäckerei Schmidt"',
    "nach": "nach:2026-11-27",
    "vor": "vor:2026-11-27",
}

_WORD_PREFIX = re.compile(r"([^\W\d_][\w-]*):(.*)", re.DOTALL)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://|(mailto|tel|urn|news|xmpp|sip):", re.IGNORECASE)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PROJECT_ID = re.compile(r"[0-9]+")


class QuerySyntaxError(ValueError):
    """The search text cannot be understood; the message tells the user what to change.

    str() is the English message; message_id (one of the N_ ids above) and values let the
    UI say it in the reader's language: gettext(message_id) % values.
    """

    def __init__(self, message_id: str, **values):
        super().__init__(message_id % values if values else message_id)
        self.message_id = message_id
        self.values = values


@dataclass(frozen=True)
class Term:
    """One condition of a search.

    field is TEXT for plain words and phrases, else a name in FILTERS. value is the text
    (words, phrases, subject:, from:, to:, project:), "attachment" for has:, "open"/"done"
    for is:, a tuple of kinds for kind:, a datetime.date for after:/before:.
    """

    field: str
    value: str | tuple[str, ...] | dt.date
    negated: bool = False
    phrase: bool = False  # the value was quoted

    @property
    def project_id(self) -> int | None:
        """For project: the id when the value is all digits, else None (a name)."""
        if self.field == "project" and _PROJECT_ID.fullmatch(str(self.value)):
            return int(str(self.value))
        return None

    def __str__(self) -> str:
        if isinstance(self.value, dt.date):
            shown = self.value.isoformat()
        elif isinstance(self.value, tuple):
            shown = ",".join(self.value)
        else:
            shown = self.value
            if self.phrase or not shown or any(c.isspace() or c == '"' for c in shown):
                shown = '"' + shown + '"'
        prefix = "-" if self.negated else ""
        return prefix + (shown if self.field == TEXT else f"{self.field}:{shown}")


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search: every term must match."""

    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __str__(self) -> str:
        return " ".join(str(term) for term in self.terms)

    def of(self, field: str) -> tuple[Term, ...]:
        """The terms of one field (TEXT or a filter name), in the order typed."""
        return tuple(term for term in self.terms if term.field == field)


def parse_query(text: str) -> SearchQuery:
    """Parse search text (syntax in the module docstring); raise QuerySyntaxError."""
    if not isinstance(text, str):
        raise QuerySyntaxError(NOT_TEXT)
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(TOO_LONG, length=len(text), limit=MAX_QUERY_CHARS)
    text = _clean(text)
    terms: list[Term] = []
    for negated, word, quoted in _tokens(text):
        term = _term(negated, word, quoted)
        if term is None:
            continue
        terms.append(term)
        if len(terms) > MAX_TERMS:
            raise QuerySyntaxError(TOO_MANY, limit=MAX_TERMS)
    return SearchQuery(tuple(terms))


def _clean(text: str) -> str:
    """NFC-normalise; control characters and lone surrogates become spaces."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    return unicodedata.normalize("NFC", text)


def _tokens(text: str):
    """Yield (negated, text, quoted) per term; a filter with a quoted value comes as one
    token `name:` + value with quoted=True."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        if text[i] == "-" and i + 1 < n and not text[i + 1].isspace():
            negated = True
            i += 1
        if text[i] == '"':
            value, i = _quoted(text, i)
            yield negated, value, True
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        word = text[start:i]
        match = _WORD_PREFIX.fullmatch(word)
        if match and not match.group(2) and i < n and text[i] == '"':
            if aliases.keyword(match.group(1)) is None:
                raise _unknown_filter(word)
            value, i = _quoted(text, i)
            yield negated, (word, value), True
            continue
        yield negated, word, False


def _quoted(text: str, start: int) -> tuple[str, int]:
    end = text.find('"', start + 1)
    if end < 0:
        raise QuerySyntaxError(UNCLOSED)
    return text[start + 1 : end], end + 1


def _unknown_filter(word: str) -> QuerySyntaxError:
    name = word.partition(":")[0]
    return QuerySyntaxError(UNKNOWN_FILTER, name=name, word=word)


def _term(negated: bool, token, quoted: bool) -> Term | None:
    if isinstance(token, tuple):  # name: followed by a quoted value
        prefix, value = token
        return _filter(prefix[:-1].lower(), value.strip(), negated, quoted=True)
    if quoted:
        value = token.strip()
        if not value:
            return None
        _check_length(value)
        return Term(TEXT, value, negated, phrase=True)
    match = _WORD_PREFIX.fullmatch(token)
    if match:
        name = match.group(1).lower()
        if aliases.keyword(name) is not None:
            return _filter(name, match.group(2), negated, quoted=False)
        if not _URL.match(token):
            raise _unknown_filter(token)
    _check_length(token)
    return Term(TEXT, token, negated)


def _check_length(value: str) -> None:
    if len(value) > MAX_TERM_CHARS:
        raise QuerySyntaxError(WORD_TOO_LONG, length=len(value), limit=MAX_TERM_CHARS)


def _filter(name: str, value: str, negated: bool, *, quoted: bool) -> Term:
    """The term of a filter typed as `name` (English or German, lower-cased)."""
    if not value:
        raise QuerySyntaxError(NO_VALUE, name=name, example=_EXAMPLES[name])
    _check_length(value)
    field = aliases.keyword(name)
    if field in ("from", "to"):
        return Term(field, value.lower(), negated, phrase=quoted)
    if field == "subject":
        return Term(field, value, negated, phrase=quoted)
    if field == "has":
        if aliases.value(field, value) is None:
            [word] = aliases.value_words(field, name)
            raise QuerySyntaxError(HAS_VALUE, name=name, word=word, value=value)
        return Term(field, "attachment", negated)
    if field == "is":
        status = aliases.value(field, value)
        if status is None:
            *words, last = (f"{name}:{w}" for w in aliases.value_words(field, name))
            raise QuerySyntaxError(
                IS_VALUE, name=name, choices=", ".join(words), last=last, value=value
            )
        return Term(field, status, negated)
    if field == "kind":
        words = [k.strip() for k in value.split(",") if k.strip()]
        kinds = tuple(aliases.value(field, k) for k in words)
        wrong = [w for w, k in zip(words, kinds, strict=True) if k is None]
        if wrong or not kinds:
            raise QuerySyntaxError(
                KIND_VALUE,
                value=wrong[0] if wrong else value,
                choices=", ".join(f"{name}:{k}" for k in aliases.value_words(field, name)),
            )
        return Term(field, tuple(dict.fromkeys(kinds)), negated)
    if field == "project":
        if _PROJECT_ID.fullmatch(value) and int(value) > MAX_PROJECT_ID:
            raise QuerySyntaxError(PROJECT_TOO_LARGE, name=name, value=value)
        return Term(field, value, negated, phrase=quoted)
    # after, before
    if not _DATE.fullmatch(value):
        raise QuerySyntaxError(NOT_A_DATE, name=name, value=value)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise QuerySyntaxError(NO_SUCH_DAY, name=name, value=value) from None
    return Term(field, day, negated)


__all__ = ["FILTERS", "TEXT", "QuerySyntaxError", "SearchQuery", "Term", "parse_query"]
