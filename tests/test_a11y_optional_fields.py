"""Forms say which fields may stay empty (issue 19; WCAG 3.3.2).

The app marks the optional fields of a form ("Subject (optional)", "User name (empty: no
login)"), the required ones carry `required`. Some optional fields were not marked, so
"Domain" looked as needed as "Name": a project's Domain, Contact person and customer
addresses, the mail server's Sender name and Password. Every text field of these forms is
now either required or says in its label that it may stay empty, in both languages. (Team's
new member Name waits: tests/test_display_names.py reads that label's exact markup.)
"""

from __future__ import annotations

import re

from domain import projects as domain_projects
from domain.languages import set_user_language
from storage.models import User

LABEL = re.compile(r"<label[^>]*>(.*?)</label>", re.S)
FIELD = re.compile(r"<(input|textarea)\b([^>]*)>")
TEXT_TYPES = {"text", "email", "url", "number", "password", "search", None}


def unmarked_optional_fields(html: str, form_action: str, said: tuple[str, ...]) -> list[str]:
    """Names of the form's text fields that are neither required nor labelled optional."""
    form = re.search(rf'<form[^>]*action="{re.escape(form_action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form, form_action
    found = []
    for label in LABEL.findall(form.group(1)):
        for _tag, attributes in FIELD.findall(label):
            kind = re.search(r'type="([^"]*)"', attributes)
            if (kind.group(1) if kind else None) not in TEXT_TYPES or " required" in attributes:
                continue
            words = re.sub(r"<[^>]*>", "", label.split("<input")[0].split("<textarea")[0])
            if not any(word in words for word in said):
                found.append(re.search(r'name="([^"]*)"', attributes).group(1))
    return found


def test_optional_fields_say_so(web):
    project = domain_projects.create_project(web.account.id, "Bakery Sommer")
    forms = {
        "/projects/new": "/projects/new",
        f"/projects/{project.id}/edit": f"/projects/{project.id}/edit",
        "/settings": "/settings/smtp",
        "/team": "/team/members",
    }
    for language, said in (("en", ("(optional", "(empty")), ("de", ("(optional", "(leer"))):
        set_user_language(User.get_by_id(web.users["owner"].id), language)
        client = web.client("owner")
        for path, action in forms.items():
            html = client.get(path).get_data(as_text=True)
            assert unmarked_optional_fields(html, action, said) == [], (language, path)
