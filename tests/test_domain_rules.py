"""The rules of domain/ (addresses, projects, customer addresses, entries, blocks), in process
on a real database (SQLite, and PostgreSQL when POSTROOM_TEST_PG_URL is set): no daemon."""

from __future__ import annotations

import json

import pytest

from domain import blocks, entries, projects
from domain.addresses import MAX_ADDRESS_CHARS, invalid_message, is_address, normalise_address
from domain.errors import Conflict, DomainError, Invalid, NotFound
from storage.accounts import create_account
from storage.models import (
    Activity,
    BlockRule,
    CustomerAddress,
    Entry,
    Event,
    Project,
    User,
)


# --- addresses (no database) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("anna@bakery.example", "anna@bakery.example"),
        ("  Anna.Miller+Shop@Bakery.Example ", "anna.miller+shop@bakery.example"),
        ("Jürgen@Baeckerei.example", "jürgen@baeckerei.example"),  # an SMTPUTF8 sender
        ("a/b=c@sub.domain-1.example", "a/b=c@sub.domain-1.example"),
    ],
)
def test_an_address_is_stored_trimmed_and_lower_case(typed, stored):
    assert normalise_address(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "anna",
        "anna@bakery",  # no dot in the domain
        "anna@bakery.x",  # a last label of one character
        "anna@@bakery.example",
        "anna@bak ery.example",
        "an na@bakery.example",
        "<anna@bakery.example>",
        '"anna"@bakery.example',
        "anna,paul@bakery.example",
        "anna;@bakery.example",
        "anna@bakery_shop.example",
        "an\x00na@bakery.example",
        "an\x1bna@bakery.example",
        "an\x85na@bakery.example",
        "anna@bäckerei.example",  # domains are stored as typed in ASCII (IDNA) only
    ],
)
def test_what_is_not_an_address_is_refused_with_the_one_message(typed):
    with pytest.raises(Invalid) as refused:
        normalise_address(typed)
    assert str(refused.value) == f"not a valid email address: {typed.strip()!r}"
    assert isinstance(refused.value, ValueError)


def test_an_address_is_at_most_254_characters_and_a_long_one_is_cut_in_the_message():
    domain = "@" + "b" * 60 + ".example"
    longest = "a" * (MAX_ADDRESS_CHARS - len(domain)) + domain
    assert is_address(longest) and normalise_address(longest) == longest
    with pytest.raises(Invalid) as refused:
        normalise_address("a" + longest)
    assert str(refused.value) == invalid_message("a" + longest)
    assert len(str(refused.value)) < 120 and str(refused.value).endswith("…'")


def test_is_address_takes_the_text_as_it_is():
    assert is_address("anna@bakery.example")
    assert is_address("Anna@Bakery.example")
    assert not is_address(" anna@bakery.example")


def test_a_block_is_the_sender_or_its_domain():
    assert blocks.block_pattern("Spam@Junk.Example", "sender") == "spam@junk.example"
    assert blocks.block_pattern("spam@junk.example", "domain") == "@junk.example"
    with pytest.raises(Invalid, match="block must be sender or domain"):
        blocks.block_pattern("spam@junk.example", "everyone")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("", ""), (" Bakery.Example ", "bakery.example"), ("bäckerei.example", "bäckerei.example")],
)
def test_a_project_domain_is_a_host_name(typed, stored):
    assert projects.normalise_domain(typed) == stored


@pytest.mark.parametrize(
    "typed", ["https://bakery.example/", "bakery", "bakery..example", "-bakery.example", "a b.c"]
)
def test_what_is_not_a_host_name_is_refused(typed):
    with pytest.raises(Invalid, match="domain is not a host name"):
        projects.normalise_domain(typed)


# --- projects and customer addresses ---------------------------------------------------------
@pytest.fixture
def account(storage_db):
    return create_account("Agency")


@pytest.fixture
def user(account):
    return User.create(account=account.id, email="member@agency.test", name="Mia")


