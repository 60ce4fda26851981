"""A protocol row says what its status word is, not only in a tooltip (issue 19).

A protocol row shows the project's status at the time of the entry ("in progress") with the
explanation in a title attribute only, which a keyboard user cannot hover and most screen
readers do not say: a status word without its meaning (WCAG 1.3.1). The row now carries
the words "Project status at that time" for screen readers, in the reader's language.
"""

from __future__ import annotations

import re

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.languages import set_user_language
from storage.models import User

STATUS = re.compile(r'<span class="status-then"[^>]*>(.*?)</span>\s*</?(?:span|div)', re.S)


def spoken(html: str) -> list[str]:
    return [" ".join(re.sub(r"<[^>]*>", " ", words).split()) for words in STATUS.findall(html)]


def test_the_status_then_is_said_with_its_meaning(web):
    project = domain_projects.create_project(web.account.id, "Bakery Sommer")
    domain_projects.set_status(project, "in progress")
    domain_entries.add_manual_entry(project, web.users["owner"], kind="call", text="Anna")
    html = web.client("member").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert "Project status at that time: in progress" in spoken(html), spoken(html)
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    html = web.client("member").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert any(said.startswith("Projektstatus zu der Zeit: ") for said in spoken(html)), spoken(
        html
    )
