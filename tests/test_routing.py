"""Routing: which project received mail belongs to, and why (domain.routing).

The rules and their order are tested in-process over a real database (the facts routing
reads); filing through the ingest pipeline in-process too (parse, route, file). Two tests
go through a running daemon, end to end: a customer's mail in any case of its address, and
mail to a project's reply address (a guessed one refused at RCPT).
"""

from __future__ import annotations

import pytest

from domain.blocks import block_sender
from domain.projects import create_project
from domain.routing import Decision, Inbound, Rule, explain, route_many
from domain.users import create_user
from smtpd_ingest.parser_pool import InlineParser
from smtpd_ingest.pipeline import reprocess_entry
from storage.accounts import create_account
from storage.models import CustomerAddress, Entry
from tests.filing import receive, record_intake
from tests.mail import message


@pytest.fixture
def agency(storage_db):
    """An account with a team member, projects, a shared address, a partner and a block rule."""
    account = create_account("Agency")
    create_user(account.id, "pat@agency.test", "member", "correct horse battery")
    bakery = create_project(
        account.id,
        "Bakery",
        domain="bakery.test",
        customer_addresses=["anna@bakery.test"],
        addresses=[("designer@studio.test", "partner")],
    )
    shop = create_project(account.id, "Shop", customer_addresses=["paul@shared.test"])
    blog = create_project(account.id, "Blog")
    # on two projects, as databases of before that was refused may hold it
    CustomerAddress.create(account=account.id, project=blog.id, address="paul@shared.test")
    old = create_project(account.id, "Old", status="archived", customer_addresses=["otto@old.test"])
    block_sender(account.id, "x@spam.test", "domain")
    return account, {"bakery": bakery, "shop": shop, "blog": blog, "old": old}


def test_every_rule_of_routing_in_its_order(agency):
    account, projects = agency
    bakery, shop, blog = projects["bakery"].id, projects["shop"].id, projects["blog"].id
    question = receive(account.id, message("Question", sender="anna@bakery.test"))
    asked = question.message_id
    a = account.id
    cases = [
        # blocked comes first: before a thread, a reply address, a customer address
        (Inbound(a, "X@Spam.test", answers=(asked,), project_hint=shop), Rule.BLOCKED),
        # a thread comes before the reply address and the sender
        (
            Inbound(a, "paul@shared.test", answers=("no@where", asked), project_hint=shop),
            Rule.THREAD,
        ),
        # the reply address before the sender
        (Inbound(a, "anna@bakery.test", project_hint=shop), Rule.PROJECT_ADDRESS),
        (Inbound(a, " Anna@BAKERY.test "), Rule.SENDER),
        (Inbound(a, "paul@shared.test"), Rule.SHARED_ADDRESS),
        (Inbound(a, "new.colleague@bakery.test"), Rule.SAME_DOMAIN),
        (Inbound(a, "otto@old.test"), Rule.UNKNOWN_SENDER),  # an archived project's address
        (Inbound(a, "stranger@else.test"), Rule.UNKNOWN_SENDER),
        (Inbound(a, ""), Rule.NO_SENDER),
        (Inbound(a, parsed=False), Rule.UNPARSEABLE),
        (Inbound(a, parsed=False, project_hint=shop), Rule.PROJECT_ADDRESS),
        (Inbound(a + 1, "anna@bakery.test"), Rule.UNKNOWN_SENDER),  # another account's
    ]
    decisions = route_many([item for item, _ in cases])
    assert [d.rule for d in decisions] == [rule for _, rule in cases]
    blocked, thread, reply_address, sender, shared, domain, *_ = decisions
    assert (blocked.detail, blocked.project_id, blocked.spam) == ("@spam.test", None, True)
    assert (thread.detail, thread.project_id) == (str(question.id), bakery)
    assert (reply_address.project_id, reply_address.detail) == (shop, "")
    assert (sender.detail, sender.project_id, sender.candidates) == ("anna@bakery.test", bakery, ())
    assert (shared.project_id, sorted(shared.candidates)) == (None, sorted([shop, blog]))
    assert (domain.detail, domain.candidates) == ("bakery.test", (bakery,))
    assert not any(d.spam for d in decisions[1:])


