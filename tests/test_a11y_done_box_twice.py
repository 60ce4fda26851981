"""The done box while its tick is on the way (issue 19).

The box keeps the keyboard focus while app.js sends a tick (it is not disabled); a second
Space meanwhile is refused, so one tick sends one change and what is stored is what the box
shows. The answer is held back in the browser until the test lets it through.
"""

from __future__ import annotations

import pytest

from domain import entries as domain_entries
from storage.models import Entry
from tests.test_a11y_keyboard import focus_visible, is_focused, log_in_by_keyboard, tab_to


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_second_space_while_a_tick_is_sent_is_refused(web, bakery, page, network_log):
    from playwright.sync_api import expect

    from tests.test_ui_entries import serving

    call = domain_entries.add_manual_entry(
        bakery, web.users["owner"], kind="call", text="Anna called", subject="New hours"
    )
    held = []  # the done requests app.js sends, held until let through
    with serving(web.app) as base:
        log_in_by_keyboard(page, base, "member@agency.test")
        page.goto(f"{base}/entries/{call.id}")
        page.route("**/entries/*/done", lambda route: held.append(route))
        box = page.get_by_role("checkbox", name="Done: New hours")
        tab_to(page, "input[name=done]")
        with page.expect_request("**/entries/*/done"):
            page.keyboard.press("Space")
        expect(page.locator("form.done-form")).to_have_attribute("aria-busy", "true")

        page.keyboard.press("Space")  # while the first tick is on the way
        expect(box).to_be_checked()
        assert is_focused(page, "input[name=done]") and focus_visible(page)

        for _ in range(200):  # the route handler runs while Playwright talks to the page
            if held:
                break
            page.evaluate("0")
        assert len(held) == 1, f"{len(held)} ticks on the way"
        held.pop().continue_()
        expect(page.locator("#live")).to_have_text("Marked done: New hours. 0 open tickets.")
        expect(page.locator("form.done-form")).not_to_have_attribute("aria-busy", "true")
        assert held == [], "a second tick was sent"
        assert Entry.get_by_id(call.id).status == "done"

        # once the answer is in, the next Space is a tick of its own
        page.unroute("**/entries/*/done")
        page.keyboard.press("Space")
        expect(page.locator("#live")).to_have_text("Marked open: New hours. 1 open ticket.")
        expect(box).not_to_be_checked()
    assert Entry.get_by_id(call.id).status == "open"
    network_log.assert_only_local()
    network_log.assert_no_console_errors()