def _actions(**where) -> list[str]:
    query = Activity.select().order_by(Activity.id)
    for field, value in where.items():
        query = query.where(getattr(Activity, field) == value)
    return [row.action for row in query]


def test_a_project_is_created_with_its_addresses_all_or_nothing(account, user):
    project = projects.create_project(
        account.id,
        "  Bakery  ",
        domain="Bakery.Example",
        contact_name="Anna",
        customer_addresses=["Anna@Bakery.example", "anna@bakery.example"],
        addresses=[("paul@print.example", "partner")],
        user_id=user.id,
    )
    assert (project.name, project.domain, project.status) == ("Bakery", "bakery.example", "lead")
    rows = {(r.address, r.kind) for r in CustomerAddress.select()}
    assert rows == {("anna@bakery.example", "customer"), ("paul@print.example", "partner")}
    assert _actions(project=project.id) == ["address_added", "address_added", "project_created"]

    with pytest.raises(Invalid) as refused:
        projects.create_project(
            account.id,
            "Shop",
            customer_addresses=["ok@shop.example", "nope", "anna@bakery.example", "also bad"],
        )
    assert refused.value.args == (
        "not a valid email address: 'nope'",
        "not a valid email address: 'also bad'",
        "anna@bakery.example is already a customer address of Bakery",
    )
    with pytest.raises(Conflict) as taken:
        projects.create_project(account.id, "Shop", customer_addresses=["ANNA@bakery.example"])
    assert str(taken.value) == "anna@bakery.example is already a customer address of Bakery"
    assert [p.name for p in Project.select()] == ["Bakery"]
    assert CustomerAddress.select().count() == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "  "}, "name must not be blank"),
        ({"name": "x" * 201}, "name may have at most 200 characters"),
        ({"name": "Two\nlines"}, "name must be one line"),
        ({"name": "A", "status": " "}, "status must not be blank"),
        ({"name": "A", "status": "dreaming"}, "status must be one of lead, live"),
        ({"name": "A", "domain": "not a host"}, "domain is not a host name: 'not a host'"),
        ({"name": "A", "contact_name": "c" * 201}, "contact name may have at most 200"),
    ],
)
def test_project_fields_are_refused_by_one_rule(account, fields, message):
    with pytest.raises(Invalid, match=message):
        projects.create_project(account.id, **fields, statuses=("lead", "live"))
    assert Project.select().count() == 0


def test_an_address_belongs_to_at_most_one_project_of_an_account(account, user):
    bakery = projects.create_project(account.id, "Bakery", customer_addresses=["anna@b.example"])
    shop = projects.create_project(account.id, "Shop")
    theirs = projects.create_project(create_account("Other").id, "Theirs")

    with pytest.raises(Conflict, match=r"anna@b\.example is already a customer address of Bakery"):
        projects.add_customer_address(shop, " ANNA@b.example")
    with pytest.raises(Conflict, match="already a customer address of this project"):
        projects.add_customer_address(bakery, "anna@b.example")
    with pytest.raises(Invalid, match="kind must be customer or partner"):
        projects.add_customer_address(shop, "paul@b.example", kind="boss")
    row = projects.add_customer_address(theirs, "Anna@B.example", kind="partner")
    assert (row.address, row.kind, row.project_id) == ("anna@b.example", "partner", theirs.id)
    added = projects.add_customer_address(shop, "paul@b.example", user_id=user.id)
    assert (added.address, added.kind) == ("paul@b.example", "customer")
    assert _actions(project=shop.id) == ["project_created", "address_added"]


def test_removing_an_address_says_whether_it_was_there(account, user):
    bakery = projects.create_project(account.id, "Bakery", customer_addresses=["anna@b.example"])
    assert not projects.remove_customer_address(bakery, "paul@b.example")
    assert not projects.remove_customer_address(bakery, "a\x00b@b.example")  # never stored
    assert projects.remove_customer_address(bakery, " Anna@B.example ", user_id=user.id)
    assert CustomerAddress.select().count() == 0
    assert _actions(project=bakery.id)[-1] == "address_removed"


