"""At 200 % zoom every page reflows and nothing moves for those who asked (issue 19).

Acceptance 3: a 1366x768 screen at 200 % zoom is a 683x384 CSS-pixel window with two device
pixels to each CSS pixel.  Every GET page of the app (tests/app_pages.py, seeded the hard
way: long unbroken words and addresses), as the owner of an English and of a German account
(longer words) and the login page before that, is loaded there with its <details> opened.
No page may scroll sideways, and no control may be cut off: every visible link, button,
field, select, summary and label of a field lies inside the window, is not cut by a box
around it that hides or scrolls what overflows, and shows its own text whole; and no word is
broken in the middle by a squeezed box (a table column, a button).  At 250 % (512 px) no
page scrolls sideways either.  Failing pages are saved as screenshots (tests/browser.py:
tests/artifacts/screenshots/zoom-*.png).

With ``prefers-reduced-motion: reduce`` nothing on any page animates, has a transition or
scrolls smoothly; without it, nothing moves for longer than five seconds (WCAG 2.2.2).
"""

from __future__ import annotations

import pytest

from tests.app_pages import html_pages, seed
from tests.test_a11y_axe import log_in
from tests.test_phone_width import sideways

# 1366x768 at 200 %: CSS pixels, and two device pixels to each.
ZOOM_200 = {"viewport": {"width": 683, "height": 384}, "device_scale_factor": 2}
# 1280x768 at 250 %.
ZOOM_250 = {"width": 512, "height": 307}

# Every control a user can see, wherever it sits: outside the window, cut by a box around it
# that hides (or scrolls away) what overflows, or too narrow for its own text.
CUT_CONTROLS = """() => {
    const W = window.innerWidth;
    const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
        + (typeof e.className === 'string' && e.className.trim()
           ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
        + ' "' + (e.getAttribute('aria-label')
                  || (e.tagName === 'SELECT' ? e.selectedOptions[0]?.text : e.innerText)
                  || e.value || '').trim().slice(0, 30) + '"';
    // Hidden on purpose (.visually-hidden, a clipped heading row): not shown, not checked.
    const clippedAway = e => {
        for (let a = e; a; a = a.parentElement) {
            const s = getComputedStyle(a);
            if (s.clip !== 'auto' || s.clipPath !== 'none') return true;
        }
        return false;
    };
    // How wide a select has to be to show its chosen option whole: a copy holding only that
    // option, with no width of its own, beside it.
    const selectNeeds = select => {
        const copy = select.cloneNode(false);
        copy.removeAttribute('id');
        copy.removeAttribute('name');
        const chosen = select.options[select.selectedIndex];
        if (chosen) copy.append(chosen.cloneNode(true));
        for (const [property, value] of [['position', 'absolute'], ['visibility', 'hidden'],
                ['width', 'auto'], ['min-width', '0'], ['max-width', 'none'], ['flex', 'none']]) {
            copy.style.setProperty(property, value, 'important');
        }
        select.parentElement.append(copy);
        const width = copy.getBoundingClientRect().width;
        copy.remove();
        return width;
    };
    const main = document.querySelector('main') || document.body;
    const column = main.clientWidth - parseFloat(getComputedStyle(main).paddingLeft)
        - parseFloat(getComputedStyle(main).paddingRight);
    const found = [];
    const controls = document.querySelectorAll(
        'a[href], button, input:not([type=hidden]), select, textarea, summary, label');
    for (const e of controls) {
        if (e.tagName === 'LABEL' && !e.control) continue;
        if (!e.checkVisibility({visibilityProperty: true})) continue;
        const r = e.getBoundingClientRect();
        if (r.width <= 1 && r.height <= 1 || clippedAway(e)) continue;
        if (r.left < -0.5 || r.right > W + 0.5) {
            found.push(`${name(e)} outside the window `
                       + `(${Math.round(r.left)}..${Math.round(r.right)} of ${W} px)`);
            continue;
        }
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
            const s = getComputedStyle(a);
            const x = s.overflowX !== 'visible', y = ['hidden', 'clip'].includes(s.overflowY);
            if (!x && !y) continue;
            const b = a.getBoundingClientRect();
            if (x && (r.left < b.left - 0.5 || r.right > b.right + 0.5)
                || y && (r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5)) {
                found.push(`${name(e)} cut by ${name(a)} (overflow ${s.overflowX}/${s.overflowY})`);
                break;
            }
        }
        const s = getComputedStyle(e);
        if (e.tagName === 'SELECT') {
            const needs = selectNeeds(e);
            // An option wider than the page's column cannot show whole: the select then has
            // to take its whole line.
            const line = e.parentElement.clientWidth
                - parseFloat(getComputedStyle(e.parentElement).paddingLeft)
                - parseFloat(getComputedStyle(e.parentElement).paddingRight);
            if (needs > r.width + 1 && (needs <= column || r.width + 1 < line)) {
                found.push(`${name(e)} too narrow for its option `
                           + `(${Math.round(r.width)} < ${Math.round(needs)} px)`);
            }
        } else if (['A', 'BUTTON', 'SUMMARY'].includes(e.tagName) && s.display !== 'inline'
                   && e.scrollWidth > e.clientWidth + 1) {
            found.push(`${name(e)} text cut (${e.scrollWidth} > ${e.clientWidth} px)`);
        }
    }
    return found;
}"""

