"""Spam you can undo: the spam list with purge dates and *not spam*, block rules listed and
removed under Settings, no block of a whole free-mail domain, read-only users kept out."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from admin_ui.views.spam import purge_date
from domain import blocks
from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.errors import Forbidden
from postroom.config import FREE_MAIL_DOMAINS, load_settings
from storage.models import Activity, BlockRule, Entry, User
from tests.mail import message
from tests.test_api import api_as
from tests.test_ui_unassigned import receive
from tests.web import post


def _discard(client, entry: Entry, block: str = ""):
    """Discard through the Unassigned page, as a person does."""
    return post(client, f"/unassigned/{entry.id}/discard", {"block": block})


def test_not_spam_brings_a_discarded_mail_back_to_unassigned(web):
    entry = receive(web.account.id, message("Quote request", sender="anna@newcustomer.test"))
    client = web.client("member")
    _discard(client, entry)
    assert Entry.get_by_id(entry.id).spam
    assert f'id="entry-{entry.id}"' not in client.get("/unassigned").get_data(as_text=True)
    page = client.get("/spam").get_data(as_text=True)
    assert "Quote request" in page and 'class="purge-date"' in page
    discard = Activity.get(Activity.entry == entry.id, Activity.action == "discarded")
    start = max(Entry.get_by_id(entry.id).received_at, discard.created_at)
    expected = (start + dt.timedelta(days=30)).date().isoformat()
    assert f'on or after <time datetime="{expected}">' in page  # 30 days: the default

    response = post(client, f"/spam/{entry.id}/not-spam", {"project_id": ""})
    assert response.status_code == 302
    back = Entry.get_by_id(entry.id)
    assert not back.spam and back.project_id is None and back.status == "open"
    assert "is back in Unassigned" in client.get(response.location).get_data(as_text=True)
    assert f'id="entry-{entry.id}"' in client.get("/unassigned").get_data(as_text=True)
    assert f'id="entry-{entry.id}"' not in client.get("/spam").get_data(as_text=True)
    assert Activity.get(Activity.entry == entry.id, Activity.action == "not_spam").user_id == (
        web.users["member"].id
    )


def test_not_spam_can_file_straight_under_a_project(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Sommer")
    entry = receive(web.account.id, message("Menu", sender="anna@bakery.test"))
    client = web.client("member")
    _discard(client, entry)
    page = client.get("/spam").get_data(as_text=True)
    assert f'<option value="{bakery.id}">under Bakery Sommer</option>' in page
    post(client, f"/spam/{entry.id}/not-spam", {"project_id": bakery.id})
    filed = Entry.get_by_id(entry.id)
    assert not filed.spam and filed.project_id == bakery.id and filed.status == "open"


def test_removing_a_block_rule_lets_the_next_mail_from_that_sender_through(web):
    first = receive(web.account.id, message("Offer 1", sender="promo@shop.test"))
    member = web.client("member")
    _discard(member, first, "sender")
    blocked = receive(web.account.id, message("Offer 2", sender="promo@shop.test"))
    assert blocked.spam and blocked.route_rule == "blocked"
    assert "Blocked by the rule promo@shop.test" in member.get("/spam").get_data(as_text=True)

    owner = web.client("owner")
    page = owner.get("/settings").get_data(as_text=True)
    rule = BlockRule.get(BlockRule.pattern == "promo@shop.test")
    assert f'id="block-rule-{rule.id}"' in page
    assert "<td>Member</td>" in page  # who made it (the discard that blocked)
    assert rule.created_at.strftime("%Y-%m-%d %H:%M") in page  # and when
    response = post(owner, f"/settings/blocks/{rule.id}/remove", token_from="/settings")
    assert response.status_code == 302
    assert BlockRule.select().count() == 0
    assert Activity.get(Activity.action == "unblocked").detail == "promo@shop.test"

    later = receive(web.account.id, message("Offer 3", sender="promo@shop.test"))
    assert not later.spam and later.project_id is None
    assert "Offer 3" in member.get("/unassigned").get_data(as_text=True)
    # taking the blocked one out of spam lists it as from an unknown sender
    post(member, f"/spam/{blocked.id}/not-spam")
    assert Entry.get_by_id(blocked.id).route_rule == "unknown_sender"


def test_blocking_a_whole_free_mail_domain_is_refused_in_the_domain(web):
    with pytest.raises(blocks.FreeMailDomain, match="large free-mail domain"):
        blocks.block_sender(web.account.id, "Someone@GMail.com", "domain")
    assert blocks.block_sender(web.account.id, "someone@gmail.com", "sender") == (
        "someone@gmail.com"
    )
    # the list is the caller's ([spam] free_mail_domains): one without gmail.com allows it
    assert blocks.block_sender(web.account.id, "x@gmail.com", "domain", ("corp.test",)) == (
        "@gmail.com"
    )
    with pytest.raises(blocks.FreeMailDomain):
        blocks.block_sender(web.account.id, "x@gmx.de", "domain", ("gmx.de",))


def test_block_at_gmail_through_the_page_is_refused_and_changes_nothing(web):
    entry = receive(web.account.id, message("Hi", sender="customer@gmail.com"))
    response = _discard(web.client("member"), entry, "domain")
    assert response.status_code == 400
    assert "@gmail.com is a large free-mail domain" in response.get_data(as_text=True)
    assert not Entry.get_by_id(entry.id).spam  # the discard went with the refused rule
    assert BlockRule.select().count() == 0


def test_read_only_users_see_no_undo_or_remove_forms_and_are_refused(web):
    entry = receive(web.account.id, message("Junk", sender="junk@junk.test"))
    domain_entries.discard_spam(entry, web.users["owner"].id, block="domain")
    rule = BlockRule.get()
    reader = web.client("read-only")
    page = reader.get("/spam").get_data(as_text=True)
    assert "Junk" in page and "/not-spam" not in page
    assert post(reader, f"/spam/{entry.id}/not-spam").status_code == 403
    assert reader.get("/settings").status_code == 403
    assert post(reader, f"/settings/blocks/{rule.id}/remove").status_code == 403
    assert post(web.client("member"), f"/settings/blocks/{rule.id}/remove").status_code == 403
    assert Entry.get_by_id(entry.id).spam and BlockRule.select().count() == 1
    read_only = User.get(User.email == "read-only@agency.test")
    with pytest.raises(Forbidden):
        domain_entries.not_spam(read_only, entry)
    with pytest.raises(Forbidden):
        blocks.remove_block_rule(web.users["member"], rule.id)


def test_the_spam_link_is_in_the_navigation(web):
    page = web.client("read-only").get("/unassigned").get_data(as_text=True)
    assert 'href="/spam"' in page


def test_the_purge_date_counts_from_the_later_of_arrival_and_discard():
    entry = Entry(received_at=dt.datetime(2026, 11, 1, 12, 0))
    assert purge_date(entry, None, 30) == dt.date(2026, 12, 1)
    assert purge_date(entry, dt.datetime(2026, 11, 20, 8, 0), 30) == dt.date(2026, 12, 20)
    assert purge_date(entry, None, 0) is None


def test_the_free_mail_list_is_configurable_and_matches_the_domain_default(tmp_path):
    assert FREE_MAIL_DOMAINS == blocks.FREE_MAIL_DOMAINS
    assert load_settings(None).spam.free_mail_domains == FREE_MAIL_DOMAINS
    config = tmp_path / "postroom.toml"
    config.write_text('[spam]\nfree_mail_domains = ["Mail.Example", "@other.example"]\n')
    assert load_settings(config).spam.free_mail_domains == ("mail.example", "other.example")


def test_not_spam_of_mail_that_is_not_spam_or_unknown_is_not_found(web):
    entry = receive(web.account.id, message("Fine", sender="fine@customer.test"))
    client = web.client("member")
    assert post(client, f"/spam/{entry.id}/not-spam").status_code == 404
    assert post(client, "/spam/999999/not-spam").status_code == 404
    _discard(client, entry)
    response = post(client, f"/spam/{entry.id}/not-spam", {"project_id": 999999})
    assert response.status_code == 302 and Entry.get_by_id(entry.id).spam


def test_in_a_browser_spam_is_undone_by_keyboard_and_a_rule_removed(web, page, network_log):
    from tests.browser import screenshot
    from tests.test_ui_entries import serving
    from tests.web import PASSWORD

    first = receive(web.account.id, message("Order 12", sender="Ben <ben@gmail.com>"))
    domain_entries.discard_spam(first, web.users["owner"].id, block="sender")
    with serving(web.app) as base:
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "owner@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.click("nav >> text=Spam")
        page.wait_for_url(f"{base}/spam")
        assert "Deleted for good on or after" in page.locator(f"#entry-{first.id}").inner_text()
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wide, "/spam scrolls sideways at 390 px"
        screenshot(page, "spam-phone")
        _tab_to(page, f"#entry-{first.id} form.not-spam button")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "is back in Unassigned" in page.locator("body").inner_text()
        assert page.locator(f"#entry-{first.id}").count() == 0

        page.goto(f"{base}/settings#block-rules")
        rule = BlockRule.get(BlockRule.pattern == "ben@gmail.com")
        row = page.locator(f"#block-rule-{rule.id}")
        assert "Owner" in row.inner_text()
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wide, "/settings scrolls sideways at 390 px"
        screenshot(page, "settings-block-rules-phone")
        form = row.locator("form")
        assert "Remove the block on ben@gmail.com?" in form.get_attribute("data-confirm")
        page.evaluate("window.confirm = () => true")  # the fixture dismisses real dialogs
        with page.expect_navigation():
            row.locator("button").click()
        assert "Block rule removed" in page.locator("body").inner_text()
        assert page.locator(f"#block-rule-{rule.id}").count() == 0
    assert BlockRule.select().count() == 0
    assert Entry.get_by_id(first.id).spam is False


def _tab_to(page, selector: str, presses: int = 60) -> None:
    """Press Tab until the element of `selector` has the focus."""
    for _ in range(presses):
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} was not reached by Tab")


def test_a_configured_free_mail_domain_is_neither_offered_nor_blocked_through_the_api(web):
    """The configured list (not only the built-in default) reaches the page and the API."""
    settings = web.app.config["POSTROOM_SETTINGS"]
    spam = dataclasses.replace(settings.spam, free_mail_domains=("bakery-mail.test",))
    web.app.config["POSTROOM_SETTINGS"] = dataclasses.replace(settings, spam=spam)
    entry = receive(web.account.id, message("Hello", sender="anna@bakery-mail.test"))
    page = web.client("member").get("/unassigned").get_data(as_text=True)
    assert "Block anna@bakery-mail.test" in page and "Block @bakery-mail.test" not in page
    response = api_as(web, "member").post(f"/entries/{entry.id}/discard", json={"block": "domain"})
    assert response.status_code == 422
    assert not BlockRule.select().exists() and not Entry.get_by_id(entry.id).spam
