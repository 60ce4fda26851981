"""Every column of a table has a header a screen reader can say (issue 19; 1.3.1).

The tables of tokens, members, customer addresses and templates had an empty header over
their buttons' column, so a screen reader moving into that column said nothing for it (the
block rules' table already said "Remove"). Each such header now names the column, hidden
from the eye as before.
"""

from __future__ import annotations

import re

from tests.app_pages import seed

HEAD = re.compile(r"<thead>(.*?)</thead>", re.S)
CELL = re.compile(r"<th\b[^>]*>(.*?)</th>", re.S)


def test_no_table_has_an_empty_column_header(web):
    from domain.languages import set_user_language
    from storage.models import User

    seeded = seed(web)
    project_id = seeded.ids["project_id"][0]
    pages = ("/team", "/profile", f"/projects/{project_id}/edit", "/templates", "/settings")
    for language in ("en", "de"):
        set_user_language(User.get_by_id(web.users["owner"].id), language)
        client = web.client("owner")
        for path in pages:
            html = client.get(path).get_data(as_text=True)
            heads = HEAD.findall(html)
            assert heads, path
            for head in heads:
                for cell in CELL.findall(head):
                    words = re.sub(r"<[^>]*>", "", cell).strip()
                    assert words, f"{path} ({language}): an empty column header in {head!r}"
