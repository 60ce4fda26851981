"""The search syntax: the parser on its own, and `search` on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random

import pytest

from domain import projects as domain_projects
from storage import accounts
from storage import search as search_module
from storage.filing import AttachmentRecord, InboundRecord
from storage.intake import Delivery, IntakeBatchItem, record_batch
from storage.models import ENTRY_KINDS, Entry
from storage.query import (
    MAX_QUERY_CHARS,
    MAX_TERMS,
    TEXT,
    QuerySyntaxError,
    SearchQuery,
    Term,
    parse_query,
)
from storage.search import SearchPage, search, search_entries
from tests.filing import file_record

# --- the parser --------------------------------------------------------------------------------


def test_plain_words_and_phrases_are_text_terms():
    assert parse_query("  Opening   hours ").terms == (
        Term(TEXT, "Opening"),
        Term(TEXT, "hours"),
    )
    assert parse_query('new "opening hours" ""').terms == (
        Term(TEXT, "new"),
        Term(TEXT, "opening hours", phrase=True),
    )
    assert parse_query('said"hello"').terms == (
        Term(TEXT, "said"),
        Term(TEXT, "hello", phrase=True),
    )
    assert parse_query("") == SearchQuery() and not parse_query("   ")


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("from:Anna@Bakery.TEST", Term("from", "anna@bakery.test")),
        ('FROM:"Anna Schmidt"', Term("from", "anna schmidt", phrase=True)),
        ("to:team", Term("to", "team")),
        ("subject:logo", Term("subject", "logo")),
        ('Subject:"New logo"', Term("subject", "New logo", phrase=True)),
        ("has:attachment", Term("has", "attachment")),
        ("has:Attachments", Term("has", "attachment")),
        ("is:open", Term("is", "open")),
        ("is:DONE", Term("is", "done")),
        ("kind:note", Term("kind", ("note",))),
        ("kind:note,call,note", Term("kind", ("note", "call"))),
        ("project:12", Term("project", "12")),
        ("project:bakery", Term("project", "bakery")),
        ('project:"Bakery Schmidt"', Term("project", "Bakery Schmidt", phrase=True)),
        ("after:2026-11-27", Term("after", dt.date(2026, 11, 27))),
        ("before:2026-12-01", Term("before", dt.date(2026, 12, 1))),
        ("-word", Term(TEXT, "word", negated=True)),
        ('-"two words"', Term(TEXT, "two words", negated=True, phrase=True)),
        ("-from:newsletter", Term("from", "newsletter", negated=True)),
        ("-is:done", Term("is", "done", negated=True)),
        ("--x", Term(TEXT, "-x", negated=True)),
        ("-", Term(TEXT, "-")),
        ("10:30", Term(TEXT, "10:30")),
        ("12:00:00", Term(TEXT, "12:00:00")),
        (":-)", Term(TEXT, ":-)")),
        ("https://x.test/a?b=c", Term(TEXT, "https://x.test/a?b=c")),
        ("mailto:anna@bakery.test", Term(TEXT, "mailto:anna@bakery.test")),
        ('"foo:bar"', Term(TEXT, "foo:bar", phrase=True)),
    ],
)
def test_each_filter_and_word_form_parses(text, term):
    assert parse_query(text).terms == (term,)


def test_project_ids_are_digits_and_everything_else_is_a_name():
    assert parse_query("project:12").terms[0].project_id == 12
    assert parse_query('project:"12"').terms[0].project_id == 12
    assert parse_query("project:12a").terms[0].project_id is None
    assert parse_query("from:12").terms[0].project_id is None


def test_a_parsed_query_prints_as_text_that_parses_back_to_it():
    text = (
        'Grüße "opening hours" from:Anna to:"team lead" subject:"new logo" -has:attachment '
        'is:open kind:note,call project:12 project:"Bakery Schmidt" after:2026-11-27 '
        'before:2026-12-01 -spam --x 10:30 https://x.test/a AND * "foo:bar"'
    )
    query = parse_query(text)
    assert parse_query(str(query)) == query
    assert str(parse_query("a  b")) == "a b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"unterminated', "a quote is not closed"),
        ('subject:"open', "a quote is not closed"),
        ("col:", 'unknown filter "col:"'),
        ("a:b:c", 'unknown filter "a:" — use from:, to:, subject:, has:attachment'),
        ("foo:bar", 'put it in quotes: "foo:bar"'),
        ('foo:"bar"', 'unknown filter "foo:"'),
        ("Re: Angebot", 'unknown filter "Re:"'),
        ("from:", "from: needs a value right after the colon"),
        ("from: anna", "from: needs a value"),
        ('subject:""', "subject: needs a value"),
        ("has:pdf", "has: only knows has:attachment"),
        ("is:closed", "is: must be is:open or is:done"),
        ("kind:email", 'unknown kind "email" — use kind:inbound'),
        ("kind:,", "unknown kind"),
        ("after:tomorrow", "after: needs a date like 2026-11-27"),
        ("before:27.11.2026", "before: needs a date like 2026-11-27"),
        ("after:2026-02-30", "after: 2026-02-30 is not a real date"),
        ("after:２０２６-１１-２７", "needs a date like"),
        ("project:99999999999999999999999", "too large to be a project id"),
        ("x" * (MAX_QUERY_CHARS + 1), "too long"),
        ("x " * (MAX_TERMS + 1), "too many words"),
        ("x" * 301, "a word or phrase is too long"),
    ],
)
def test_mistakes_raise_a_friendly_query_syntax_error(text, message):
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("AND OR NOT", ["AND", "OR", "NOT"]),
        ("*", ["*"]),
        ("NEAR(a b)", ["NEAR(a", "b)"]),
        ("'; DROP TABLE entry; --", ["';", "DROP", "TABLE", "entry;", "-"]),
        ("^start (a) +b open*", ["^start", "(a)", "+b", "open*"]),
        ("a\x00b\ud800c\td", ["a", "b", "c", "d"]),
        ("Grüße grüsse", ["Grüße", "grüsse"]),
        ("Gru\u0308ße", ["Grüße"]),  # decomposed ü becomes the composed one
    ],
)
def test_hostile_text_becomes_literal_words(text, values):
    assert [t.value for t in parse_query(text).terms] == values
    assert all(t.field == TEXT for t in parse_query(text).terms)


def test_the_parser_never_raises_anything_but_query_syntax_error():
    rng = random.Random(20261127)
    alphabet = [
        *"abc \"*^:()-+_%!\\';,.@/~{}[]|&<>\x00\t\u00e9\u20ac",
        "AND",
        "NEAR",
        "from:",
        "subject:",
        "kind:",
        "after:",
        "project:",
        "\ud800",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        try:
            query = parse_query(text)
        except QuerySyntaxError:
            continue
        assert parse_query(str(query)) == query


# --- search on both backends --------------------------------------------------------------------

_counter = itertools.count()


def store(
    account_id,
    subject,
    *,
    project=None,
    sender="",
    name="",
    to=(),
    cc=(),
    text="",
    when=dt.datetime(2026, 11, 20, 10, 0),
    attachment=None,
    kind=None,
    status=None,
) -> int:
    raw = f"{next(_counter)} {subject}".encode()
    delivery = Delivery(
        queue_id="Q1",
        account_id=account_id,
        recipient="inbox@in.example",
        project_hint=None,
        mail_from="a@b.test",
        peer="127.0.0.1:1",
        helo="mta",
        protocol="lmtp",
        received_at=when,
    )
    digest = hashlib.sha256(raw).hexdigest()
    [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))])
    files = (AttachmentRecord(attachment, attachment, "text/plain", b"x"),) if attachment else ()
    entry = file_record(
        recorded.intake_id,
        InboundRecord(
            project_id=project,
            route_rule="unknown_sender",
            subject=subject,
            from_address=sender,
            from_name=name,
            to=tuple(("", a) for a in to),
            cc=tuple(("", a) for a in cc),
            text=text,
            occurred_at=when,
            attachments=files,
        ),
    )
    changes = {k: v for k, v in (("kind", kind), ("status", status)) if v}
    if changes:
        Entry.update(**changes).where(Entry.id == entry.id).execute()
    return entry.id


@pytest.fixture
def mail(storage_db):
    """Four entries of one account in two projects and the inbox, one of another account."""
    account = accounts.create_account("Agency")
    other = accounts.create_account("Other")
    bakery = domain_projects.create_project(account.id, "Bakery Schmidt")
    shop = domain_projects.create_project(account.id, "Shop")
    ids = {
        "hours": store(
            account.id,
            "Opening hours",
            project=bakery.id,
            sender="Anna@Bakery.test",
            name="Anna Schmidt",
            to=["team@agency.test"],
            cc=["boss@agency.test"],
            text="Please change the opening hours",
            when=dt.datetime(2026, 11, 20, 10, 0),
        ),
        "logo": store(
            account.id,
            "New logo",
            project=shop.id,
            sender="bob@shop.test",
            to=["team@agency.test"],
            text="Attached the final logo",
            attachment="logo-final.svg",
            when=dt.datetime(2026, 12, 5, 9, 0),
            status="done",
        ),
        "greeting": store(
            account.id,
            "Grüße aus der Bäckerei",
            sender="newsletter@news.test",
            to=["anna@bakery.test"],
            text="Frohe Weihnachten, 100% sicher_ok",
            when=dt.datetime(2026, 11, 27, 0, 0),
            kind="note",
        ),
        "call": store(
            account.id,
            "Call notes",
            project=bakery.id,
            text="Discussed opening hours on the phone",
            when=dt.datetime(2026, 11, 26, 23, 59, 59),
            kind="call",
            status="done",
        ),
    }
    other_id = store(
        other.id, "Opening hours", sender="anna@bakery.test", text="Please change the opening hours"
    )
    return {
        "account": account,
        "other": other,
        "bakery": bakery,
        "shop": shop,
        "ids": ids,
        "other_id": other_id,
    }


def found(mail, text, **kw) -> list[str]:
    names = {v: k for k, v in mail["ids"].items()}
    page = search(mail["account"].id, text, **kw)
    assert isinstance(page, SearchPage)
    return [names.get(e.id, e.id) for e in page.entries]


def test_an_empty_query_lists_the_account_newest_first(mail):
    assert found(mail, "") == ["logo", "greeting", "call", "hours"]
    assert [e.id for e in search(mail["other"].id, "opening").entries] == [mail["other_id"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("opening hours", ["call", "hours"]),
        ("OPENING", ["call", "hours"]),
        ('"opening hours"', ["call", "hours"]),
        ('"hours opening"', []),
        ('"the phone"', ["call"]),
        ("hours logo", []),
        ("logo-final.svg", ["logo"]),
        ("bakery", ["greeting", "hours"]),  # addresses: anna@bakery.test as sender or recipient
        ("grüße", ["greeting"]),
        ("BÄCKEREI", ["greeting"]),
        ("grusse", []),  # neither index turns ß into ss
        ("100%", ["greeting"]),
        ("sicher_ok", ["greeting"]),
    ],
)
def test_words_and_phrases(mail, text, expected):
    assert found(mail, text) == expected


# from:/to: take one of four roads (storage.search._address_condition); each gives these.
ADDRESS_CASES = [
    ("from:anna", ["hours"]),
    ("from:ANNA@BAKERY.TEST", ["hours"]),
    ("from:bakery.test", ["hours"]),
    ("from:schmidt", ["hours"]),  # the sender's name
    ('from:"anna schmidt"', ["hours"]),
    ("from:team", []),
    ("to:anna", ["greeting"]),
    ("to:boss", ["hours"]),  # cc counts as to
    ("to:team@agency.test", ["logo", "hours"]),
    ("-from:anna", ["logo", "greeting", "call"]),
    ("from:%", []),  # LIKE wildcards are literal
    ("from:_", []),
    ("from:a_na", []),
    ("from:a%a", []),
    ("from:!", []),
    ("from:anna has:attachment", []),
    ("from:nobody", []),
    ("-to:nobody", ["logo", "greeting", "call", "hours"]),
    ("-to:anna", ["logo", "call", "hours"]),
    ("to:schmidt", []),  # anna@bakery.test is a recipient too, but not by that name
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *ADDRESS_CASES,
        ("subject:hours", ["hours"]),  # "call" has hours in its text only
        ('subject:"opening hours"', ["hours"]),
        ('subject:"hours opening"', []),
        ("subject:logo", ["logo"]),
        ("subject:phone", []),
        ("opening -subject:hours", ["call"]),
        ("has:attachment", ["logo"]),
        ("-has:attachment", ["greeting", "call", "hours"]),
        ("is:done", ["logo", "call"]),
        ("is:open", ["greeting", "hours"]),
        ("-is:done", ["greeting", "hours"]),
        ("is:open is:done", []),
        ("kind:call", ["call"]),
        ("kind:note,call", ["greeting", "call"]),
        ("kind:inbound", ["logo", "hours"]),
        ("-kind:inbound", ["greeting", "call"]),
        ("kind:system", []),
        ("project:bakery", ["call", "hours"]),
        ('project:"bakery schmidt"', ["call", "hours"]),
        ("project:SHOP", ["logo"]),
        ("project:%", []),
        ("-project:bakery", ["logo", "greeting"]),  # entries without a project stay
        ("project:999999", []),
        ("after:2026-11-27", ["logo", "greeting"]),  # from 00:00 of that day
        ("before:2026-11-27", ["call", "hours"]),  # up to 23:59:59 the day before
        ("after:2026-11-21 before:2026-11-27", ["call"]),
        ("-after:2026-11-27", ["call", "hours"]),
        ("opening is:done", ["call"]),
        ("hours -phone", ["hours"]),
        ('-"opening hours"', ["logo", "greeting"]),
        ("-logo -grüße", ["call", "hours"]),
    ],
)
def test_each_filter_finds_what_it_should_and_nothing_else(mail, text, expected):
    assert found(mail, text) == expected


@pytest.mark.parametrize("road", ["by address", "walk the scope", "hash, walk", "by pattern"])
def test_from_and_to_give_the_same_entries_on_every_road(mail, monkeypatch, road):
    walk = road in ("walk the scope", "hash, walk")
    monkeypatch.setattr(search_module, "FEW_PARTICIPANTS", 0 if walk else 2000)
    # PostgreSQL hashes the participants' entries for the walk unless there are too many
    monkeypatch.setattr(search_module, "HASHED_PARTICIPANTS", 10_000 if road == "hash, walk" else 0)
    monkeypatch.setattr(search_module, "MANY_CORRESPONDENTS", 0 if road == "by pattern" else 500)
    for text, expected in ADDRESS_CASES:
        assert found(mail, text) == expected, text


def test_project_filter_by_id_and_the_page_scope(mail):
    bakery, shop = mail["bakery"].id, mail["shop"].id
    assert found(mail, f"project:{bakery}") == ["call", "hours"]
    assert found(mail, f"-project:{shop}") == ["greeting", "call", "hours"]
    assert found(mail, "hours", project_id=bakery) == ["call", "hours"]
    assert found(mail, "", project_id=shop) == ["logo"]
    assert found(mail, "", unassigned=True) == ["greeting"]
    assert found(mail, "logo", project_id=bakery) == []
    # a project of another account is never searched
    foreign = domain_projects.create_project(mail["other"].id, "Bakery Schmidt")
    assert found(mail, f"project:{foreign.id}") == []
    assert found(mail, "", project_id=foreign.id) == []


def test_a_parsed_query_can_be_passed_and_the_old_api_still_works(mail):
    query = parse_query("opening -phone")
    assert found(mail, query) == ["hours"]
    ids = mail["ids"]
    assert [e.id for e in search_entries(mail["account"].id, "opening")] == [
        ids["call"],
        ids["hours"],
    ]
    assert search_entries(mail["account"].id, '"quoted" words:with*specials') == []
    with pytest.raises(QuerySyntaxError):
        search(mail["account"].id, '"quoted" words:with*specials')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AND OR NOT", []),
        ("opening AND", []),  # AND is a word here, not an operator
        ("NEAR(opening hours)", []),
        ("*", ["logo", "greeting", "call", "hours"]),  # no letters: left out
        ("opening*", ["call", "hours"]),  # no prefix search: * is dropped
        ("open*", []),
        ("^opening", ["call", "hours"]),
        ("(opening) +hours", ["call", "hours"]),
        ("subject:(hours)", ["hours"]),
        ("'; DROP TABLE entry; --", []),
        ("hours'; DROP TABLE entry; --", []),
        ('"opening"" hours"', ["call", "hours"]),
        ("a\x00b", []),
        ("10:30 https://x.test/path", []),
        ("-*", ["logo", "greeting", "call", "hours"]),
    ],
)
def test_hostile_input_is_literal_text(mail, text, expected):
    assert found(mail, text) == expected
    assert Entry.select().count() == 5


def test_random_input_raises_nothing_but_query_syntax_error(mail):
    rng = random.Random(4711)
    alphabet = [
        *"ab \"*^:()-+_%!\\';.@{}|&<>\x00\u00e9",
        "AND ",
        "OR ",
        "NOT ",
        "NEAR",
        "subject:",
        "from:",
        "to:",
        "project:",
        "opening ",
    ]
    checked = 0
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        try:
            search(mail["account"].id, text, limit=3)
        except QuerySyntaxError:
            continue
        checked += 1
    assert checked > 100


def test_limits_are_query_syntax_errors_before_any_sql(mail):
    for text in ("word " * 500, "x" * 10_000, "-a " * 40):
        with pytest.raises(QuerySyntaxError):
            search(mail["account"].id, text)
    # the largest query allowed still runs
    assert found(mail, " ".join(f"-w{i}" for i in range(MAX_TERMS))) == [
        "logo",
        "greeting",
        "call",
        "hours",
    ]


@pytest.mark.parametrize("kind", ENTRY_KINDS)
def test_every_kind_is_a_filter(kind):
    assert parse_query(f"kind:{kind}").terms == (Term("kind", (kind,)),)


# --- keyset pagination ----------------------------------------------------------------------


@pytest.fixture
def many(storage_db):
    account = accounts.create_account("Agency")
    project = domain_projects.create_project(account.id, "Big")
    base = dt.datetime(2026, 11, 1, 8, 0)
    ids = []
    for i in range(23):
        when = base + dt.timedelta(hours=i // 4)  # groups of four at the same moment
        text = "weekly report" + (" skip" if i % 7 == 3 else "")
        ids.append(store(account.id, f"Report {i}", project=project.id, text=text, when=when))
    stored = list(Entry.select().where(Entry.id.in_(ids)))
    order = [e.id for e in sorted(stored, key=lambda e: (e.occurred_at, e.id), reverse=True)]
    skip = {e.id for e in stored if "skip" in e.text}
    return account, project, order, skip


def walk(account_id, text, limit, **kw) -> tuple[list[int], list[int]]:
    seen, sizes, key = [], [], None
    while True:
        page = search(account_id, text, limit=limit, before_key=key, **kw)
        seen += [e.id for e in page.entries]
        sizes.append(len(page.entries))
        if page.next_key is None:
            return seen, sizes
        assert page.next_key == (page.entries[-1].occurred_at, page.entries[-1].id)
        key = page.next_key
        assert len(sizes) < 50


def test_keyset_pages_walk_every_entry_exactly_once(many):
    account, project, order, skip = many
    assert walk(account.id, "", 5) == (order, [5, 5, 5, 5, 3])
    assert walk(account.id, "report", 5, project_id=project.id) == (order, [5, 5, 5, 5, 3])
    assert walk(account.id, "", 1)[0] == order
    assert walk(account.id, "", 23) == (order, [23])
    kept = [i for i in order if i not in skip]
    assert len(kept) == 20
    # a last page that is exactly full says there is no next page
    assert walk(account.id, "report -skip", 5) == (kept, [5, 5, 5, 5])
    assert walk(account.id, "skip", 5) == ([i for i in order if i in skip], [3])


def test_a_key_may_be_given_as_text_and_a_bad_key_or_limit_is_refused(many):
    account, _, order, _ = many
    first = search(account.id, "", limit=4)
    when, entry_id = first.next_key
    again = search(account.id, "", limit=4, before_key=(when.isoformat(), str(entry_id)))
    assert [e.id for e in again.entries] == order[4:8]
    aware = when.replace(tzinfo=dt.UTC)
    assert search(account.id, "", limit=4, before_key=(aware, entry_id)) == again
    for key in ((when,), ("yesterday", 1), (None, 1), (when, "x"), (when, 10**30), (when, True)):
        with pytest.raises(ValueError, match="before_key"):
            search(account.id, "", before_key=key)
    for limit in (0, -1, 10_000):
        with pytest.raises(ValueError, match="limit"):
            search(account.id, "", limit=limit)
