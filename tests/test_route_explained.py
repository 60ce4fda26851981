"""Why an entry is where it is: the entry page, the API and the command line show the same
words, rendered from the decision stored in columns (domain.routing.explain); nothing in the
product reads those words back."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from domain import entries as domain_entries
from domain.blocks import block_sender
from domain.projects import create_project, delete_project
from domain.routing import Rule, decision_of, explain
from domain.tokens import create_api_token
from postroom.outbound import queue_message
from smtpd_ingest.parse import ParseError
from smtpd_ingest.pipeline import file_parsed
from storage.intake import waiting_intakes
from storage.models import CustomerAddress, Entry
from tests.daemon import REPO_ROOT, Daemon
from tests.filing import receive, record_intake
from tests.mail import message

PRODUCT = ("domain", "storage", "smtpd_ingest", "admin_ui", "postroom")


def unreadable(account_id: int) -> Entry:
    """A message whose parse failed, filed raw as the pipeline files it."""
    raw = b"Subject: broken\r\n\r\nnot parsed\r\n"
    [waiting] = waiting_intakes([record_intake(account_id, raw)])
    [filed] = file_parsed([(waiting, raw, ParseError("the MIME structure is broken"))])
    return Entry.get_by_id(filed.entry_id)


def returned(message_id: str, to: str) -> bytes:
    """A delivery report (RFC 3464) that returns the headers of the mail with this id."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@relay.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.test\r\n"
        f"\r\nFinal-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\nTo: {to}\r\nSubject: Your site\r\n"
        "--b--\r\n"
    ).encode()


def one_of_each_rule(web) -> dict[Rule, tuple[Entry, str]]:
    """An entry for every rule, each made the way the product makes it, with the words it
    has always been shown with."""
    account = web.account.id
    owner = web.users["owner"]
    bakery = create_project(
        account, "Bakery", domain="bakery.test", customer_addresses=["anna@bakery.test"]
    )
    shop = create_project(account, "Shop", customer_addresses=["paul@shared.test"])
    gone = create_project(account, "Old Shop", customer_addresses=["olga@old.test"])
    # on two projects, as a database of before that was refused may hold it
    CustomerAddress.create(account=account, project=gone.id, address="paul@shared.test")
    block_sender(account, "x@spam.test", "domain")
    question = receive(account, message("Question", sender="anna@bakery.test"))
    made = {
        Rule.SENDER: (question, "sender: anna@bakery.test is a customer address"),
        Rule.THREAD: (
            receive(
                account,
                message(
                    "Re: Question",
                    sender="bob@else.test",
                    headers={"In-Reply-To": f"<{question.message_id}>"},
                ),
            ),
            f"thread: reply to entry {question.id}",
        ),
        Rule.PROJECT_ADDRESS: (
            receive(account, message("Hi", sender="someone@else.test"), project_hint=shop.id),
            "project_address: sent to the project's reply address",
        ),
        Rule.BLOCKED: (
            receive(account, message("Buy", sender="x@spam.test")),
            "blocked: @spam.test is on the block list",
        ),
        Rule.SHARED_ADDRESS: (
            receive(account, message("Which?", sender="paul@shared.test")),
            "unassigned: paul@shared.test is a customer address of 2 projects",
        ),
        Rule.SAME_DOMAIN: (
            receive(account, message("Hello", sender="new@bakery.test")),
            "unassigned: unknown sender, projects at bakery.test",
        ),
        Rule.UNKNOWN_SENDER: (
            receive(account, message("Hello", sender="stranger@else.test")),
            "unassigned: unknown sender stranger@else.test",
        ),
        Rule.NO_SENDER: (
            receive(account, b"Subject: nobody\r\nMessage-ID: <n@x.test>\r\n\r\ntext\r\n"),
            "unassigned: no From address",
        ),
        Rule.UNPARSEABLE: (unreadable(account), "unassigned: the message could not be parsed"),
        Rule.ADDED_BY_HAND: (
            domain_entries.add_manual_entry(bakery, owner, kind="call", text="called"),
            "added by hand",
        ),
        Rule.SYSTEM: (domain_entries.system_entry(bakery, "Status changed"), "system"),
        Rule.OUTBOUND: (
            queue_message(
                bakery,
                owner,
                "anna@bakery.test",
                "Your site",
                "It is live.",
                settings=web.app.config["POSTROOM_SETTINGS"],
            ),
            "outbound: written in postroom",
        ),
    }
    sent = made[Rule.OUTBOUND][0]
    made[Rule.BOUNCE] = (
        receive(account, returned(sent.message_id, "anna@bakery.test")),
        f"bounce: returned mail of entry {sent.id}",
    )
    by_hand = receive(account, message("Assign me", sender="carl@else.test"))
    domain_entries.assign(by_hand, bakery, owner.id, remember_sender=False)
    made[Rule.BY_HAND] = (by_hand, "assigned by hand")
    kept = receive(account, message("Kept", sender="olga@old.test"))
    delete_project(gone, owner.id)
    made[Rule.PROJECT_DELETED] = (kept, "project Old Shop was deleted")
    legacy = receive(account, message("Before 0011", sender="lena@else.test"))
    # an entry filed before migration 0011: rule "legacy", its old sentence as the detail
    Entry.update(route_rule="legacy", route_detail="no_match").where(
        Entry.id == legacy.id
    ).execute()
    made[Rule.LEGACY] = (legacy, "no_match")
    return {rule: (Entry.get_by_id(entry.id), words) for rule, (entry, words) in made.items()}


