"""A refused form gives the keyboard to the first refused field (issue 19).

A form sent back refused (a project's domain with a space in it, a time zone that does
not exist) marks the field aria-invalid and names the message in its aria-describedby, but
the page opened with the focus at the top: a screen reader read nothing of the refusal and
the keyboard had to find the field again. Now the first refused field takes the focus, so the
reader hears the field and why it was refused, and can correct it at once. A flash message
on the page keeps the focus instead (tests/test_a11y_keyboard.py).
"""

from __future__ import annotations

import pytest

from tests.test_a11y_keyboard import focus_visible, focused, is_focused, press_and_wait, tab_to
from tests.test_a11y_notices import log_in

DESCRIPTION = """() => (document.activeElement.getAttribute("aria-describedby") || "")
  .split(" ").filter(Boolean).map((id) => document.getElementById(id).textContent.trim())
  .join(" ")"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_first_refused_field_takes_the_focus(web, page, network_log):
    from tests.test_ui_entries import serving

    with serving(web.app) as base:
        log_in(page, base, "owner@agency.test")

        page.goto(f"{base}/projects/new")
        tab_to(page, "input[name=name]")
        page.keyboard.type("Bakery Sommer")
        tab_to(page, "input[name=domain]")
        page.keyboard.type("bakery sommer!")
        press_and_wait(page, "Enter")
        assert is_focused(page, "input[name=domain]"), f"after the refusal: {focused(page)}"
        assert focus_visible(page)
        assert "Enter a domain like bakery-schmidt.de" in page.evaluate(DESCRIPTION)

        page.goto(f"{base}/settings")
        tab_to(page, "input[name=time_zone]")
        page.keyboard.press("Control+A")
        page.keyboard.type("Mars/Olympus_Mons")
        press_and_wait(page, "Enter")
        assert is_focused(page, "input[name=time_zone]"), f"after the refusal: {focused(page)}"
        assert page.evaluate(DESCRIPTION), "the refused field names no message"

        # a page without a refusal opens as before, nothing focused
        page.goto(f"{base}/projects/new")
        assert focused(page)["tag"] == "body"
    network_log.assert_only_local()
    # a refusal answers 400, which Chromium logs as a failed resource; nothing else may fail
    assert all("status of 400" in error for error in network_log.console_errors)