def test_the_category_is_decided_with_the_route(agency):
    account, projects = agency
    bakery = projects["bakery"].id
    question = receive(account.id, message("Question", sender="anna@bakery.test"))
    a, asked = account.id, (question.message_id,)
    decisions = route_many(
        [
            Inbound(a, "anna@bakery.test"),  # a customer address of the project
            Inbound(a, "designer@studio.test", answers=asked),  # a partner, in its thread
            Inbound(a, "pat@agency.test", answers=asked),  # the team
            Inbound(a, "pat@agency.test"),  # the team, unassigned
            Inbound(a, "anna@bakery.test", project_hint=projects["shop"].id),  # not Shop's
            Inbound(a, "stranger@else.test"),
        ]
    )
    assert [d.category for d in decisions] == [
        "customer",
        "partner",
        "internal",
        "internal",
        "external",
        "external",
    ]
    assert decisions[1].project_id == bakery
    assert question.category == "customer"


def test_a_reply_in_the_same_batch_joins_the_thread_of_the_mail_it_answers(agency):
    account, projects = agency
    a = account.id
    first, reply, unrelated = route_many(
        [
            Inbound(a, "anna@bakery.test", message_id="q@bakery.test"),
            Inbound(a, "bob@else.test", answers=("q@bakery.test",)),
            Inbound(a, "bob@else.test", answers=("other@else.test",)),
        ]
    )
    assert first.rule is Rule.SENDER
    assert (reply.rule, reply.project_id, reply.joins) == (
        Rule.THREAD,
        projects["bakery"].id,
        "q@bakery.test",
    )
    assert reply.detail == ""  # the entry's id, known once it is filed
    assert unrelated.rule is Rule.UNKNOWN_SENDER


def test_one_batch_through_the_pipeline_names_the_entry_a_reply_answers(agency):
    """Filed together, the reply names the question's entry, as if they came apart."""
    from smtpd_ingest.pipeline import file_parsed
    from storage.intake import waiting_intakes

    account, projects = agency
    question = message("Question", sender="anna@bakery.test")
    asked = question.split(b"Message-ID: <")[1].split(b">")[0].decode()
    answer = message("Re: Question", sender="bob@else.test", headers={"In-Reply-To": f"<{asked}>"})
    ids = [record_intake(account.id, question), record_intake(account.id, answer)]
    parser = InlineParser()
    waiting = waiting_intakes(ids)
    filed = file_parsed(
        [(w, raw, parser.parse(raw)) for w, raw in zip(waiting, [question, answer], strict=True)]
    )
    first, reply = (Entry.get_by_id(f.entry_id) for f in filed)
    assert (reply.route_rule, reply.route_detail) == ("thread", str(first.id))
    assert reply.project_id == first.project_id == projects["bakery"].id
    assert [f.route_detail for f in filed] == ["anna@bakery.test", str(first.id)]


def test_each_decision_is_put_into_the_words_entries_always_showed():
    words = {
        Decision(Rule.BLOCKED, "@spam.test"): "blocked: @spam.test is on the block list",
        Decision(Rule.THREAD, "12", 3): "thread: reply to entry 12",
        Decision(Rule.PROJECT_ADDRESS, "", 3): (
            "project_address: sent to the project's reply address"
        ),
        Decision(
            Rule.SENDER, "anna@bakery.test", 3
        ): "sender: anna@bakery.test is a customer address",
        Decision(Rule.SHARED_ADDRESS, "paul@shared.test", None, (4, 5)): (
            "unassigned: paul@shared.test is a customer address of 2 projects"
        ),
        Decision(Rule.SAME_DOMAIN, "bakery.test", None, (3,)): (
            "unassigned: unknown sender, projects at bakery.test"
        ),
        Decision(Rule.UNKNOWN_SENDER, "x@y.test"): "unassigned: unknown sender x@y.test",
        Decision(Rule.NO_SENDER): "unassigned: no From address",
        Decision(Rule.UNPARSEABLE): "unassigned: the message could not be parsed",
        Decision(Rule.BY_HAND, "", 3): "assigned by hand",
        Decision(Rule.ADDED_BY_HAND, "", 3): "added by hand",
        Decision(Rule.SYSTEM, "", 3): "system",
        Decision(Rule.OUTBOUND, "", 3): "outbound: written in postroom",
        Decision(Rule.PROJECT_DELETED, "Bakery"): "project Bakery was deleted",
        Decision(Rule.LEGACY, "customer_address"): "customer_address",
        Decision(Rule.LEGACY): "",
        Decision(Rule.BOUNCE, "41", 3): "bounce: returned mail of entry 41",
    }
    assert {rule for rule in Rule} == {d.rule for d in words}
    for decision, sentence in words.items():
        assert explain(decision) == sentence
    # the list of unassigned mail leaves out the heading every entry there would have
    assert explain(Decision(Rule.NO_SENDER), unassigned_list=True) == "no From address"
    assert (
        explain(Decision(Rule.BLOCKED, "@spam.test"), unassigned_list=True)
        == "blocked: @spam.test is on the block list"
    )