def test_a_status_change_writes_a_system_entry_and_an_event(account, user):
    bakery = projects.create_project(account.id, "Bakery")
    projects.update_project(bakery, user.id, name=" Bakery Miller ", contact_name="Anna")
    assert Entry.select().count() == 0
    projects.update_project(bakery, user.id, status="live", statuses=("lead", "live"))
    stored = Project.get_by_id(bakery.id)
    assert (stored.name, stored.contact_name, stored.status) == ("Bakery Miller", "Anna", "live")
    [system] = Entry.select()
    assert (system.kind, system.subject, system.category) == (
        "system",
        "Status changed from lead to live",
        "internal",
    )
    [event] = Event.select()
    assert (event.kind, json.loads(event.payload)) == (
        "status_change",
        {"from": "lead", "to": "live"},
    )
    with pytest.raises(Invalid, match="unknown project fields: colour"):
        projects.update_project(bakery, user.id, colour="red")


def test_deleting_a_project_keeps_its_mail_unassigned_and_drops_its_own_entries(account, user):
    bakery = projects.create_project(account.id, "Bakery", customer_addresses=["anna@b.example"])
    mail = Entry.create(account=account.id, project=bakery.id, subject="Hello")
    entries.set_done(mail, user.id, True)
    entries.add_manual_entry(bakery, user, kind="note", text="internal")
    projects.delete_project(bakery, user.id)
    assert not Project.select().exists() and not CustomerAddress.select().exists()
    [kept] = Entry.select()
    assert (kept.id, kept.project_id, kept.status) == (mail.id, None, "done")
    assert _actions(entry=mail.id) == ["done"]  # its history stays
    assert _actions()[-1] == "project_deleted"


# --- entries ---------------------------------------------------------------------------------
@pytest.fixture
def mail(account):
    return Entry.create(
        account=account.id, kind="inbound", subject="Which site?", from_address="anna@b.example"
    )


def test_done_records_who_and_when_and_open_clears_both(mail, user):
    entries.set_done(mail, user.id, True)
    stored = Entry.get_by_id(mail.id)
    assert (stored.status, stored.done_by_id) == ("done", user.id) and stored.done_at
    entries.set_done(mail, user.id, False)
    stored = Entry.get_by_id(mail.id)
    assert (stored.status, stored.done_by_id, stored.done_at) == ("open", None, None)
    assert _actions(entry=mail.id) == ["done", "reopened"]


def test_assigning_remembers_the_sender_under_the_one_address_rule(account, mail, user):
    bakery = projects.create_project(account.id, "Bakery")
    shop = projects.create_project(account.id, "Shop", customer_addresses=["anna@b.example"])
    theirs = projects.create_project(create_account("Other").id, "Theirs")

    with pytest.raises(NotFound):
        entries.assign(mail, theirs, user.id, remember_sender=False)
    with pytest.raises(Conflict, match="already a customer address of Shop"):
        entries.assign(mail, bakery, user.id, remember_sender=True)
    assert Entry.get_by_id(mail.id).project_id is None  # nothing of it was kept

    entries.assign(mail, shop, user.id, remember_sender=True)  # its own project: fine
    stored = Entry.get_by_id(mail.id)
    assert (stored.project_id, stored.category, stored.spam) == (shop.id, "customer", False)

    other = Entry.create(account=account.id, subject="Hi", from_address="paul@p.example")
    entries.assign(other, bakery, user.id, remember_sender=True)
    assert projects.store.address_row(account.id, "paul@p.example").project_id == bakery.id
    assert _actions(entry=other.id) == ["assigned"]


