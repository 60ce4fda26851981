"""Assign and remember sender files every other waiting mail from that sender too (issue 17,
acceptance 2): in one transaction, one activity record per entry, and the UI says how many."""

from __future__ import annotations

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.tokens import create_api_token
from storage.accounts import create_account
from storage.activity import activity_of_entry
from storage.models import Activity, Entry
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import post


def _waiting(account_id: int, sender: str, count: int) -> list[Entry]:
    return [
        receive(account_id, message(f"Question {number}", sender=sender)) for number in range(count)
    ]


def test_five_waiting_mails_from_one_sender_are_all_filed_with_one_record_each(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Miller")
    mails = _waiting(web.account.id, "Anna <anna@miller.test>", 5)
    stranger = receive(web.account.id, message("Other", sender="paul@elsewhere.test"))
    spam = receive(web.account.id, message("Spam", sender="anna@miller.test"))
    domain_entries.discard_spam(spam, None)
    theirs = create_account("Other agency")
    foreign = receive(theirs.id, message("Hi", sender="anna@miller.test"))
    assert all(mail.project_id is None for mail in mails)

    client = web.client("member")
    response = post(
        client, f"/unassigned/{mails[2].id}/assign", {"project_id": bakery.id, "remember": "1"}
    )
    page = client.get(response.location).get_data(as_text=True)
    assert "under Bakery Miller, and 4 more from anna@miller.test." in page

    for mail in mails:
        stored = Entry.get_by_id(mail.id)
        assert (stored.project_id, stored.category, stored.route_rule) == (
            bakery.id,
            "customer",
            "by_hand",
        )
        assert [a.action for a in activity_of_entry(mail.id)] == ["assigned"]
    assigned = Activity.select().where(Activity.action == "assigned")
    assert assigned.count() == 5
    assert Entry.get_by_id(stranger.id).project_id is None
    assert Entry.get_by_id(spam.id).spam  # spam stays spam
    assert Entry.get_by_id(foreign.id).project_id is None  # another account's mail stays


def test_assigning_without_remembering_files_the_one_mail_only(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Miller")
    first, second = _waiting(web.account.id, "anna@miller.test", 2)
    client = web.client("member")
    response = post(
        client, f"/unassigned/{first.id}/assign", {"project_id": bakery.id, "remember": "0"}
    )
    assert "more from" not in client.get(response.location).get_data(as_text=True)
    assert Entry.get_by_id(second.id).project_id is None


def test_the_domain_function_reports_what_it_filed_with_the_entry(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Miller")
    shop = domain_projects.create_project(
        web.account.id, "Shop", customer_addresses=["ben@shop.test"]
    )
    first, *others = _waiting(web.account.id, "anna@miller.test", 3)
    done = domain_entries.assign_mail(first, bakery, web.users["member"].id, True)
    assert done.entry.id == first.id
    assert sorted(entry.id for entry in done.also) == sorted(entry.id for entry in others)

    ben = _waiting(web.account.id, "ben@shop.test", 2)  # routed to Shop on their own
    assert all(entry.project_id == shop.id for entry in ben)


def test_the_api_assign_files_the_other_waiting_mail_too(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Miller")
    mails = _waiting(web.account.id, "anna@miller.test", 3)
    token = create_api_token(web.users["member"], "test")
    response = web.app.test_client().post(
        f"/api/v1/entries/{mails[0].id}/assign",
        json={"project_id": bakery.id, "remember_sender": True},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.get_json()
    assert {Entry.get_by_id(mail.id).project_id for mail in mails} == {bakery.id}
