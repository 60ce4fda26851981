"""The Unassigned page: mail that found no project is assigned, discarded or deleted."""

from __future__ import annotations

import hashlib
import re

from domain import projects as domain_projects
from storage import accounts
from storage.intake import Delivery, IntakeBatchItem, record_batch
from storage.models import BlockRule, CustomerAddress, Entry, utcnow
from tests.filing import file_intake
from tests.mail import message
from tests.web import post


def receive(account_id: int, raw: bytes) -> Entry:
    """Deliver raw mail the way the daemon does: intake record, real parse, real route, store."""
    digest = hashlib.sha256(raw).hexdigest()
    delivery = Delivery(
        queue_id=f"Q{digest[:10].upper()}",
        account_id=account_id,
        recipient="inbox@in.example",
        project_hint=None,
        mail_from="bounce@customer.test",
        peer="127.0.0.1:40000",
        helo="mx.agency.test",
        protocol="lmtp",
        received_at=utcnow(),
    )
    [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))])
    return file_intake(recorded.intake_id)


def test_unassigned_mail_is_listed_with_reason_candidates_and_the_inbox_address(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Sommer", domain="bakery.test")
    entry = receive(
        web.account.id,
        message("New opening hours", sender="Anna <anna@bakery.test>", body="Mon–Fri 7–18 " * 40),
    )
    assert entry.project_id is None and entry.candidate_ids == [bakery.id]
    page = web.client("member").get("/unassigned").get_data(as_text=True)
    assert "New opening hours" in page
    assert "anna@bakery.test" in page
    assert "Mon–Fri 7–18" in page and "Mon–Fri 7–18 " * 40 not in page  # a snippet only
    assert "unknown sender, projects at bakery.test" in page
    assert f'name="project_id" value="{bakery.id}"' in page  # the candidate's quick button
    inbox = f"inbox+{web.account.id}.{web.account.inbox_token}@in.example"
    assert inbox in page
    assert 'id="unassigned-count">1<' in page


def test_assigning_files_the_mail_under_the_project(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Sommer")
    entry = receive(web.account.id, message("Hello", sender="anna@elsewhere.test"))
    client = web.client("member")
    response = post(
        client, f"/unassigned/{entry.id}/assign", {"project_id": bakery.id, "remember": "0"}
    )
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Filed “Hello” under Bakery Sommer." in page
    assert Entry.get_by_id(entry.id).project_id == bakery.id
    assert CustomerAddress.select().count() == 0
    assert "Nothing unassigned" in page


def test_assign_and_remember_sender_files_the_next_mail_on_its_own(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Sommer")
    first = receive(web.account.id, message("First", sender="Anna <Anna@Elsewhere.test>"))
    client = web.client("member")
    response = post(
        client, f"/unassigned/{first.id}/assign", {"project_id": bakery.id, "remember": "1"}
    )
    assert "will go there from now on" in client.get(response.location).get_data(as_text=True)
    assert [a.address for a in bakery.customer_addresses] == ["anna@elsewhere.test"]
    later = receive(web.account.id, message("Second", sender="anna@elsewhere.test"))
    assert later.project_id == bakery.id
    assert later.route_rule == "sender"


def test_a_project_search_narrows_the_choice(web):
    domain_projects.create_project(web.account.id, "Bakery Sommer", domain="bakery.test")
    domain_projects.create_project(web.account.id, "Garage Nord", domain="garage.test")
    receive(web.account.id, message("Hello", sender="someone@else.test"))
    page = web.client("member").get("/unassigned?q=garage").get_data(as_text=True)
    assert "Garage Nord" in page and "Bakery Sommer" not in page


def test_discarding_with_block_domain_sends_later_mail_from_there_to_spam(web):
    entry = receive(web.account.id, message("Cheap pills", sender="spam@junk.test"))
    client = web.client("member")
    response = post(client, f"/unassigned/{entry.id}/discard", {"block": "domain"})
    page = client.get(response.location).get_data(as_text=True)
    assert "Discarded “Cheap pills” as spam. Later mail from @junk.test goes to spam." in page
    assert Entry.get_by_id(entry.id).spam
    assert [r.pattern for r in BlockRule.select()] == ["@junk.test"]
    later = receive(web.account.id, message("More pills", sender="other@junk.test"))
    assert later.spam and later.route_rule == "blocked"
    assert "More pills" not in client.get("/unassigned").get_data(as_text=True)


def test_deleting_removes_the_mail_and_the_form_asks_first(web):
    entry = receive(web.account.id, message("Wrong address", sender="x@y.test"))
    client = web.client("admin")
    page = client.get("/unassigned").get_data(as_text=True)
    assert re.search(rf'<form [^>]*action="/unassigned/{entry.id}/delete"[^>]*data-confirm=', page)
    response = post(client, f"/unassigned/{entry.id}/delete")
    assert "Deleted “Wrong address”." in client.get(response.location).get_data(as_text=True)
    assert Entry.get_or_none(Entry.id == entry.id) is None


def test_members_may_discard_but_not_delete_for_good(web):
    entry = receive(web.account.id, message("Wrong address", sender="x@y.test"))
    client = web.client("member")
    page = client.get("/unassigned").get_data(as_text=True)
    assert "Discard as spam" in page
    assert f'action="/unassigned/{entry.id}/delete"' not in page
    assert post(client, f"/unassigned/{entry.id}/delete").status_code == 403
    assert Entry.get_or_none(Entry.id == entry.id) is not None
    owner = web.client("owner")
    assert f'action="/unassigned/{entry.id}/delete"' in owner.get("/unassigned").get_data(
        as_text=True
    )
    assert post(owner, f"/unassigned/{entry.id}/delete").status_code == 302
    assert Entry.get_or_none(Entry.id == entry.id) is None


def test_actions_on_another_accounts_mail_are_not_found(web):
    other = accounts.create_account("Other agency")
    foreign = receive(other.id, message("Theirs", sender="x@y.test"))
    mine = domain_projects.create_project(web.account.id, "Mine")
    client = web.client("admin")
    for action, data in (("assign", {"project_id": mine.id}), ("discard", {}), ("delete", {})):
        assert post(client, f"/unassigned/{foreign.id}/{action}", data).status_code == 404
    assert Entry.get_by_id(foreign.id).project_id is None and not Entry.get_by_id(foreign.id).spam


def test_a_project_of_another_account_cannot_be_chosen(web):
    other = accounts.create_account("Other agency")
    theirs = domain_projects.create_project(other.id, "Theirs")
    entry = receive(web.account.id, message("Hello", sender="x@y.test"))
    client = web.client("member")
    response = post(client, f"/unassigned/{entry.id}/assign", {"project_id": theirs.id})
    assert "Choose a project first." in client.get(response.location).get_data(as_text=True)
    assert Entry.get_by_id(entry.id).project_id is None


def test_read_only_users_see_the_list_but_cannot_act(web):
    entry = receive(web.account.id, message("Hello", sender="x@y.test"))
    client = web.client("read-only")
    page = client.get("/unassigned").get_data(as_text=True)
    assert "Hello" in page and "Discard as spam" not in page
    for action in ("assign", "discard", "delete"):
        assert post(client, f"/unassigned/{entry.id}/{action}").status_code == 403
    assert Entry.get_or_none(Entry.id == entry.id) is not None
