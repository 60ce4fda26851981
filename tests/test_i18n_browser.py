"""Chromium in German (issue 18, acceptance 2 for the core pages): a browser whose locale is
de-DE (it sends Accept-Language: de-DE) sets postroom up in German, and Tickets, Nicht
zugeordnet, the protocol and an entry show none of the UI's own English phrases. Screenshots of
the four pages are saved as artefacts (tests/artifacts/screenshots/de-*.png).
"""

from __future__ import annotations

import datetime as dt

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.tokens import setup_token
from postroom.config import load_settings
from storage.models import Account, User
from tests.browser import new_context, screenshot
from tests.filing import receive
from tests.mail import message
from tests.test_ui_entries import serving

PASSWORD = "long enough password"
# The UI's own English on these pages (visible text), none of which may be left in German.
ENGLISH = (
    "Log out",
    "Unassigned",
    "Open entries",
    "No open entries",
    "Mark done",
    "Discard as spam",
    "Select all",
    "With the chosen entries",
    "Your inbox address",
    "How to forward",
    "Why it is here",
    "unknown sender",
    "Assign and remember",
    "Only this mail",
    "Customer addresses",
    "Message to customer",
    "+ New",
    "Apply filters",
    "open and done",
    "has attachment",
    "Project status",
    "Internal note",
    "From customer",
    "Written by",
    "How it got here",
    "Added by hand",
    "Nobody has changed",
    "Routed",
    "Newest",
    "Older",
    "Notifications",
    "Projects",
    "Settings",
    "Templates",
)


def _visible_english(page) -> list[str]:
    text = page.inner_text("body").casefold()  # labels may be shown in capitals
    return [phrase for phrase in ENGLISH if phrase.casefold() in text]


def test_a_german_browser_sets_up_in_german_and_reads_the_core_pages_in_german(
    storage_db, tmp_path, browser, network_log
):
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text('[ingest]\ndomains = ["in.example"]\n')
    app = create_app(load_settings(config), testing=True)
    context = new_context(browser, network_log, locale="de-DE", timezone_id="Europe/Berlin")
    page = context.new_page()
    try:
        with serving(app) as base:
            page.goto(f"{base}/setup?token={setup_token()}")
            assert page.locator("html").get_attribute("lang") == "de"
            assert page.locator("select[name=language]").input_value() == "de"
            page.fill("input[name=agency]", "Agentur Sommer")
            page.fill("input[name=name]", "Jana Sommer")
            page.fill("input[name=email]", "jana@sommer.test")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=time_zone]", "Europe/Berlin")
            with page.expect_navigation():
                page.click("form[method=post] button[type=submit]")
            account, owner = Account.get(), User.get()
            assert account.language == "de" and owner.language is None

            bakery = domain_projects.create_project(
                account.id, "Bäckerei Müller", customer_addresses=["anna@baeckerei.test"]
            )
            call = domain_entries.add_manual_entry(
                bakery,
                owner,
                kind="call",
                text="Anna hat wegen des Logos angerufen",
                occurred_at=dt.datetime(2026, 12, 4, 23, 30),
            )
            receive(account.id, message("Angebot", sender="Fremd <fremd@woanders.test>"))
            pages = {
                "de-tickets": "/",
                "de-nicht-zugeordnet": "/unassigned",
                "de-protokoll": f"/projects/{bakery.id}/protocol",
                "de-eintrag": f"/entries/{call.id}",
            }
            for name, path in pages.items():
                page.goto(base + path)
                assert page.locator("html").get_attribute("lang") == "de", path
                assert _visible_english(page) == [], path
                screenshot(page, name)
            page.goto(base + pages["de-eintrag"])
            assert "05.12.2026, 00:30" in page.inner_text("body")
            body = page.inner_text("body").casefold()  # labels may be shown in capitals
            for words in ("Nachricht vom Kunden", "Abmelden", "Nicht zugeordnet", "Protokoll"):
                assert words.casefold() in body, words
        network_log.assert_only_local()
    finally:
        context.close()