def api_answers(web, made: dict) -> dict[Rule, dict]:
    token = create_api_token(web.users["member"])
    client = web.app.test_client()
    answers = {}
    for rule, (entry, _) in made.items():
        answer = client.get(
            f"/api/v1/entries/{entry.id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        answers[rule] = answer.get_json()
    return answers


def test_the_entry_page_and_the_api_show_the_same_words_for_every_rule(web):
    made = one_of_each_rule(web)
    assert set(made) == set(Rule)
    browser = web.client("member")
    answers = api_answers(web, made)
    for rule, (entry, words) in made.items():
        assert entry.route_rule == rule.value
        assert explain(decision_of(entry)) == words, rule
        page = html.unescape(browser.get(f"/entries/{entry.id}").get_data(as_text=True))
        assert f"Routed: {words}." in page, rule
        assert answers[rule]["route_reason"] == words, rule
        assert answers[rule]["route"] == {
            "rule": rule.value,
            "detail": entry.route_detail,
            "project_id": entry.project_id,
            "candidates": entry.candidate_ids,
            "category": entry.category,
        }
    shared, _ = made[Rule.SHARED_ADDRESS]
    assert len(shared.candidate_ids) == 2


def test_the_command_line_shows_what_the_api_does_for_every_rule(web, db_url, tmp_path):
    made = one_of_each_rule(web)
    answers = api_answers(web, made)
    listed = {e["id"]: e for e in Daemon(tmp_path / "cli", db_url).cli_json("entries", "list")}
    for rule, (entry, words) in made.items():
        assert listed[entry.id]["route_reason"] == words == answers[rule]["route_reason"], rule
        assert listed[entry.id]["route"] == answers[rule]["route"], rule


def test_the_unassigned_list_says_why_without_the_heading_every_entry_there_has(web):
    made = one_of_each_rule(web)
    page = html.unescape(web.client("member").get("/unassigned").get_data(as_text=True))
    for rule, why in (
        (Rule.UNKNOWN_SENDER, "unknown sender stranger@else.test"),
        (Rule.SAME_DOMAIN, "unknown sender, projects at bakery.test"),
        (Rule.SHARED_ADDRESS, "paul@shared.test is a customer address of 2 projects"),
        (Rule.NO_SENDER, "no From address"),
        (Rule.UNPARSEABLE, "the message could not be parsed"),
        (Rule.PROJECT_DELETED, "project Old Shop was deleted"),
        (Rule.LEGACY, "no_match"),
    ):
        entry, _ = made[rule]
        assert entry.project_id is None
        assert f"Why it is here: {why}</p>" in page, rule


def _product_files(suffix: str) -> list[Path]:
    return [p for package in PRODUCT for p in sorted((REPO_ROOT / package).rglob(f"*{suffix}"))]


def test_no_product_file_reads_route_reason():
    """route_reason is words for people, written by domain.routing.explain; code decides by
    entry.route_rule and reads nothing back from the words (nor from the column of before
    0011, which only older writers fill)."""
    readers = []
    for path in _product_files(".py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            read = (
                isinstance(node, ast.Attribute)
                and node.attr == "route_reason"
                and isinstance(node.ctx, ast.Load)
            ) or (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and node.slice.value == "route_reason"
                and isinstance(node.ctx, ast.Load)
            )
            if read:
                readers.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    method_or_test = re.compile(r"route_reason\s*[.|\[]|\bin\s+[\w.]*route_reason")
    for path in _product_files(".html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "entry.route_reason" in line or method_or_test.search(line):
                readers.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert readers == []