def test_spam_is_done_belongs_to_no_project_and_can_block_the_domain(account, mail, user):
    entries.discard_spam(mail, user.id, block="domain")
    stored = Entry.get_by_id(mail.id)
    assert (stored.spam, stored.status, stored.project_id) == (True, "done", None)
    assert [r.pattern for r in BlockRule.select()] == ["@b.example"]
    entries.discard_spam(mail, user.id, block="domain")  # twice: one rule
    entries.discard_spam(mail, user.id, block="nonsense")  # ignored, as the UI sends it
    assert BlockRule.select().count() == 1
    [first, *_] = Activity.select().where(Activity.entry == mail.id).order_by(Activity.id)
    assert (first.action, first.detail) == ("discarded", "blocked @b.example")


def test_deleting_an_entry_keeps_who_did_it(account, mail, user):
    entries.delete_entry(mail, user.id)
    assert not Entry.select().exists()
    [row] = Activity.select()
    assert (row.action, row.user_id, row.detail) == (
        "deleted",
        user.id,
        f"entry {mail.id}: Which site?",
    )


def test_notes_and_calls_written_by_hand(account, user):
    bakery = projects.create_project(account.id, "Bakery")
    with pytest.raises(Invalid, match="kind must be note or call"):
        entries.add_manual_entry(bakery, user, kind="sms", text="hi")
    with pytest.raises(Invalid, match="the text is empty"):
        entries.add_manual_entry(bakery, user, kind="note", text="  \n")
    note = entries.add_manual_entry(bakery, user, kind="note", text="@owner and @Mia: call Anna")
    call = entries.add_manual_entry(bakery, user, kind="call", text="Anna called", subject=" Hi ")
    assert (note.category, note.author_id, note.from_address) == ("internal", user.id, user.email)
    assert (call.category, call.subject) == ("customer", "Hi")
    [mention] = Event.select().where(Event.kind == "mention")
    assert json.loads(mention.payload) == {"names": ["Mia", "owner"]}


def test_project_events_of_other_tools(account, user):
    bakery = projects.create_project(account.id, "Bakery")
    refusals = [
        ({"kind": "party", "subject": "x"}, "the event type must be one of status_change"),
        ({"kind": "file_upload", "subject": "x", "status": "live"}, "a status belongs to"),
        ({"kind": "change_request", "subject": "  "}, "the subject is empty"),
        ({"kind": "status_change", "subject": "x", "status": " "}, "the status is empty"),
    ]
    for arguments, message in refusals:
        with pytest.raises(Invalid, match=message):
            entries.record_project_event(bakery, **arguments)
    assert Project.get_by_id(bakery.id).status == "lead" and not Entry.select().exists()
    entry = entries.record_project_event(
        bakery, "status_change", " Went live ", status="live", data={"by": "ci"}, user_id=user.id
    )
    assert (entry.kind, entry.subject, Project.get_by_id(bakery.id).status) == (
        "system",
        "Went live",
        "live",
    )
    [event] = Event.select()
    assert json.loads(event.payload) == {"data": {"by": "ci"}, "from": "lead", "to": "live"}


def test_every_refusal_is_a_value_error_with_its_message():
    for kind in (Invalid, Conflict, NotFound):
        assert issubclass(kind, DomainError) and issubclass(kind, ValueError)
    assert str(Invalid("one", "two")) == "one; two"


def test_two_requests_at_once_store_an_address_on_one_project_only(account, storage_db):
    """Both find the address free before either stores it: the account's lock makes the
    second wait and then see the first's row (PostgreSQL; SQLite's write lock does the same)."""
    import threading

    shops = [projects.create_project(account.id, f"Shop {n}") for n in range(2)]
    start, outcomes = threading.Barrier(2), []

    def add(project):
        start.wait()
        try:
            projects.add_customer_address(project, "anna@b.example")
            outcomes.append("stored")
        except Conflict:
            outcomes.append("conflict")
        finally:
            storage_db.close()

    threads = [threading.Thread(target=add, args=(shop,)) for shop in shops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "stored"]
    assert CustomerAddress.select().count() == 1
