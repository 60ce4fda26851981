"""The raw text of a mail that could not be parsed scrolls from the keyboard (issue 19).

The raw message is shown in a box of its own height that scrolls (up to 200 KB). A box that
scrolls but holds nothing focusable can only be scrolled with a mouse in browsers that do not
make such boxes focusable themselves (Safari; WCAG 2.1.1). It is now a named region in the
Tab order ("Raw message") and shows the focus ring; the arrow keys then scroll it.
"""

from __future__ import annotations

import pytest

from tests.test_a11y_keyboard import focus_visible, tab_to
from tests.test_a11y_notices import log_in
from tests.test_ui_entries import store_unparseable


def unparseable(web):
    raw = b"".join(b"\x00\xff line %d of a broken mail\r\n" % n for n in range(400))
    return store_unparseable(web.account.id, raw, "QRAW", "no header block")


def test_the_raw_text_is_a_named_region_in_the_tab_order(web):
    entry = unparseable(web)
    html = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    assert '<h2 id="raw-heading">Raw message</h2>' in html
    assert '<pre class="raw" tabindex="0" role="region" aria-labelledby="raw-heading">' in html


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tab_reaches_the_raw_text_as_a_named_region(web, page, network_log):
    from tests.test_ui_entries import serving

    entry = unparseable(web)
    with serving(web.app) as base:
        log_in(page, base, "member@agency.test")
        page.goto(f"{base}/entries/{entry.id}")
        tab_to(page, "pre.raw")
        assert focus_visible(page)
        region = page.get_by_role("region", name="Raw message")
        assert region.evaluate("e => e === document.activeElement")
    network_log.assert_only_local()