def test_filed_mail_keeps_its_decision_in_columns(agency):
    account, projects = agency
    entry = receive(account.id, message("Which site?", sender="paul@shared.test"))
    assert (entry.project_id, entry.route_rule, entry.route_detail) == (
        None,
        "shared_address",
        "paul@shared.test",
    )
    assert sorted(entry.candidate_ids) == sorted([projects["shop"].id, projects["blog"].id])
    assert entry.route_reason == ""  # the column of before 0011 is no longer written
    spam = receive(account.id, message("Buy", sender="x@spam.test"))
    assert (spam.spam, spam.status, spam.route_rule, spam.route_detail) == (
        True,
        "done",
        "blocked",
        "@spam.test",
    )


def test_reprocess_keeps_the_decision_of_filed_mail_and_routes_unassigned_mail_again(agency):
    account, projects = agency
    filed = receive(account.id, message("Hello", sender="anna@bakery.test"))
    waiting = receive(account.id, message("Hello", sender="new@later.test"))
    create_project(account.id, "Later", customer_addresses=["new@later.test"])
    Entry.update(route_rule="by_hand", route_detail="").where(Entry.id == filed.id).execute()
    for entry in (filed, waiting):
        reprocess_entry(Entry.get_by_id(entry.id), InlineParser())
    filed, waiting = Entry.get_by_id(filed.id), Entry.get_by_id(waiting.id)
    assert (filed.project_id, filed.route_rule, filed.category) == (
        projects["bakery"].id,
        "by_hand",
        "customer",
    )
    assert (waiting.route_rule, waiting.route_detail, waiting.category) == (
        "sender",
        "new@later.test",
        "customer",
    )
    assert [p.address for p in waiting.participants if p.role == "from"] == ["new@later.test"]


def test_auto_replies_bounces_and_mailing_lists_are_marked(agency, corpus_dir):
    account, _ = agency
    auto = receive(account.id, message("Out of office", headers={"Auto-Submitted": "auto-replied"}))
    assert (auto.auto_submitted, auto.is_bounce, auto.is_list) == (True, False, False)
    dsn = (corpus_dir / "flanker" / "bounce" / "mailbox-full.eml").read_bytes()
    assert b"multipart/report" in dsn and b"delivery-status" in dsn
    bounce = receive(account.id, dsn)
    assert bounce.is_bounce and bounce.subject == "Undelivered Mail Returned to Sender"
    listed = receive(account.id, message("Digest", headers={"List-Id": "<news.list.test>"}))
    assert (listed.is_list, listed.is_bounce, listed.auto_submitted) == (True, False, False)
    plain = receive(account.id, message("Hello"))
    assert (plain.auto_submitted, plain.is_bounce, plain.is_list) == (False, False, False)


# --- end to end, over a running daemon ---------------------------------------------------------
def test_mail_from_a_stored_customer_address_in_any_case_lands_in_that_project(daemon):
    account = daemon.account["id"]
    project = daemon.create_project(account, "Bakery Miller", "Anna.Miller@Bakery.test")
    daemon.send(message("New opening hours", sender="Anna <ANNA.MILLER@bakery.TEST>"))
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] == project["id"]
    assert entry["route"]["rule"] == "sender"
    assert entry["route_reason"] == "sender: anna.miller@bakery.test is a customer address"


def test_mail_to_a_project_reply_address_lands_there_and_a_guessed_one_is_refused(daemon):
    project = daemon.create_project(daemon.account["id"], "Bakery")
    local, domain = project["reply_address"].split("@")
    with daemon.smtp() as client:
        client.mail("a@b.test")
        assert client.rcpt(local[:-4] + "aaaa@" + domain)[0] == 550
    daemon.send(message("Answer", sender="someone@else.test"), to=[project["reply_address"]])
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] == project["id"]
    assert entry["route"] == {
        "rule": "project_address",
        "detail": "",
        "project_id": project["id"],
        "candidates": [],
        "category": "external",
    }
