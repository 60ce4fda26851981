"""Every page of the app in German (issue 18, acceptance 2 over the whole route table).

Chromium with Accept-Language de-DE loads every GET route of the admin UI (the route table
walked by tests/app_pages.py, ids filled from seeded data; only routes that are no page are left
out, each with its reason) for an account whose language is German, and looks for the UI's own
English in the visible text. The English looked for is the catalog's: every message id whose
German differs, cut at its placeholders into the phrases a reader would see (two words or more,
ten characters or more). So a string wrapped but not translated, or a page still written in
English, fails here by name; screenshots of the failing pages are saved as artefacts.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from domain.languages import set_account_language
from tests.app_pages import html_pages, seed
from tests.web import PASSWORD

CATALOG = Path(__file__).parents[1] / "admin_ui/translations/de/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]")


def english_phrases() -> list[str]:
    """The English of the catalog a German reader must never see: literal runs of its ids."""
    with CATALOG.open("rb") as file:
        catalog = read_po(file)
    phrases = set()
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        if set(ids) & set(texts):
            continue  # the same in German ("Tickets", "Status")
        for text in ids:
            for run in PLACEHOLDER.split(text):
                run = " ".join(run.split()).strip(" .,:;()")
                if len(run) >= 10 and " " in run and not any(run in t for t in texts):
                    phrases.add(run)
    return sorted(phrases)


def test_the_phrase_list_is_the_uis_english():
    phrases = english_phrases()
    assert len(phrases) > 200
    assert "Mark done" not in phrases  # one word pair under ten characters: too short to tell
    assert any(p.startswith("Assign and remember") for p in phrases)


def test_a_german_browser_reads_every_page_of_the_app_in_german(web, browser, network_log):
    from tests.browser import new_context, screenshot
    from tests.test_ui_entries import serving

    seeded = seed(web)
    set_account_language(web.account.id, "de")
    pages = html_pages(web.app, seeded)
    phrases = english_phrases()
    context = new_context(browser, network_log, locale="de-DE", timezone_id="Europe/Berlin")
    english: dict[str, list[str]] = {}
    try:
        page = context.new_page()
        with serving(web.app) as base:
            page.goto(f"{base}/login")
            found = [p for p in phrases if p in page.inner_text("body")]
            if found:
                english["/login"] = found
            page.fill("input[name=email]", "owner@agency.test")
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            for endpoint, url in pages:
                if endpoint == "auth.logout":
                    continue
                page.goto(base + url)
                text = page.inner_text("body")
                found = [p for p in phrases if p in text]
                if found:
                    english[url] = found
                    screenshot(page, f"de-english-left{url}")
    finally:
        context.close()
    assert len(pages) >= 25
    assert not english, "\n".join(f"{url}: {found}" for url, found in english.items())
    network_log.assert_only_local()