# Words broken in the middle ("Rev/oke", "Expi/res") because the box they sit in (a squeezed
# table column, a button in one) is narrower than a third of the page's column.  A long address
# or file name in a wide box may break where it has to; a word in a narrow box is cut.
BROKEN_WORDS = """() => {
    const main = document.querySelector('main') || document.body;
    const contentWidth = e => {
        const s = getComputedStyle(e);
        return e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    };
    const narrow = contentWidth(main) / 3;
    const clippedAway = e => {
        for (let a = e; a; a = a.parentElement) {
            const s = getComputedStyle(a);
            if (s.clip !== 'auto' || s.clipPath !== 'none') return true;
        }
        return false;
    };
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent || !parent.checkVisibility({visibilityProperty: true})
            || parent.closest('script, style, textarea') || clippedAway(parent)) continue;
        let box = parent;
        while (box.parentElement && getComputedStyle(box).display === 'inline') {
            box = box.parentElement;
        }
        const style = getComputedStyle(box);
        if (style.whiteSpace === 'nowrap' || contentWidth(box) >= narrow) continue;
        for (const word of node.data.matchAll(/[^\\s\\-\\/]{2,}/gu)) {
            range.setStart(node, word.index);
            range.setEnd(node, word.index + word[0].length);
            if ([...range.getClientRects()].filter(r => r.width > 0).length < 2) continue;
            const where = box.tagName.toLowerCase()
                + (typeof box.className === 'string' && box.className.trim()
                   ? '.' + box.className.trim().split(/\\s+/).join('.') : '');
            found.push(`"${word[0].slice(0, 30)}" broken in ${where} `
                       + `(${Math.round(contentWidth(box))} px wide)`);
        }
    }
    return [...new Set(found)].slice(0, 12);
}"""

# What moves: running animations and transitions, a transition or animation declared on any
# element (or its ::before/::after), smooth scrolling.
MOTION = """() => {
    const found = document.getAnimations().map(a =>
        `running ${a.constructor.name} ${a.animationName || a.transitionProperty || ''} on `
        + (a.effect && a.effect.target ? a.effect.target.tagName.toLowerCase() : '?'));
    const seconds = list => list.split(',').map(t => parseFloat(t) * (t.includes('ms') ? 1 : 1000));
    for (const e of [document.documentElement, ...document.querySelectorAll('*')]) {
        for (const pseudo of [null, '::before', '::after']) {
            const s = getComputedStyle(e, pseudo);
            const where = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                + (typeof e.className === 'string' && e.className.trim()
                   ? '.' + e.className.trim().split(/\\s+/).join('.') : '') + (pseudo || '');
            if (s.animationName !== 'none') found.push(`animation ${s.animationName} on ${where}`);
            if (seconds(s.transitionDuration).some(ms => ms > 0)) {
                found.push(`transition ${s.transitionDuration} on ${where}`);
            }
            if (!pseudo && s.scrollBehavior !== 'auto') {
                found.push(`scroll-behavior ${s.scrollBehavior} on ${where}`);
            }
        }
    }
    return found;
}"""

