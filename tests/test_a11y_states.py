"""Contrast in every state: focused, hovered, disabled (issue 19).

axe-core (tests/test_a11y_axe.py) checks each page as it loads.  Here every control of every
page is put into the states axe does not see and measured the way WCAG 2.1 measures:

- focused (by script after a key press, so `:focus-visible` applies as it does for a keyboard
  user): a focus indicator is drawn (outline or box-shadow), the outline has 3:1 against the
  background around it (1.4.11) and the control's text still has 4.5:1 (1.4.3);
- hovered (the mouse over each link and button of the busiest pages): text 4.5:1;
- disabled (the read-only member's done boxes): still 3:1 for the box's border, 4.5:1 text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_pages import html_pages, seed
from tests.web import PASSWORD

# Colour arithmetic of WCAG 2.1 (tests/a11y/contrast.js), put in front of each check.
COLOUR = (Path(__file__).resolve().parent / "a11y" / "contrast.js").read_text(encoding="utf-8")

FOCUSED = (
    "() => {"
    + COLOUR
    + """
  const problems = [];
  for (const e of document.querySelectorAll(CONTROLS)) {
    if (e.disabled || !visible(e)) continue;
    e.focus();
    if (document.activeElement !== e) continue;
    const style = getComputedStyle(e);
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    const shadow = style.boxShadow && style.boxShadow !== "none";
    if (!e.matches(":focus-visible")) {
      problems.push(`${name(e)}: not :focus-visible after a key press`);
    } else if (!outline && !shadow) problems.push(`${name(e)}: no focus indicator`);
    else if (outline) {
      const around = background(e.parentElement);
      const got = ratio(over(parse(style.outlineColor), around), around);
      if (got < 3) problems.push(`${name(e)}: focus outline ${got}:1 < 3:1`);
    }
    const text = textProblem(e, "focused");
    if (text) problems.push(text);
  }
  if (document.activeElement) document.activeElement.blur();
  return problems;
}"""
)

# Numbers every link and button the mouse can reach (not the skip link, above the page).
HOVER_TARGETS = (
    "() => {"
    + COLOUR
    + """
  const targets = [...document.querySelectorAll("a[href], button")]
    .filter((e) => visible(e) && e.getBoundingClientRect().bottom + window.scrollY > 0);
  targets.forEach((e, index) => e.setAttribute("data-hover-target", String(index)));
  return targets.length;
}"""
)

HOVERED = (
    "(index) => {"
    + COLOUR
    + """
  return textProblem(document.querySelector(`[data-hover-target="${index}"]`), "hovered");
}"""
)

DISABLED = (
    "() => {"
    + COLOUR
    + """
  const problems = [];
  for (const e of document.querySelectorAll(":disabled")) {
    if (!visible(e) || e.tagName === "FIELDSET") continue;
    if (e.type === "checkbox" || e.type === "radio") {
      const style = getComputedStyle(e);
      if (style.appearance !== "none") {
        problems.push(`${name(e)}: drawn by the browser (grey when disabled)`);
        continue;
      }
      const around = background(e.parentElement);
      const got = ratio(over(parse(style.borderTopColor), around), around);
      if (got < 3) problems.push(`disabled ${name(e)}: border ${got}:1 < 3:1`);
    } else {
      const text = textProblem(e, "disabled");
      if (text) problems.push(text);
    }
  }
  return problems;
}"""
)


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")


# The pages are the same whichever database holds the data: SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_control_of_every_page_shows_focus_with_enough_contrast(web, page):
    from tests.test_ui_entries import serving

    pages = html_pages(web.app, seed(web))
    found: dict[str, list[str]] = {}
    checked = 0
    with serving(web.app) as base:
        log_in(page, base, "owner@agency.test")
        for endpoint, url in pages:
            if endpoint == "auth.logout":
                continue
            page.goto(base + url)
            page.keyboard.press("Shift")  # the keyboard is in use: :focus-visible applies
            if problems := page.evaluate(FOCUSED):
                found[url] = problems
            checked += 1
    assert checked >= 25
    assert not found, "\n".join(f"{url}: {p}" for url, p in found.items())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_links_and_buttons_keep_their_contrast_under_the_mouse(web, page):
    from tests.test_ui_entries import serving

    seeded = seed(web)
    project = seeded.ids["project_id"][0]
    found = []
    with serving(web.app) as base:
        log_in(page, base, "owner@agency.test")
        for url in ("/", "/unassigned", f"/projects/{project}/protocol", "/spam", "/settings"):
            page.goto(base + url)
            count = page.evaluate(HOVER_TARGETS)
            assert count > 5, url
            for index in range(count):
                page.hover(f'[data-hover-target="{index}"]')
                if problem := page.evaluate(HOVERED, index):
                    found.append(f"{url}: {problem}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_read_only_members_disabled_done_boxes_keep_their_contrast(web, page):
    from tests.test_ui_entries import serving

    seeded = seed(web)
    project = seeded.ids["project_id"][0]
    with serving(web.app) as base:
        log_in(page, base, "read-only@agency.test")
        for url in ("/", f"/projects/{project}/protocol"):
            page.goto(base + url)
            assert page.locator("input[type=checkbox]:disabled").count() > 0, url
            assert page.evaluate(DISABLED) == [], url


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_link_in_an_html_mail_shows_the_apps_focus_ring(web, page):
    """Tab goes on into the sandboxed frame of a customer's HTML mail; its links show the same
    3 px ring as the page's, whatever the mail's own styles say."""
    from tests.app_pages import html_mail
    from tests.test_ui_entries import receive, serving

    mail = receive(
        web.account.id, html_mail().replace(b"<a href=", b"<a style='outline:none' href=")
    )
    with serving(web.app) as base:
        log_in(page, base, "member@agency.test")
        page.goto(f"{base}/entries/{mail.id}")
        frame = page.frame_locator("iframe.mail")
        frame.locator("a").wait_for()
        for _ in range(80):
            page.keyboard.press("Tab")
            inside = frame.locator("a").evaluate("a => a === document.activeElement")
            if inside:
                break
        assert inside, "Tab never reached the link in the mail"
        ring = frame.locator("a").evaluate(
            "a => [getComputedStyle(a).outlineStyle, getComputedStyle(a).outlineWidth]"
        )
    assert ring == ["solid", "3px"]
