"""`{{ invitation_link }}` is a real project field: edited on the project's edit form (empty or
an http(s) address), shown on the project page, filled into templates from the project; and
the template editor's preview shows exactly the mail a real send makes for a chosen project.
"""

from __future__ import annotations

import html
import re

import pytest

from postroom.outbound import queue_message
from storage.models import Entry, OutboundMessage, Project
from storage.outbound import save_template
from tests.web import post

LINK = "https://preview.agency.example/bakery?token=a1&lang=de"
SAMPLE_LINK = "https://bakery-miller.example/invite/abc123"  # the editor's sample value


def edit(client, project_id: int, **changes):
    form = {
        "name": "Bakery Miller",
        "domain": "bakery.example",
        "status": "in progress",
        "contact_name": "Anna Miller",
        "invitation_link": "",
        **changes,
    }
    path = f"/projects/{project_id}/edit"
    return post(client, path, form, token_from=path)


def test_the_invitation_link_is_edited_on_the_project_and_shown_on_its_page(web, bakery):
    member = web.client("member")
    saved = edit(member, bakery.id, invitation_link=f"  {LINK} ")
    assert saved.status_code == 302
    assert Project.get_by_id(bakery.id).invitation_link == LINK

    form = member.get(f"/projects/{bakery.id}/edit").get_data(as_text=True)
    assert f'name="invitation_link" value="{html.escape(LINK)}"' in form
    assert re.search(r"<label>Invitation link\b", form)  # labelled
    page = member.get(f"/projects/{bakery.id}/protocol").get_data(as_text=True)
    assert f'class="invitation-link" href="{html.escape(LINK)}"' in page

    assert edit(member, bakery.id, invitation_link="").status_code == 302  # empty: none
    assert Project.get_by_id(bakery.id).invitation_link == ""
    page = member.get(f"/projects/{bakery.id}/protocol").get_data(as_text=True)
    assert "invitation-link" not in page


@pytest.mark.parametrize(
    ("link", "words"),
    [
        ("javascript:alert(1)", "starting with https://"),
        ("ftp://files.agency.example/x", "starting with https://"),
        ("https://", "starting with https://"),
        ("https://a b.example/", "starting with https://"),
        ("https://x.example/\r\nBcc: victim@evil.example", "starting with https://"),
        ("https://x.example/" + "a" * 300, "under 255 characters"),
    ],
)
def test_a_link_that_is_not_a_web_address_is_refused(web, bakery, link, words):
    member = web.client("member")
    refused = edit(member, bakery.id, invitation_link=link, contact_name="Changed")
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert words in page and 'id="invitation-link-error"' in page
    stored = Project.get_by_id(bakery.id)
    assert (stored.invitation_link, stored.contact_name) == ("", "Anna Miller")  # nothing saved


def test_read_only_members_cannot_change_the_link(web, bakery):
    assert edit(web.client("read-only"), bakery.id, invitation_link=LINK).status_code == 403
    assert Project.get_by_id(bakery.id).invitation_link == ""


# --- templates: the value comes from the project; the preview is the real send ----------------
SUBJECT = "{{ website_name }}: your preview"
BODY = (
    'Hello {{ customer_name or "there" }},\n\n'
    "{% if invitation_link %}Have a look: <{{ invitation_link }}>{% endif %}"
    "{% if not invitation_link %}We send you the link soon.{% endif %}\n\n"
    "{{ sender_name }}\n"
)


def preview_of(client, template_id: int, project_id: int | None = None) -> tuple[str, str, str]:
    """(To, Subject, text) as the template editor's preview shows them."""
    query = f"?project={project_id}" if project_id else ""
    page = client.get(f"/templates/{template_id}/edit{query}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    to = re.search(r"<dt>To</dt><dd>(.*?)</dd>", text).group(1)
    subject = re.search(r"<dt>Subject</dt><dd><strong>(.*?)</strong></dd>", text).group(1)
    body = re.search(r'<div class="text-body">(.*?)</div>', text, re.S).group(1)
    return html.unescape(to), html.unescape(subject), html.unescape(body)


def real_send(web, project: Project, template_id: int) -> tuple[str, str, str]:
    """(To, Subject, text) of the mail queue_message makes from the template."""
    entry = queue_message(
        project,
        web.users["member"],
        "anna@bakery.example",
        "",
        "",
        template_id=template_id,
        settings=web.app.config["POSTROOM_SETTINGS"],
    )
    outbound = OutboundMessage.get(OutboundMessage.entry == entry.id)
    return outbound.to_address, Entry.get_by_id(entry.id).subject, outbound.body_text


def test_the_preview_is_the_mail_a_real_send_makes_for_the_chosen_project(web, bakery):
    template = save_template(web.account.id, "Preview", SUBJECT, BODY)
    member = web.client("member")
    assert edit(member, bakery.id, invitation_link=LINK).status_code == 302
    project = Project.get_by_id(bakery.id)

    shown = preview_of(member, template.id, bakery.id)
    assert shown == real_send(web, project, template.id)
    assert shown[1] == "Bakery Miller: your preview"
    assert f"Have a look: <{LINK}>" in shown[2] and "Member" in shown[2]
    assert SAMPLE_LINK not in shown[2]

    # the message form, filled from the template, says the same
    form = member.get(f"/projects/{bakery.id}/messages/new?template={template.id}")
    assert f"Have a look: &lt;{html.escape(LINK)}&gt;" in form.get_data(as_text=True)


def test_a_value_the_project_lacks_is_left_out_of_the_preview_as_out_of_the_mail(web, bakery):
    template = save_template(web.account.id, "Preview", SUBJECT, BODY)
    member = web.client("member")
    page = member.get(f"/templates/{template.id}/edit").get_data(as_text=True)
    assert "bakery-miller.example" not in page  # no sample values in the preview
    assert f'value="{bakery.id}" selected' in page  # the only project, chosen

    shown = preview_of(member, template.id)
    assert shown == real_send(web, Project.get_by_id(bakery.id), template.id)
    assert "We send you the link soon." in shown[2] and "Have a look" not in shown[2]


def test_the_preview_offers_the_accounts_projects_only(web, bakery):
    from domain.projects import create_project
    from storage.accounts import create_account

    other = create_project(create_account("Elsewhere").id, "Secret project")
    template = save_template(web.account.id, "Preview", SUBJECT, BODY)
    page = web.client("member").get(f"/templates/{template.id}/edit?project={other.id}")
    text = page.get_data(as_text=True)
    assert "Secret project" not in text
    assert "Bakery Miller: your preview" in text  # another account's id: the first of ours


def test_without_a_project_the_editor_says_what_a_preview_needs(web):
    template = save_template(web.account.id, "Preview", SUBJECT, BODY)
    page = web.client("member").get(f"/templates/{template.id}/edit").get_data(as_text=True)
    assert "There is no project yet." in page
    assert "Bakery Miller" not in page and 'class="text-body"' not in page