# What keeps moving: an animation that runs for more than five seconds (or for ever).
LONG_MOTION = """() => document.getAnimations()
    .filter(a => a.effect && a.effect.getComputedTiming().endTime > 5000)
    .map(a => `${a.animationName || a.transitionProperty || a.constructor.name} on `
              + (a.effect.target ? a.effect.target.tagName.toLowerCase() : '?'))"""

OPEN_DETAILS = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"


def cut_off(page) -> list[str]:
    """What is too wide or cut off on the page as shown now, its <details> opened."""
    page.evaluate(OPEN_DETAILS)
    problems = page.evaluate(CUT_CONTROLS) + page.evaluate(BROKEN_WORDS)
    if too_wide := sideways(page):
        problems.insert(0, f"scrolls sideways: {too_wide}")
    return problems


def report(found: dict[str, list[str]]) -> str:
    """One block per page: its URL, then what is wrong on it, a line each."""
    return "\n".join(f"{url}:\n  " + "\n  ".join(lines) for url, lines in found.items())


# The pages are the same whichever database holds the data: SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["en", "de"])  # German words are longer
def test_at_200_percent_zoom_no_page_scrolls_sideways_or_cuts_a_control(
    web, browser, network_log, language
):
    from domain.languages import set_account_language
    from tests.browser import new_context, screenshot
    from tests.test_ui_entries import serving

    set_account_language(web.account.id, language)
    seeded = seed(web)
    pages = [(e, url) for e, url in html_pages(web.app, seeded) if e != "auth.logout"]
    context = new_context(browser, network_log, **ZOOM_200)
    page = context.new_page()
    found: dict[str, list[str]] = {}
    wide_at_250: dict[str, str] = {}

    def check(url: str) -> None:
        if problems := cut_off(page):
            found[url] = problems
            screenshot(page, f"zoom-200-{language}{url}")
        page.set_viewport_size(ZOOM_250)
        if too_wide := sideways(page):
            wide_at_250[url] = too_wide
            screenshot(page, f"zoom-250-{language}{url}")
        page.set_viewport_size(ZOOM_200["viewport"])

    try:
        with serving(web.app) as base:
            page.goto(f"{base}/login")
            check("/login")
            log_in(page, base, "owner@agency.test")
            for _endpoint, url in pages:
                page.goto(base + url)
                check(url)
    finally:
        context.close()
    assert len(pages) >= 25
    assert not found, f"at 683 px (200 % zoom), of {len(pages) + 1} pages:\n{report(found)}"
    assert not wide_at_250, f"at 512 px (250 % zoom), pages scroll sideways: {wide_at_250}"
    network_log.assert_only_local()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_with_reduced_motion_nothing_moves_and_without_nothing_moves_for_long(
    web, browser, network_log
):
    from tests.browser import new_context
    from tests.test_ui_entries import serving

    seeded = seed(web)
    pages = [(e, url) for e, url in html_pages(web.app, seeded) if e != "auth.logout"]
    still = new_context(browser, network_log, reduced_motion="reduce")
    moving = new_context(browser, network_log, reduced_motion="no-preference")
    found: dict[str, list[str]] = {}
    long: dict[str, list[str]] = {}
    try:
        with serving(web.app) as base:
            for context, check, into in ((still, MOTION, found), (moving, LONG_MOTION, long)):
                page = context.new_page()
                page.goto(f"{base}/login")
                if problems := page.evaluate(check):
                    into["/login"] = problems
                log_in(page, base, "owner@agency.test")
                for _endpoint, url in pages:
                    page.goto(base + url)
                    page.evaluate(OPEN_DETAILS)
                    if problems := page.evaluate(check):
                        into[url] = problems
    finally:
        still.close()
        moving.close()
    assert not found, f"with reduced motion, things move:\n{report(found)}"
    assert not long, f"things move for longer than five seconds:\n{report(long)}"
    network_log.assert_only_local()
