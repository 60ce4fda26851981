"""German search keywords: the same queries as the English ones, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html
import random
from urllib.parse import quote

import pytest

from domain import projects as domain_projects
from domain.entries import add_manual_entry, set_done
from domain.languages import set_user_language
from storage import accounts
from storage import query as query_module
from storage import query_aliases as aliases
from storage.models import ENTRY_KINDS, ENTRY_STATUSES
from storage.query import FILTERS, TEXT, QuerySyntaxError, Term, parse_query
from storage.search import search
from tests.test_search_syntax import store
from tests.test_ui_projects import pdf, receive
from tests.test_ui_protocol import shown

# a value for each keyword, to parse it with
SAMPLE = {
    "from": "anna",
    "to": "team",
    "subject": "Angebot",
    "has": "attachment",
    "is": "open",
    "kind": "note",
    "project": "12",
    "after": "2026-11-27",
    "before": "2026-12-01",
}

# --- the table -------------------------------------------------------------------------------


def test_every_english_keyword_has_a_german_alias_unless_listed_without_one():
    assert set(SAMPLE) == set(FILTERS)  # a new keyword needs a sample here too
    german = set(aliases.GERMAN_KEYWORDS.values())
    missing = [name for name in FILTERS if name not in german | aliases.WITHOUT_GERMAN_ALIAS]
    assert missing == []
    assert german <= set(FILTERS)  # every alias names a keyword the parser knows
    assert not set(aliases.GERMAN_KEYWORDS) & set(FILTERS)  # no word means two things
    assert aliases.WITHOUT_GERMAN_ALIAS.issubset(FILTERS)


@pytest.mark.parametrize(("german", "english"), sorted(aliases.GERMAN_KEYWORDS.items()))
def test_each_german_keyword_means_its_english_one_in_any_case(german, english):
    value = SAMPLE[english]
    expected = parse_query(f"{english}:{value}")
    assert parse_query(f"{german}:{value}") == expected
    assert parse_query(f"{german.upper()}:{value}") == expected
    assert parse_query(f"{german.capitalize()}:{value}") == expected
    assert parse_query(f"-{german}:{value}").terms[0].negated
    assert aliases.german_keyword(english) in aliases.GERMAN_KEYWORDS


def test_every_english_value_word_has_a_german_one():
    english = {
        "has": {"attachment"},
        "is": set(ENTRY_STATUSES),
        "kind": set(ENTRY_KINDS),
    }
    assert set(aliases.GERMAN_VALUES) == set(english)
    for field, values in english.items():
        assert set(aliases.GERMAN_VALUES[field]) == values, field
        assert all(aliases.GERMAN_VALUES[field].values()), field


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [
        (field, value, word)
        for field, table in sorted(aliases.GERMAN_VALUES.items())
        for value, words in table.items()
        for word in words
    ],
)
def test_each_german_value_word_means_its_english_value_after_either_keyword(field, value, word):
    expected = (value,) if field == "kind" else value
    for name in (field, aliases.german_keyword(field)):
        for typed in (word, word.upper(), word.capitalize()):
            assert parse_query(f"{name}:{typed}").terms == (Term(field, expected),)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("von:Anna@Bakery.TEST", Term("from", "anna@bakery.test")),
        ('VON:"Anna Schmidt"', Term("from", "anna schmidt", phrase=True)),
        ("an:team", Term("to", "team")),
        ('betreff:"neues Angebot"', Term("subject", "neues Angebot", phrase=True)),
        ("Betreff:Grüße", Term("subject", "Grüße")),
        ("betreff:STRAßE", Term("subject", "STRAßE")),
        ("von:Jürgen", Term("from", "jürgen")),
        ("hat:anhang", Term("has", "attachment")),
        ("hat:Anhänge", Term("has", "attachment")),
        ("ist:offen", Term("is", "open")),
        ("ist:unerledigt", Term("is", "open")),
        ("ist:ERLEDIGT", Term("is", "done")),
        ("-ist:erledigt", Term("is", "done", negated=True)),
        ("art:notiz,anruf,note", Term("kind", ("note", "call"))),
        ("art:intern", Term("kind", ("note",))),
        ("typ:eingehend,outbound", Term("kind", ("inbound", "outbound"))),
        ("projekt:12", Term("project", "12")),
        ('projekt:"Bäckerei Schmidt"', Term("project", "Bäckerei Schmidt", phrase=True)),
        ("nach:2026-11-27", Term("after", dt.date(2026, 11, 27))),
        ("vor:2026-12-01", Term("before", dt.date(2026, 12, 1))),
        ('"von:anna"', Term(TEXT, "von:anna", phrase=True)),  # quoted: the text itself
        ("anhang", Term(TEXT, "anhang")),
    ],
)
def test_german_filters_parse_to_the_english_terms(text, term):
    assert parse_query(text).terms == (term,)


def test_a_german_query_prints_as_the_english_one_and_parses_back():
    text = 'von:anna betreff:"neues Angebot" ist:offen -hat:anhang art:notiz nach:2026-11-27'
    query = parse_query(text)
    assert str(query) == (
        'from:anna subject:"neues Angebot" is:open -has:attachment kind:note after:2026-11-27'
    )
    assert parse_query(str(query)) == query


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("von:", "von: needs a value right after the colon, like von:anna@example.com"),
        ("von: anna", "von: needs a value"),
        ("ist:geschlossen", 'ist: must be ist:offen or ist:erledigt, not "geschlossen"'),
        ("is:geschlossen", 'is: must be is:open or is:done, not "geschlossen"'),
        ("hat:pdf", 'hat: only knows hat:anhang, not "pdf"'),
        ("art:mail", 'unknown kind "mail" — use art:eingehend, art:ausgehend, art:notiz'),
        ("nach:morgen", 'nach: needs a date like 2026-11-27, not "morgen"'),
        ("vor:27.11.2026", "vor: needs a date like 2026-11-27"),
        ("nach:2026-02-30", "nach: 2026-02-30 is not a real date"),
        ("projekt:99999999999999999999999", 'projekt: "99999999999999999999999" is too large'),
        ("bis:2026-12-01", 'unknown filter "bis:"'),
        ("bis:2026-12-01", "(in German von:, an:, betreff:, hat:anhang, ist:offen"),
        ('für:"x"', 'unknown filter "für:"'),
    ],
)
def test_mistakes_with_german_keywords_are_answered_in_their_words(text, message):
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "text", ["x" * 2001, "a " * 31, '"a', "foo:x", "x" * 301, "von:", "hat:x", "ist:x", "art:x"]
)
def test_a_mistake_carries_its_message_id_and_values_for_the_ui_to_translate(text):
    ids = {v for n, v in vars(query_module).items() if n.isupper() and isinstance(v, str)}
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert caught.value.message_id in ids
    assert str(caught.value) == caught.value.message_id % caught.value.values
    assert QuerySyntaxError(query_module.UNCLOSED).values == {}


def test_random_german_input_raises_nothing_but_query_syntax_error():
    rng = random.Random(18)
    alphabet = [
        *'ab "-:,\u00e4\u00df\x00',
        *(f"{name}:" for name in aliases.GERMAN_KEYWORDS),
        *(word for table in aliases.GERMAN_VALUES.values() for ws in table.values() for word in ws),
        "2026-11-27",
    ]
    parsed = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        try:
            query = parse_query(text)
        except QuerySyntaxError:
            continue
        parsed += 1
        assert parse_query(str(query)) == query
    assert parsed > 300


# --- search on both backends -----------------------------------------------------------------


@pytest.fixture
def offers(storage_db):
    """Offers (Angebote) from Anna and others, open and done, one from Jürgen Weiß."""
    account = accounts.create_account("Agentur")
    bakery = domain_projects.create_project(account.id, "Bäckerei Schmidt")
    anna = {"sender": "anna@bakery.test", "name": "Anna Schmidt"}
    ids = {
        "relaunch": store(
            account.id,
            "Angebot Relaunch",
            project=bakery.id,
            **anna,
            to=["team@agentur.test"],
            when=dt.datetime(2026, 11, 20, 10, 0),
        ),
        "logo": store(
            account.id,
            "Angebot Logo",
            project=bakery.id,
            **anna,
            when=dt.datetime(2026, 11, 21, 10, 0),
            status="done",
        ),
        "shop": store(
            account.id, "Angebot Shop", sender="bob@shop.test", when=dt.datetime(2026, 11, 22)
        ),
        "question": store(
            account.id,
            "Rückfrage",
            project=bakery.id,
            **anna,
            text="Noch eine Frage zum Angebot",
            when=dt.datetime(2026, 11, 23, 10, 0),
        ),
        "new": store(
            account.id,
            "Neues Angebot",
            **anna,
            when=dt.datetime(2026, 11, 28, 10, 0),
        ),
        "weiss": store(
            account.id,
            "Grüße zum Angebot",
            sender="j.weiss@example.test",
            name="Jürgen Weiß",
            text="Die Maße der Straße stehen im Anhang",
            attachment="Maßband.pdf",
            when=dt.datetime(2026, 11, 29, 10, 0),
        ),
        "note": store(
            account.id,
            "Anruf notiert",
            project=bakery.id,
            text="Anna hat angerufen",
            when=dt.datetime(2026, 11, 30, 10, 0),
            kind="note",
            status="done",
        ),
    }
    return account, ids


def found(offers, text) -> list[str]:
    account, ids = offers
    names = {v: k for k, v in ids.items()}
    return [names[e.id] for e in search(account.id, text).entries]


def test_acceptance_6_von_betreff_ist_find_what_from_subject_is_find(offers):
    german = found(offers, "von:anna betreff:Angebot ist:offen")
    assert german == found(offers, "from:anna subject:Angebot is:open")
    assert german == ["new", "relaunch"]


@pytest.mark.parametrize(
    ("german", "english", "expected"),
    [
        ("an:team@agentur.test", "to:team@agentur.test", ["relaunch"]),
        ("hat:anhang", "has:attachment", ["weiss"]),
        (
            "-hat:anhänge",
            "-has:attachment",
            ["note", "new", "question", "shop", "logo", "relaunch"],
        ),
        ("ist:erledigt", "is:done", ["note", "logo"]),
        ("art:notiz", "kind:note", ["note"]),
        (
            "art:eingehend betreff:angebot",
            "kind:inbound subject:angebot",
            ["weiss", "new", "shop", "logo", "relaunch"],
        ),
        (
            'projekt:"Bäckerei Schmidt" ist:offen',
            'project:"Bäckerei Schmidt" is:open',
            ["question", "relaunch"],
        ),
        ("nach:2026-11-28", "after:2026-11-28", ["note", "weiss", "new"]),
        ("vor:2026-11-21", "before:2026-11-21", ["relaunch"]),
        ("nach:2026-11-21 vor:2026-11-23", "after:2026-11-21 before:2026-11-23", ["shop", "logo"]),
    ],
)
def test_each_german_keyword_finds_what_its_english_one_finds(offers, german, english, expected):
    assert found(offers, german) == found(offers, english) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from:anna ist:offen", ["new", "question", "relaunch"]),
        ("von:anna is:open subject:Angebot", ["new", "relaunch"]),
        ("Angebot -ist:erledigt von:anna", ["new", "question", "relaunch"]),
        ("art:notiz,call", ["note"]),
        ("kind:note,anruf -ist:done", []),
        ("is:offen has:anhang", ["weiss"]),
        ("VON:Anna Betreff:ANGEBOT IST:Erledigt", ["logo"]),
    ],
)
def test_mixed_language_queries(offers, text, expected):
    assert found(offers, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("von:weiß", ["weiss"]),
        ("von:JÜRGEN", ["weiss"]),
        ('von:"Jürgen Weiß"', ["weiss"]),
        ("betreff:Grüße", ["weiss"]),
        ("betreff:grüße", ["weiss"]),
        ("Straße", ["weiss"]),
        ("Maße hat:anhang", ["weiss"]),
        ("Rückfrage", ["question"]),
        ("betreff:rückfrage", ["question"]),
        ("strasse", []),  # ß is searched as typed, not as ss
        ('projekt:"Bäckerei"', ["note", "question", "logo", "relaunch"]),
    ],
)
def test_umlauts_and_sharp_s_in_values_are_searched_as_typed(offers, text, expected):
    assert found(offers, text) == expected


# --- the protocol page -----------------------------------------------------------------------


@pytest.fixture
def timeline(web):
    """A protocol: offers from Anna (one done, with a file) and from a printer, a note."""
    project = domain_projects.create_project(
        web.account.id,
        "Bäckerei",
        customer_addresses=["anna@bakery.test", "max@printshop.test"],
    )
    when = dt.datetime(2026, 11, 1, 9)
    offer = receive(project, "Angebot Logo", when=when, attachments=(pdf("angebot.pdf"),))
    ids = {
        "offer": offer.id,
        "reply": receive(project, "Rückfrage zum Angebot", when=when + dt.timedelta(days=1)).id,
        "printer": receive(
            project, "Angebot Druck", sender="max@printshop.test", when=when + dt.timedelta(days=2)
        ).id,
        "note": add_manual_entry(
            project,
            web.users["member"],
            kind="note",
            needs_action=True,
            text="Angebot nachfassen",
            occurred_at=when + dt.timedelta(days=3),
        ).id,
    }
    set_done(offer, web.users["member"].id, True)
    return project, ids


def test_the_protocol_explains_the_german_keywords_next_to_the_english_ones(web, timeline):
    project, _ = timeline
    page = web.client("member").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert "How to search" in page and "Filter in German" in page
    for german in ("von:anna", "an:team", "betreff:logo", "hat:anhang", "ist:offen"):
        assert f"<code>{german}</code>" in page, german
    for german in ("ist:erledigt", "art:notiz", "projekt:12", "nach:2026-11-27", "vor:2026-12-01"):
        assert f"<code>{german}</code>" in page, german
    assert '<details class="search-help">' in page  # closed until a search goes wrong
    wrong = web.client("member").get(f"/projects/{project.id}/protocol?q=ist:zu")
    text = wrong.get_data(as_text=True)
    assert "ist: must be ist:offen or ist:erledigt" in text
    assert '<details class="search-help" open>' in text


def test_a_german_reader_gets_the_help_in_german_and_german_keywords_search(web, timeline):
    project, ids = timeline
    set_user_language(web.users["member"], "de")
    client = web.client("member")
    page = client.get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert "So suchst du" in page and "Filter auf Deutsch" in page
    assert "How to search" not in page and "entries with attachments" not in page
    assert "<code>ist:erledigt</code>" in page
    path = f"/projects/{project.id}/protocol?q="
    for german, english, expected in [
        ("von:anna+betreff:Angebot+ist:offen", "from:anna+subject:Angebot+is:open", ["reply"]),
        ("von:printshop", "from:printshop", ["printer"]),
        ("Angebot+art:eingehend", "Angebot+kind:inbound", ["printer", "reply", "offer"]),
        ("art:notiz", "kind:note", ["note"]),
        ("ist:erledigt", "is:done", ["offer"]),
        ("-ist:erledigt+-hat:anhang", "-is:done+-has:attachment", ["note", "printer", "reply"]),
        ("betreff:Rückfrage", "subject:Rückfrage", ["reply"]),
    ]:
        assert shown(client, path + german) == [ids[name] for name in expected], german
        assert shown(client, path + english) == [ids[name] for name in expected], english


def test_a_search_mistake_is_explained_in_the_readers_language(web, timeline):
    project, _ = timeline
    path = f"/projects/{project.id}/protocol?q="
    english = html.unescape(web.client("member").get(path + "ist:zu").get_data(as_text=True))
    assert 'ist: must be ist:offen or ist:erledigt, not "zu"' in english
    set_user_language(web.users["member"], "de")
    client = web.client("member")
    for text, message in [
        ("ist:zu", "ist: muss ist:offen oder ist:erledigt sein, nicht „zu“"),
        ("is:zu", "is: muss is:open oder is:done sein, nicht „zu“"),
        ("bis:morgen", "unbekannter Filter „bis:“ — nimm von:, an:, betreff:"),
        ("nach:morgen", "nach: braucht ein Datum wie 2026-11-27, nicht „morgen“"),
        ("vor:2026-02-30", "vor: 2026-02-30 ist kein gültiges Datum"),
        ("art:mail", "unbekannte Art „mail“ — nimm art:eingehend, art:ausgehend, art:notiz"),
        ('"offen', "ein Anführungszeichen ist nicht geschlossen"),
        ("von:", "von: braucht direkt nach dem Doppelpunkt einen Wert, z. B. von:anna@example.com"),
    ]:
        page = html.unescape(client.get(path + quote(text)).get_data(as_text=True))
        assert message in page, text
