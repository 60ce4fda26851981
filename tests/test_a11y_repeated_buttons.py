"""Buttons that repeat on a page say which row they act on (issue 19; WCAG 2.4.6).

A page lists several members, tokens, addresses, templates, followed projects, spam mail,
notifications, each row with the same buttons: "Change", "Deactivate", "Revoke", "Remove",
"Copy", "Delete", "Unfollow", "Not spam", "Mark read". Tabbing from button to button, a
screen reader said "Revoke, button" five times. Each such button is now described by its
row (aria-describedby: the member's email, the token's name, the address, the template's
name, the subject …), so two buttons of one page never sound alike while doing different
things. Checked in Chromium on every page of the app, with two or more of everything.
"""

from __future__ import annotations

import pytest

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.templates import save_template
from domain.tokens import create_api_token
from storage import notifications as notification_store
from tests.app_pages import html_pages, seed
from tests.mail import message
from tests.test_a11y_axe import log_in
from tests.test_ui_unassigned import receive

# Every shown button: what it is called, what describes it, what pressing it sends.
BUTTONS = r"""() => Array.from(document.querySelectorAll("main button")).filter(
  (b) => b.getClientRects().length > 0
).map((b) => {
  const text = (ids) => (ids || "").split(/\s+/).filter(Boolean).map(
    (id) => (document.getElementById(id) || {textContent: "(missing " + id + ")"}).textContent
  ).join(" ").replace(/\s+/g, " ").trim();
  const form = b.form;
  const hidden = form ? Array.from(form.querySelectorAll("input[type=hidden]"))
    .filter((i) => i.name !== "csrf_token" && i.name !== "next")
    .map((i) => i.name + "=" + i.value).join("&") : "";
  return {
    name: (text(b.getAttribute("aria-labelledby")) || b.getAttribute("aria-label")
           || b.innerText).replace(/\s+/g, " ").trim(),
    description: text(b.getAttribute("aria-describedby")),
    sends: (form ? form.action : "") + " " + b.name + "=" + b.value + " " + hidden,
  };
})"""


def two_of_everything(web) -> None:
    """A second template, token, followed project, spam mail and address beside the seed's."""
    owner = web.users["owner"]
    account_id = web.account.id
    other = domain_projects.create_project(
        account_id, "Dairy", customer_addresses=["a@dairy.test", "b@dairy.test"]
    )
    notification_store.set_following(other.id, owner.id, True)
    save_template(account_id, "Reminder", "Reminder", "Dear customer")
    create_api_token(owner, "backup script")
    create_api_token(web.users["admin"], "admin script")
    spam = receive(account_id, message("Cheap pills", sender="Spam <spam@elsewhere.test>"))
    domain_entries.discard_spam(spam, owner.id)
    receive(account_id, message("Second stranger", sender="Ben <ben@elsewhere.test>"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_repeated_buttons_are_told_apart_by_their_row(web, page, network_log):
    from tests.test_ui_entries import serving

    seeded = seed(web)
    two_of_everything(web)
    pages = html_pages(web.app, seeded)
    alike: dict[str, list[str]] = {}
    with serving(web.app) as base:
        log_in(page, base, "owner@agency.test")
        for endpoint, url in pages:
            if endpoint == "auth.logout":
                continue
            page.goto(base + url)
            heard: dict[tuple[str, str], set[str]] = {}
            for button in page.evaluate(BUTTONS):
                key = (button["name"], button["description"])
                heard.setdefault(key, set()).add(button["sends"])
            same = [
                f"{name!r} ({len(sends)}×)" for (name, _), sends in heard.items() if len(sends) > 1
            ]
            if same:
                alike[url] = same
    assert not alike, f"buttons that sound alike but do different things: {alike}"
    network_log.assert_only_local()
