"""Read-only members are not shown forms they cannot submit (issue 17): on every page of the
app, each POST form a read-only member sees goes to a route they may use (their own session,
profile, password, tokens and notifications: admin_ui.app.READ_ONLY_MAY_POST)."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from admin_ui.app import READ_ONLY_MAY_POST
from tests.app_pages import html_pages, seed

# Forms for someone not logged in (logging in as someone else is theirs to do).
ANONYMOUS = {"auth.login", "auth.setup"}
FORM = re.compile(r"<form\b([^>]*)>", re.I)
ATTRIBUTE = re.compile(r'([a-z-]+)="([^"]*)"', re.I)


def post_forms(page: str) -> list[str]:
    """The action of every <form method=post> of the page ("" for the page itself)."""
    actions = []
    for match in FORM.finditer(page):
        attributes = {k.lower(): html.unescape(v) for k, v in ATTRIBUTE.findall(match.group(1))}
        if attributes.get("method", "get").lower() == "post":
            actions.append(attributes.get("action", ""))
    return actions


def test_a_read_only_member_sees_only_forms_they_may_send(web):
    seeded = seed(web)
    client = web.client("read-only")
    adapter = web.app.url_map.bind("localhost")
    refused = {}
    seen = set()
    for endpoint, url in html_pages(web.app, seeded):
        if endpoint == "auth.logout":
            continue
        response = client.get(url, follow_redirects=True)
        for action in post_forms(response.get_data(as_text=True)):
            path = urlsplit(action or response.request.path).path
            target, _ = adapter.match(path, method="POST")
            seen.add(target)
            if target not in READ_ONLY_MAY_POST | ANONYMOUS:
                refused.setdefault(url, []).append(target)
    assert not refused, "\n".join(f"{u}: {t}" for u, t in refused.items())
    assert {"auth.logout", "notifications.profile", "credentials.change_password"} <= seen


def test_a_member_still_sees_the_forms(web):
    seeded = seed(web)
    client = web.client("member")
    targets = set()
    adapter = web.app.url_map.bind("localhost")
    for _endpoint, url in html_pages(web.app, seeded):
        if url.endswith(("/protocol", "/unassigned", "/")) or url.startswith("/entries/"):
            page = client.get(url).get_data(as_text=True)
            targets |= {
                adapter.match(urlsplit(a).path, method="POST")[0] for a in post_forms(page) if a
            }
    assert {"entries.done", "bulk.tickets", "unassigned.assign"} <= targets
