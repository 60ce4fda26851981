"""axe-core finds no WCAG 2.1 A/AA violation on any page of the app (issue 19, acceptance 1).

Every GET route of the Flask app (tests/app_pages.py: the route table, ids of seeded data with
open and done entries, unassigned and spam mail, a project with files, an HTML mail) is loaded
in Chromium and checked with axe-core, as an owner and as a read-only member, and as a member
of a German account; the login page before that.  Only routes that answer with something else
than a page are left out, each with its reason in tests/app_pages.NOT_HTML.
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
@pytest.mark.parametrize(
    ("role", "language"), [("owner", "en"), ("read-only", "en"), ("member", "de")]
)
def test_axe_finds_no_wcag_violation_on_any_page(web, page, network_log, role, language):
    from domain.languages import set_account_language
    from tests.browser import screenshot
    from tests.test_ui_entries import serving

    require_axe()
    set_account_language(web.account.id, language)  # German words are longer, and lang="de"
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
                screenshot(page, f"axe-{role}-{language}{url}")
    report = "\n".join(f"{url}:\n  " + "\n  ".join(lines) for url, lines in found.items())
    assert not found, f"axe-core found WCAG 2.1 A/AA violations:\n{report}"
    network_log.assert_only_local()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_axe_finds_nothing_before_setup_on_refusals_and_on_error_pages(
    storage_db, tmp_path, page, network_log
):
    """The pages no route walk reaches: postroom not set up yet, the setup page and its
    refusal, a wrong password, a page that does not exist; in English and in German."""
    from admin_ui import create_app
    from domain.tokens import setup_token
    from postroom.config import load_settings
    from tests.test_ui_entries import serving

    require_axe()
    config = tmp_path / "postroom.toml"
    config.write_text('[ingest]\ndomains = ["in.example"]\n')
    app = create_app(load_settings(config), testing=True)
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        if problems := violations(page):
            found[name] = problems

    with serving(app) as base:
        page.goto(f"{base}/login")
        assert page.locator("h1").count() == 1
        check("not set up yet")
        for language in ("en", "de"):
            page.goto(f"{base}/setup?token={setup_token()}&language={language}")
            check(f"setup ({language})")
            page.fill("input[name=agency]", "Pixel")
            page.fill("input[name=email]", "owner@pixel.test")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=time_zone]", "Mars/Olympus_Mons")  # refused: no such zone
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert page.locator(".error").count() >= 1
            check(f"setup refused ({language})")
        page.goto(f"{base}/setup?token={setup_token()}")
        page.fill("input[name=agency]", "Pixel")
        page.fill("input[name=email]", "owner@pixel.test")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.goto(f"{base}/no-such-page")
        check("404")
        page.goto(f"{base}/entries/999999")
        check("404 of an entry")
        page.context.clear_cookies()
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "owner@pixel.test")
        page.fill("input[name=password]", "wrong password")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.locator(".error").count() == 1
        check("wrong password")
    report = "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in found.items())
    assert not found, f"axe-core found WCAG 2.1 A/AA violations:\n{report}"
    network_log.assert_only_local()
