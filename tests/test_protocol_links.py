"""A link to an entry opens the protocol page that holds it (issue 17, acceptance 7), and the
protocol has the bulk actions of Tickets (acceptance 2, the protocol's part)."""

from __future__ import annotations

import datetime as dt
import re

from domain import entries as domain_entries
from domain import projects as domain_projects
from storage.activity import activity_of_entry
from storage.models import Entry
from tests.web import csrf_token, post

START = dt.datetime(2026, 11, 1, 9, 0)
ROW = re.compile(r'<li id="entry-(\d+)"')


def _calls(project, user, count: int, *, start: dt.datetime = START, same_time=False):
    """Calls from the customer (they start open), one a minute (or all at one time), oldest
    first."""
    return [
        domain_entries.add_manual_entry(
            project,
            user,
            kind="call",
            text=f"Call {number}",
            occurred_at=start if same_time else start + dt.timedelta(minutes=number),
        )
        for number in range(count)
    ]


def _rows(page: str) -> list[int]:
    return [int(found) for found in ROW.findall(page)]


def _older_link(page: str) -> str:
    return re.search(r'<a href="([^"]+)" rel="next">', page).group(1).replace("&amp;", "&")


def test_a_link_opens_page_three_at_the_entry_as_older_twice_would(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    calls = _calls(project, web.users["owner"], 130)
    newest_first = [c.id for c in reversed(calls)]
    target = newest_first[110]  # the 111th: page 3 of 50 a page
    client = web.client("member")
    walked = client.get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    for _ in range(2):
        walked = client.get(_older_link(walked)).get_data(as_text=True)
    response = client.get(f"/projects/{project.id}/protocol?entry={target}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _rows(page) == _rows(walked) == newest_first[100:130]
    assert "Page 3" in page and "Page 3" in walked
    row = re.search(rf'<li id="entry-{target}"[^>]*>', page).group(0)
    assert " linked" in row and 'aria-current="true"' in row
    assert page.count('aria-current="true"') == 1 and page.count("linked entry") == 1
    assert "← Newest" in page
    # the bulk form comes back to this page: it carries the page's before and number
    assert f'<input type="hidden" name="before" value="{newest_first[99]}">' in page
    assert '<input type="hidden" name="page" value="3">' in page
    response = post(
        client,
        f"/projects/{project.id}/protocol/bulk",
        {"action": "done", "entry": [str(target)], "before": newest_first[99], "page": "3"},
        token_from=f"/projects/{project.id}/protocol",
    )
    assert response.location == (
        f"/projects/{project.id}/protocol?before={newest_first[99]}&page=3"
    )
    again = client.get(response.location).get_data(as_text=True)
    assert _rows(again) == newest_first[100:130] and "Marked 1 entry done." in again
    # the older link of that page goes on to page 4 (none here: 130 entries end on page 3)
    assert 'rel="next"' not in page


def test_entries_at_one_time_are_paged_by_id_as_the_protocol_orders_them(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    calls = _calls(project, web.users["owner"], 75, same_time=True)
    newest_first = [c.id for c in reversed(calls)]
    client = web.client("member")
    for position in (0, 49, 50, 74):
        page = client.get(
            f"/projects/{project.id}/protocol?entry={newest_first[position]}"
        ).get_data(as_text=True)
        expected = newest_first[:50] if position < 50 else newest_first[50:]
        assert _rows(page) == expected, position
        assert f"Page {1 + position // 50}" in page or position < 50


def test_the_page_is_counted_with_the_search_and_filters_of_the_page(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    owner = web.users["owner"]
    calls = _calls(project, owner, 60)
    for number in range(60):  # a system entry between each two calls
        domain_entries.system_entry(project, f"Status {number}")
    newest_calls = [c.id for c in reversed(calls)]
    target = newest_calls[55]
    client = web.client("member")
    base = f"/projects/{project.id}/protocol"
    filtered = client.get(f"{base}?kind=call&entry={target}").get_data(as_text=True)
    assert _rows(filtered) == newest_calls[50:60]
    assert "Page 2" in filtered and 'name="kind" value="call"' in filtered
    # the link of the older page keeps the filter
    assert "kind=call" in re.search(r'<a href="([^"]+)">← Newest', filtered).group(1)
    words = client.get(f"{base}?q=Call&entry={target}").get_data(as_text=True)
    assert _rows(words) == newest_calls[50:60]
    # the whole protocol: 60 system entries are newer than every call
    whole = client.get(f"{base}?entry={target}").get_data(as_text=True)
    assert "Page 3" in whole and target in _rows(whole)


def test_a_link_to_an_entry_the_filters_leave_out_says_so(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    [call] = _calls(project, web.users["owner"], 1)
    client = web.client("member")
    page = client.get(f"/projects/{project.id}/protocol?kind=note&entry={call.id}")
    text = page.get_data(as_text=True)
    assert "The linked entry is not among the entries that match" in text
    assert f'href="/projects/{project.id}/protocol?entry={call.id}#entry-{call.id}"' in text


def test_an_unknown_or_foreign_entry_opens_the_first_page_unmarked(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    other = domain_projects.create_project(web.account.id, "Flower Shop")
    [call] = _calls(project, web.users["owner"], 1)
    [elsewhere] = _calls(other, web.users["owner"], 1)
    client = web.client("member")
    for value in (str(elsewhere.id), "0", "-3", "x", "99999999999999"):
        response = client.get(f"/projects/{project.id}/protocol?entry={value}")
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert _rows(page) == [call.id] and 'aria-current="true"' not in page


def test_tickets_and_the_entry_page_link_to_the_protocol_page_of_the_entry(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    [call] = _calls(project, web.users["owner"], 1)
    client = web.client("member")
    link = f"/projects/{project.id}/protocol?entry={call.id}#entry-{call.id}"
    assert f'href="{link}"' in client.get("/").get_data(as_text=True)
    assert f'href="{link}"' in client.get(f"/entries/{call.id}").get_data(as_text=True)


# --- bulk actions on the protocol --------------------------------------------------------------
def _actions(entry: Entry) -> list[str]:
    return [row.action for row in activity_of_entry(entry.id)]


def test_protocol_bulk_done_and_open_with_one_record_each(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    calls = _calls(project, web.users["owner"], 4)
    client = web.client("member")
    base = f"/projects/{project.id}/protocol"
    page = client.get(base).get_data(as_text=True)
    assert f'action="{base}/bulk"' in page
    assert f'form="bulk-form" name="entry" value="{calls[0].id}"' in page
    assert "Select all 4 matching" in page
    assert 'value="delete"' not in page  # a member does not delete for good
    chosen = [str(c.id) for c in calls[:3]]
    response = post(client, f"{base}/bulk", {"action": "done", "entry": chosen}, token_from=base)
    assert response.status_code == 302 and response.location.startswith(base)
    assert "Marked 3 entries done." in client.get(response.location).get_data(as_text=True)
    assert [Entry.get_by_id(c.id).status for c in calls] == ["done"] * 3 + ["open"]
    assert [_actions(c) for c in calls[:3]] == [["done"]] * 3
    response = post(
        client, f"{base}/bulk", {"action": "open", "entry": chosen[:1]}, token_from=base
    )
    assert "Marked 1 entry open." in client.get(response.location).get_data(as_text=True)
    assert _actions(calls[0]) == ["done", "reopened"]
    response = post(client, f"{base}/bulk", {"action": "spam", "entry": chosen}, token_from=base)
    assert "That action is not offered here." in client.get(response.location).get_data(
        as_text=True
    )
    assert not any(Entry.get_by_id(c.id).spam for c in calls)


def test_protocol_select_all_matching_takes_the_filtered_entries_up_to_the_page(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    calls = _calls(project, web.users["owner"], 55)
    system = [domain_entries.system_entry(project, f"Status {n}") for n in range(3)]
    domain_entries.set_done_many(web.users["owner"], [s.id for s in system], False)
    client = web.client("member")
    base = f"/projects/{project.id}/protocol"
    page = client.get(f"{base}?kind=call").get_data(as_text=True)
    assert "Select all 55 matching" in page
    assert '<input type="hidden" name="kind" value="call">' in page
    upto = re.search(r'name="upto" value="(\d+)"', page).group(1)
    [later] = _calls(project, web.users["owner"], 1, start=START + dt.timedelta(days=1))
    response = client.post(
        f"{base}/bulk",
        data={
            "action": "done",
            "all": "1",
            "upto": upto,
            "kind": "call",
            "csrf_token": csrf_token(client, base),
        },
    )
    assert response.location == f"{base}?kind=call"
    assert "Marked 55 entries done." in client.get(response.location).get_data(as_text=True)
    assert all(Entry.get_by_id(c.id).status == "done" for c in calls)
    assert Entry.get_by_id(later.id).status == "open"  # came after the page was shown
    assert [Entry.get_by_id(s.id).status for s in system] == ["open"] * 3  # filtered out
    assert all(_actions(c) == ["done"] for c in calls)


def test_protocol_bulk_delete_is_for_admins_and_takes_only_the_projects_entries(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    other = domain_projects.create_project(web.account.id, "Flower Shop")
    calls = _calls(project, web.users["owner"], 2)
    [elsewhere] = _calls(other, web.users["owner"], 1)
    base = f"/projects/{project.id}/protocol"
    admin = web.client("admin")
    assert 'value="delete"' in admin.get(base).get_data(as_text=True)
    mixed = [str(calls[0].id), str(elsewhere.id)]
    response = post(admin, f"{base}/bulk", {"action": "delete", "entry": mixed}, token_from=base)
    assert response.status_code == 404
    assert Entry.get_or_none(Entry.id == calls[0].id) is not None
    member = web.client("member")
    response = post(
        member, f"{base}/bulk", {"action": "delete", "entry": [str(calls[0].id)]}, token_from=base
    )
    assert response.status_code == 403
    chosen = [str(c.id) for c in calls]
    response = post(admin, f"{base}/bulk", {"action": "delete", "entry": chosen}, token_from=base)
    assert "Deleted 2 entries for good." in admin.get(response.location).get_data(as_text=True)
    assert Entry.select().where(Entry.project == project.id).count() == 0
    assert Entry.get_or_none(Entry.id == elsewhere.id) is not None


def test_a_read_only_user_sees_no_bulk_form_on_the_protocol(web):
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    _calls(project, web.users["owner"], 1)
    page = web.client("read-only").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert 'id="bulk-form"' not in page and 'form="bulk-form"' not in page


# --- in a browser ------------------------------------------------------------------------------
def test_in_a_browser_a_ticket_on_protocol_page_three_opens_page_three_at_it(
    web, page, network_log
):
    from tests.browser import screenshot
    from tests.test_ui_entries import serving
    from tests.web import PASSWORD

    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    calls = _calls(project, web.users["owner"], 130)
    target = calls[130 - 111]  # the 111th newest: page 3
    rest = [c.id for c in calls if c.id != target.id]
    domain_entries.set_done_many(web.users["owner"], rest, True)  # the one ticket left
    with serving(web.app) as base:
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "member@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.click(f"#entry-{target.id} a.subject")
        page.wait_for_url(re.compile(rf".*/protocol\?entry={target.id}#entry-{target.id}$"))
        assert page.locator(".pager .page-number").inner_text() == "Page 3"
        row = page.locator(f"#entry-{target.id}")
        assert row.evaluate("row => row.matches(':target') && row.matches('.linked')")
        assert row.get_attribute("aria-current") == "true"
        assert row.get_by_text("linked entry").is_visible()
        outline = row.evaluate("row => getComputedStyle(row).outlineStyle")
        assert outline == "solid"
        in_view = row.evaluate(
            "row => { const box = row.getBoundingClientRect();"
            " return box.top >= 0 && box.bottom <= window.innerHeight; }"
        )
        assert in_view, "the linked row is not scrolled into view"
        rows = page.locator("ul.entries.protocol > li").evaluate_all(
            "rows => rows.map(row => row.id)"
        )
        newest_first = [f"entry-{c.id}" for c in reversed(calls)]
        assert rows == newest_first[100:130]
        screenshot(page, "protocol-linked-entry")
    network_log.assert_only_local()
    network_log.assert_no_console_errors()
