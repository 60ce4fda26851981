"""Every page's title says what the page is (issue 19; WCAG 2.4.2).

The template editor was titled with the template's name alone ("Offer · postroom", the same
as a mail with that subject), an error page with its number alone ("404 · postroom"). Now
the editor says "Edit template · <name>", an error page its sentence and number. No two
pages of the app share a title, but for two mails of the same subject; an entry without a
subject (a note, a call) is titled with the first words of its text, not "(no subject)".
"""

from __future__ import annotations

import re

from tests.app_pages import html_pages, seed

TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def title(html: str) -> str:
    return " ".join(TITLE.search(html).group(1).split())


def test_titles_say_what_the_page_is_and_no_two_pages_share_one(web):
    seeded = seed(web)
    client = web.client("owner")
    template_id = seeded.ids["template_id"][0]
    editor = title(client.get(f"/templates/{template_id}/edit").get_data(as_text=True))
    assert editor.startswith("Edit template · Offer "), editor
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert title(missing.get_data(as_text=True)) == "Not found. (404) · postroom"
    titles: dict[str, list[str]] = {}
    for endpoint, url in html_pages(web.app, seeded):
        if endpoint in ("auth.logout", "auth.login", "auth.setup"):
            continue  # a logged-in owner is sent elsewhere
        response = client.get(url)
        if endpoint == "entries.detail":
            assert "(no subject)" not in title(response.get_data(as_text=True)), url
            continue  # two mails may share a subject
        if response.status_code == 200:
            titles.setdefault(title(response.get_data(as_text=True)), []).append(url)
    shared = {name: urls for name, urls in titles.items() if len(urls) > 1}
    assert not shared, shared
