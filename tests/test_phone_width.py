"""At phone width (390 px) no page of the app scrolls sideways (issue 17, acceptance 11).

Every GET route of the Flask app is loaded in Chromium as the owner, with real ids of seeded
data written the hard way (tests/app_pages.py); only routes that answer with something else
than a page are left out, each with its reason in tests/app_pages.NOT_HTML.
"""

from __future__ import annotations

from tests.app_pages import NOT_HTML, excluded, html_pages, seed
from tests.web import PASSWORD

PHONE = {"width": 390, "height": 844}
WIDTHS = """() => ({
    document: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    window: window.innerWidth,
    wide: [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .filter(e => !e.closest('.scroll-x'))
        .slice(0, 5)
        .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                  + (e.className && typeof e.className === 'string'
                     ? '.' + e.className.trim().split(/\\s+/).join('.') : '')),
})"""


# Badges: a status, a count, a flag. Each is one line box however narrow the screen.
BROKEN_BADGES = """() => [...document.querySelectorAll('.flag, .count, .state, .status-then')]
    .filter(e => e.getClientRects().length > 1
                 || getComputedStyle(e).whiteSpace !== 'nowrap')
    .map(e => e.textContent.trim())"""


def sideways(page) -> str | None:
    """None when the page fits the window, else what is too wide."""
    widths = page.evaluate(WIDTHS)
    if widths["document"] <= widths["window"] and widths["body"] <= widths["window"]:
        return None
    return f"{widths['document']}/{widths['body']} px > {widths['window']} px: {widths['wide']}"


def test_every_page_is_a_page_or_excluded_with_its_reason(web):
    seeded = seed(web)
    client = web.client("owner")
    pages = html_pages(web.app, seeded)
    assert len(pages) >= 25
    for endpoint, url in pages:
        response = client.get(url, follow_redirects=True)
        assert response.status_code in (200, 404), (endpoint, url, response.status_code)
        assert response.mimetype == "text/html", (endpoint, url, response.mimetype)
    for endpoint in NOT_HTML:
        assert excluded(endpoint)


def test_at_390_px_no_page_of_the_app_scrolls_sideways(web, page, network_log):
    from tests.browser import screenshot
    from tests.test_ui_entries import serving

    seeded = seed(web)
    pages = html_pages(web.app, seeded)
    page.set_viewport_size(PHONE)
    too_wide = {}
    broken_badges = {}
    with serving(web.app) as base:
        page.goto(f"{base}/login")
        if problem := sideways(page):
            too_wide["/login"] = problem
        page.fill("input[name=email]", "owner@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        for endpoint, url in pages:
            if endpoint == "auth.logout":
                continue
            page.goto(base + url)
            if problem := sideways(page):
                too_wide[url] = problem
                screenshot(page, f"phone-too-wide{url}")
            if broken := page.evaluate(BROKEN_BADGES):
                broken_badges[url] = broken
        page.goto(f"{base}/projects/{seeded.ids['project_id'][0]}/protocol")
        status = page.locator(".project-status")
        assert status.inner_text() == "in progress"
        assert status.evaluate("e => e.getClientRects().length") == 1  # not "in / progress"
        screenshot(page, "phone-protocol")
    assert not too_wide, "\n".join(f"{u}: {p}" for u, p in too_wide.items())
    assert not broken_badges, broken_badges
    network_log.assert_only_local()
    network_log.assert_no_dialogs()


def test_the_bell_is_a_drawn_icon_with_a_name_not_an_emoji(web, page):
    from tests.test_ui_entries import serving

    page_html = web.client("member").get("/").get_data(as_text=True)
    assert "&#128276;" not in page_html and "\U0001f514" not in page_html
    with serving(web.app) as base:
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "member@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        bell = page.get_by_role("link", name="Notifications, 0 unread")
        assert bell.locator("svg[aria-hidden=true]").count() == 1
        box = bell.locator("svg").bounding_box()
        assert box["width"] > 10 and box["height"] > 10  # drawn, whatever fonts there are
