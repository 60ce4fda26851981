"""axe-core finds no WCAG 2.1 A/AA violation on any page of the app (issue 19, acceptance 1).

Every GET route of the Flask app (tests/app_pages.py: the route table, ids of seeded data with
open and done entries, unassigned and spam mail, a project with files, an HTML mail) is loaded
in Chromium and checked with axe-core, as an owner and as a read-only member; the login page
before that.  Only routes that answer with something else than a page are left out, each with
its reason in tests/app_pages.NOT_HTML.
"""

from __future__ import annotations

import pytest

from tests.a11y import require_axe, violations
from tests.app_pages import html_pages, seed
from tests.web import PASSWORD


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


# The pages are the same whichever database holds the data: SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ["owner", "read-only"])
def test_axe_finds_no_wcag_violation_on_any_page(web, page, network_log, role):
    from tests.browser import screenshot
    from tests.test_ui_entries import serving

    require_axe()
    seeded = seed(web)
    pages = html_pages(web.app, seeded)
    assert any(
        "iframe" in web.client("owner").get(f"/entries/{i}").get_data(as_text=True)
        for i in seeded.ids["entry_id"]
    ), "the seed has no HTML mail"
    found: dict[str, list[str]] = {}
    with serving(web.app) as base:
        page.goto(f"{base}/login")
        if problems := violations(page):
            found["/login"] = problems
        log_in(page, base, f"{role}@agency.test")
        for endpoint, url in pages:
            if endpoint == "auth.logout":
                continue
            page.goto(base + url)
            if problems := violations(page):
                found[url] = problems
                screenshot(page, f"axe-{role}{url}")
    report = "\n".join(f"{url}:\n  " + "\n  ".join(lines) for url, lines in found.items())
    assert not found, f"axe-core found WCAG 2.1 A/AA violations:\n{report}"
    network_log.assert_only_local()
