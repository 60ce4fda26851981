"""A confirmation after a saved form reaches a screen reader (issue 19).

Profile, Settings, Team, a project's Edit page and the template editor answer a saved form
by loading the page again with a notice ("Your name is saved.", "Signature saved."). Like the
flashed confirmations (Unassigned, bulk actions), the notice takes the focus, so it is read
and Tab goes on from there; on a page opened at a section (#time-zone) it is said in the
live region and the keyboard stays at the section, unless the notice is inside that section
(#language: "Language saved."), where it takes the focus. A standing warning (no outgoing mail
server yet) is not an answer to anything: it never takes the focus of a page opened by a link.
"""

from __future__ import annotations

import pytest

from tests.test_a11y_keyboard import (
    focus_visible,
    focused,
    is_focused,
    open_login,
    press_and_wait,
    tab_to,
)
from tests.web import PASSWORD


def log_in(page, base: str, email: str) -> None:
    open_login(page, base)
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    press_and_wait(page, "Enter")


def focused_words(page) -> str:
    return page.evaluate("document.activeElement.innerText").strip()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_saved_form_s_notice_takes_the_focus_or_is_said(web, page, network_log):
    from playwright.sync_api import expect

    from domain import projects as domain_projects
    from tests.test_ui_entries import serving

    project = domain_projects.create_project(web.account.id, "Bakery Sommer")
    with serving(web.app) as base:
        log_in(page, base, "owner@agency.test")

        # Profile: a new display name, sent with Enter from the field.
        page.goto(f"{base}/profile")
        tab_to(page, "input[name=name]")
        page.keyboard.type("Olga")
        press_and_wait(page, "Enter")
        assert is_focused(page, "main .flash"), f"after saving the name: {focused(page)}"
        assert focused_words(page) == "Your name is saved."
        assert focus_visible(page), "the focused notice shows no focus"
        page.keyboard.press("Tab")  # the keyboard goes on from the notice, not from the top
        assert page.evaluate("!document.querySelector('header').contains(document.activeElement)")

        # Settings: the signature, sent with its button.
        page.goto(f"{base}/settings")
        tab_to(page, "textarea[name=signature]")
        page.keyboard.type("Olga, Pixel")
        tab_to(page, "form[action$='/signature'] button[type=submit]")
        press_and_wait(page, "Enter")
        assert is_focused(page, "main .flash"), f"after saving the signature: {focused(page)}"
        assert focused_words(page) == "Signature saved."

        # Settings opened at its time zone section: said, the focus is left alone.
        tab_to(page, "input[name=time_zone]")
        press_and_wait(page, "Enter")
        assert page.url.endswith("#time-zone")
        expect(page.locator("#live")).to_have_text("Time zone saved.")
        assert not is_focused(page, "main .flash")

        # Settings opened at its language section, the notice inside it: the notice has the
        # focus (the keyboard is at the section all the same), not said twice.
        tab_to(page, "form[action$='/settings/language'] button[type=submit]")
        press_and_wait(page, "Enter")
        assert page.url.endswith("#language")
        assert is_focused(page, "#language .flash"), f"after saving the language: {focused(page)}"
        assert focused_words(page) == "Language saved."
        assert focus_visible(page), "the focused notice shows no focus"
        assert page.locator("#live").inner_text() == ""

        # A project's Edit page.
        page.goto(f"{base}/projects/{project.id}/edit")
        tab_to(page, "input[name=contact_name]")
        page.keyboard.type("Anna")
        press_and_wait(page, "Enter")
        assert is_focused(page, "main .flash"), f"after saving the project: {focused(page)}"
        assert focused_words(page) == "Project saved."

        # A standing warning does not take the focus of a page reached by a link.
        page.goto(f"{base}/projects/{project.id}/messages/new")
        assert page.locator("main .flash.error").count() == 1  # no outgoing server yet
        assert focused(page)["tag"] == "body", f"the message page opened at {focused(page)}"
        page.goto(f"{base}/profile")
        assert focused(page)["tag"] == "body", f"the profile opened at {focused(page)}"
    network_log.assert_only_local()
    network_log.assert_no_console_errors()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_notice_is_a_status_message(web):
    """The notices each page shows after a saved form carry role=status (what app.js looks for)."""
    from domain import projects as domain_projects

    project = domain_projects.create_project(web.account.id, "Bakery Sommer")
    member = web.users["member"].id
    client = web.client("owner")
    pages = {
        "/profile?notice=saved": "Your notification settings are saved.",
        "/profile?notice=token-revoked": "The API token is revoked.",
        "/settings?notice=smtp-saved": "Outgoing mail server saved.",
        "/settings?notice=block-removed": "Block rule removed",
        f"/team?notice=added&member={member}": "member@agency.test was added",
        f"/team?notice=role-changed&member={member}": "Role of member@agency.test changed",
        f"/projects/{project.id}/edit?notice=address-added": "Address added.",
        "/templates?notice=deleted": "Template deleted.",
    }
    for path, words in pages.items():
        html = client.get(path).get_data(as_text=True)
        assert f'<p class="flash" role="status">{words}' in html, path
