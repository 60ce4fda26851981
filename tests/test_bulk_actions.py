"""Bulk actions on Tickets and Unassigned (issue 17, acceptance 2): many entries in one
transaction, one activity record each; other accounts' entries and read-only users refused."""

from __future__ import annotations

import re

import pytest

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.errors import Forbidden, NotFound
from storage.accounts import create_account
from storage.activity import activity_of_entry
from storage.models import Entry
from storage.timeline import open_ticket_count, unassigned_count
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import csrf_token, post


def _notes(project, user, count: int) -> list[Entry]:
    return [
        domain_entries.add_manual_entry(
            project, user, kind="note", needs_action=True, text=f"Task {number}"
        )
        for number in range(count)
    ]


def _unassigned(account_id: int, count: int, sender: str = "x@unknown.test") -> list[Entry]:
    return [
        receive(account_id, message(f"Question {number}", sender=sender)) for number in range(count)
    ]


def _actions(entry: Entry) -> list[str]:
    return [row.action for row in activity_of_entry(entry.id)]


def test_bulk_done_on_twenty_chosen_tickets_drops_the_count_by_twenty(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    notes = _notes(project, web.users["owner"], 25)
    before = open_ticket_count(web.account.id)
    client = web.client("member")
    chosen = notes[:20]
    response = post(
        client, "/tickets/bulk", {"action": "done", "entry": [str(n.id) for n in chosen]}
    )
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Marked 20 entries done." in page
    assert open_ticket_count(web.account.id) == before - 20
    for note in chosen:
        stored = Entry.get_by_id(note.id)
        assert (stored.status, stored.done_by_id) == ("done", web.users["member"].id)
        assert _actions(note) == ["done"]
    assert all(Entry.get_by_id(n.id).status == "open" for n in notes[20:])


def test_a_bulk_form_with_digits_int_cannot_read_changes_only_the_whole_numbers(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    (note,) = _notes(project, web.users["owner"], 1)
    response = post(
        web.client("member"),
        "/tickets/bulk",
        {"action": "done", "entry": ["\u00b2", "\u0663", str(note.id)]},
    )
    assert response.status_code == 302
    assert Entry.get_by_id(note.id).status == "done"


def test_the_tickets_page_has_a_labelled_checkbox_per_row_and_the_bulk_form(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    [note] = _notes(project, web.users["owner"], 1)
    page = web.client("member").get("/").get_data(as_text=True)
    assert 'id="bulk-form"' in page and 'name="csrf_token"' in page
    assert f'form="bulk-form" name="entry" value="{note.id}" id="select-{note.id}"' in page
    assert f'<label for="select-{note.id}" class="visually-hidden">Select “Task 0”' in page
    assert "Select all 1 matching" in page
    assert 'value="delete"' not in page  # a member does not delete for good
    assert 'value="delete"' in web.client("admin").get("/").get_data(as_text=True)


def test_select_all_matching_takes_every_ticket_shown_then_and_none_that_came_later(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    notes = _notes(project, web.users["owner"], 60)  # more than one page (50)
    client = web.client("member")
    page = client.get("/").get_data(as_text=True)
    upto = re.search(r'name="upto" value="(\d+)"', page).group(1)
    [later] = _notes(project, web.users["owner"], 1)
    response = client.post(
        "/tickets/bulk",
        data={"action": "done", "all": "1", "upto": upto, "csrf_token": csrf_token(client, "/")},
    )
    assert response.status_code == 302
    assert all(Entry.get_by_id(n.id).status == "done" for n in notes)
    assert Entry.get_by_id(later.id).status == "open"
    assert open_ticket_count(web.account.id) == 1


def test_bulk_assign_files_unassigned_mail_with_one_record_each(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Miller")
    mails = _unassigned(web.account.id, 4)
    client = web.client("member")
    page = client.get("/unassigned").get_data(as_text=True)
    assert f'<label for="select-{mails[0].id}" class="visually-hidden">Select “Question 0”' in page
    response = post(
        client,
        "/unassigned/bulk",
        {"action": "assign", "project_id": bakery.id, "entry": [str(m.id) for m in mails[:3]]},
        token_from="/unassigned",
    )
    assert "Filed 3 entries under Bakery Miller." in client.get(response.location).get_data(
        as_text=True
    )
    for mail in mails[:3]:
        stored = Entry.get_by_id(mail.id)
        assert (stored.project_id, stored.route_rule) == (bakery.id, "by_hand")
        assert _actions(mail) == ["assigned"]
    assert Entry.get_by_id(mails[3].id).project_id is None
    assert unassigned_count(web.account.id) == 1


def test_bulk_spam_discards_with_one_record_each(web):
    mails = _unassigned(web.account.id, 3)
    client = web.client("member")
    response = post(
        client,
        "/unassigned/bulk",
        {"action": "spam", "entry": [str(m.id) for m in mails]},
        token_from="/unassigned",
    )
    assert "Discarded 3 entries as spam." in client.get(response.location).get_data(as_text=True)
    for mail in mails:
        stored = Entry.get_by_id(mail.id)
        assert (stored.spam, stored.status, stored.project_id) == (True, "done", None)
        assert _actions(mail) == ["discarded"]
    assert unassigned_count(web.account.id) == 0


def test_bulk_delete_is_for_owners_and_admins(web):
    mails = _unassigned(web.account.id, 2)
    ids = [str(m.id) for m in mails]
    member = web.client("member")
    response = post(member, "/unassigned/bulk", {"action": "delete", "entry": ids})
    assert response.status_code == 403
    assert Entry.select().where(Entry.id.in_([m.id for m in mails])).count() == 2
    admin = web.client("admin")
    response = post(admin, "/unassigned/bulk", {"action": "delete", "entry": ids})
    assert response.status_code == 302
    assert Entry.select().where(Entry.id.in_([m.id for m in mails])).count() == 0


def test_a_read_only_user_sees_no_bulk_form_and_is_refused(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    notes = _notes(project, web.users["owner"], 2)
    _unassigned(web.account.id, 1)
    client = web.client("read-only")
    assert 'id="bulk-form"' not in client.get("/").get_data(as_text=True)
    assert 'id="bulk-form"' not in client.get("/unassigned").get_data(as_text=True)
    token = csrf_token(client, "/profile")
    response = client.post(
        "/tickets/bulk",
        data={"action": "done", "entry": [str(n.id) for n in notes], "csrf_token": token},
    )
    assert response.status_code == 403
    assert all(Entry.get_by_id(n.id).status == "open" for n in notes)
    with pytest.raises(Forbidden):
        domain_entries.set_done_many(web.users["read-only"], [n.id for n in notes], True)


def test_an_entry_of_another_account_refuses_the_whole_lot(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    ours = _notes(project, web.users["owner"], 2)
    other = create_account("Other agency")
    theirs = _unassigned(other.id, 1)
    ids = [ours[0].id, theirs[0].id, ours[1].id]
    with pytest.raises(NotFound):
        domain_entries.set_done_many(web.users["member"], ids, True)
    assert all(Entry.get_by_id(n.id).status == "open" for n in ours)
    response = post(
        web.client("member"), "/tickets/bulk", {"action": "done", "entry": [str(i) for i in ids]}
    )
    assert response.status_code == 404
    assert Entry.get_by_id(theirs[0].id).status == "open"
    theirs_project = domain_projects.create_project(other.id, "Theirs")
    with pytest.raises(NotFound):
        domain_entries.assign_many(web.users["member"], [ours[0].id], theirs_project)


def test_bulk_open_reopens_done_mail_and_nothing_chosen_is_said(web):
    mails = _unassigned(web.account.id, 2)
    domain_entries.set_done_many(web.users["member"], [m.id for m in mails], True)
    client = web.client("member")
    response = post(
        client,
        "/unassigned/bulk",
        {"action": "open", "entry": [str(m.id) for m in mails]},
        token_from="/unassigned",
    )
    assert "Marked 2 entries open." in client.get(response.location).get_data(as_text=True)
    assert [_actions(m) for m in mails] == [["done", "reopened"]] * 2
    response = post(client, "/unassigned/bulk", {"action": "open"}, token_from="/unassigned")
    assert "Choose entries first." in client.get(response.location).get_data(as_text=True)


def _tab_to(page, selector: str, key: str = "Tab", presses: int = 80) -> None:
    """Press Tab (or Shift+Tab) until the element of `selector` has the focus."""
    for _ in range(presses):
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{selector} was not reached by {key}")


def test_in_a_browser_two_rows_are_chosen_by_keyboard_and_marked_done(web, page, network_log):
    from tests.browser import screenshot
    from tests.test_ui_entries import serving
    from tests.web import PASSWORD

    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    first, second, third = _notes(project, web.users["owner"], 3)
    with serving(web.app) as base:
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "member@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        assert page.locator("#open-count").inner_text() == "3"
        for note in (third, first):
            _tab_to(page, f"#select-{note.id}")
            page.keyboard.press("Space")
        assert page.locator(f"#select-{third.id}").is_checked()
        assert page.locator(f"#select-{first.id}").is_checked()
        assert not page.locator(f"#select-{second.id}").is_checked()
        screenshot(page, "tickets-bulk-chosen")
        _tab_to(page, "#bulk-form button[value=done]", key="Shift+Tab")
        with page.expect_navigation():  # the list's URL stays "/": wait for the new page
            page.keyboard.press("Enter")
        page.get_by_text("Marked 2 entries done.").wait_for()
        assert page.locator("#open-count").inner_text() == "1"
        assert page.locator(f"#entry-{second.id}").count() == 1
        screenshot(page, "tickets-bulk-done")
        receive(web.account.id, message("Who is this?", sender="Nina <nina@unknown.test>"))
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        for path in ("/", "/unassigned"):
            page.goto(base + path)
            assert page.locator("#bulk-form").is_visible()
            wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            assert not wide, f"{path} scrolls sideways at 390 px"
            screenshot(page, f"bulk-phone{path.replace('/', '-')}")
        page.locator("input[data-select-page]").check()  # app.js ticks every row's box
        assert page.locator("input[name=entry][form=bulk-form]").evaluate_all(
            "boxes => boxes.every(box => box.checked)"
        )
    assert [Entry.get_by_id(n.id).status for n in (first, second, third)] == [
        "done",
        "open",
        "done",
    ]
    network_log.assert_only_local()
    network_log.assert_no_dialogs()
    network_log.assert_no_console_errors()
