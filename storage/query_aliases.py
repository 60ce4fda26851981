"""German words of the search syntax, next to the English ones (storage.query).

A German keyword means its English one, whatever the rest of the query is written in:
`von:anna betreff:Angebot ist:offen` is `from:anna subject:Angebot is:open`, and
`from:anna ist:offen` works too. The value words of has:, is: and kind: have German forms
as well, accepted after either keyword (`is:offen`, `ist:open`). Keywords and value words
are case-insensitive like the English ones; every other value (a sender, a subject word, a
project name, a date) is searched as typed, umlauts and ß included.

    von:       from:         an:        to:          betreff:   subject:
    hat:anhang has:attachment (also hat:anhänge)
    ist:offen  is:open (also ist:unerledigt)      ist:erledigt is:done
    art:       kind: (also typ:), with eingehend, ausgehend, notiz (also intern),
               anruf, system for inbound, outbound, note, call, system
    projekt:   project:      nach:      after:       vor:       before:

The words follow the German product text the project recreates: *Erledigt* and
*unerledigt* for the status, *Betreff*, *Anhang*, *Intern* for a note. The parser reads the
tables with dictionary look-ups only (no pattern matching on the user's text).
"""

from __future__ import annotations

from storage.models import ENTRY_KINDS, ENTRY_STATUSES

# every keyword of the syntax, in the order the help lists them
ENGLISH_KEYWORDS = ("from", "to", "subject", "has", "is", "kind", "project", "after", "before")

# German keyword -> English keyword; the first German word of each is the one shown in help
GERMAN_KEYWORDS = {
    "von": "from",
    "an": "to",
    "betreff": "subject",
    "hat": "has",
    "ist": "is",
    "art": "kind",
    "typ": "kind",
    "projekt": "project",
    "nach": "after",
    "vor": "before",
}

# English keywords deliberately without a German alias (none so far); a keyword added to the
# syntax must get a German alias above or be listed here (tests/test_search_aliases.py)
WITHOUT_GERMAN_ALIAS: frozenset[str] = frozenset()

# the English value words of the keywords that take a fixed set of values
ENGLISH_VALUES = {
    "has": {"attachment": "attachment", "attachments": "attachment"},
    "is": {status: status for status in ENTRY_STATUSES},
    "kind": {kind: kind for kind in ENTRY_KINDS},
}

# English value -> its German words, the first one shown in help and messages
GERMAN_VALUES = {
    "has": {"attachment": ("anhang", "anhänge")},
    "is": {"open": ("offen", "unerledigt"), "done": ("erledigt",)},
    "kind": {
        "inbound": ("eingehend",),
        "outbound": ("ausgehend",),
        "note": ("notiz", "intern"),
        "call": ("anruf",),
        "system": ("system",),
    },
}

_KEYWORDS = {name: name for name in ENGLISH_KEYWORDS} | GERMAN_KEYWORDS
_VALUES = {
    field: dict(english)
    | {word: value for value, words in GERMAN_VALUES[field].items() for word in words}
    for field, english in ENGLISH_VALUES.items()
}


def keyword(name: str) -> str | None:
    """The English keyword a typed keyword (either language, any case) means, else None."""
    return _KEYWORDS.get(name.lower())


def is_german(name: str) -> bool:
    """Whether a typed keyword is a German one (messages then answer in its words)."""
    return name.lower() in GERMAN_KEYWORDS


def value(field: str, word: str) -> str | None:
    """The English value a typed value word of has:/is:/kind: means, else None."""
    return _VALUES[field].get(word.lower())


def value_words(field: str, name: str) -> tuple[str, ...]:
    """The values of has:/is:/kind: to suggest to someone who typed the keyword `name`."""
    if is_german(name):
        return tuple(words[0] for words in GERMAN_VALUES[field].values())
    return tuple(dict.fromkeys(ENGLISH_VALUES[field].values()))


def german_keyword(field: str) -> str | None:
    """The German keyword shown for an English one, or None if it has none."""
    return next((german for german, english in GERMAN_KEYWORDS.items() if english == field), None)


__all__ = [
    "ENGLISH_KEYWORDS",
    "ENGLISH_VALUES",
    "GERMAN_KEYWORDS",
    "GERMAN_VALUES",
    "WITHOUT_GERMAN_ALIAS",
    "german_keyword",
    "is_german",
    "keyword",
    "value",
    "value_words",
]
