"""Enter on a checkbox does not send a list's bulk form (issue 19).

In Chromium, Enter on a focused checkbox sends its form with the form's first button. The
rows' "Select" boxes, "Select all on this page" and "Select all N matching" belong to the
bulk form, whose first button is "Mark done": a keyboard or screen-reader user pressing Enter
to tick a box (as on a button) marked the chosen entries, or every matching entry, done.
Enter on the done box sent its no-script form and reloaded the page, the focus lost. Now
Enter on those boxes does nothing; Space ticks them, and the buttons send the form.
"""

from __future__ import annotations

import pytest

from domain import entries as domain_entries
from domain import projects as domain_projects
from storage.models import Entry
from tests.test_a11y_keyboard import is_focused, press_and_wait, tab_to
from tests.test_a11y_notices import log_in

# Every form sending is recorded and stopped, so a wrong submission is seen, not raced.
CATCH_SUBMIT = """() => {
  window.sent = [];
  document.addEventListener("submit", (event) => {
    if (!window.catching) return;
    window.sent.push(event.target.id || event.target.className);
    event.preventDefault();
  }, true);
  window.catching = true;
}"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_enter_on_a_checkbox_sends_no_bulk_action(web, page, network_log):
    from playwright.sync_api import expect

    from tests.test_ui_entries import serving

    project = domain_projects.create_project(web.account.id, "Bakery Sommer")
    calls = [
        domain_entries.add_manual_entry(
            project, web.users["owner"], kind="call", text=f"Call {n}", subject=f"Call {n}"
        )
        for n in (1, 2)
    ]
    with serving(web.app) as base:
        log_in(page, base, "member@agency.test")
        page.evaluate(CATCH_SUBMIT)
        for selector in (
            f"#select-{calls[0].id}",
            "input[data-select-page]",
            "input[name=all]",
            f"#entry-{calls[1].id} input[name=done]",
        ):
            tab_to(page, selector)
            page.keyboard.press("Space")
            page.keyboard.press("Enter")
            assert page.evaluate("window.sent") == [], f"Enter on {selector} sent a form"
            assert is_focused(page, selector), f"Enter on {selector} moved the focus"
        # Space did tick the done box (sent by app.js, not as a form)
        expect(page.locator("#live")).to_contain_text("Marked done: Call 2.")

        # The bulk form's own buttons still send it.
        page.evaluate("window.catching = false")
        tab_to(page, "input[name=all]", key="Shift+Tab")
        page.keyboard.press("Space")  # untick "all matching": only the ticked row
        tab_to(page, "#bulk-form button[value=done]")
        press_and_wait(page, "Enter")
    assert Entry.get_by_id(calls[0].id).status == "done"
    assert Entry.get_by_id(calls[1].id).status == "done"
    network_log.assert_only_local()
    network_log.assert_no_console_errors()
