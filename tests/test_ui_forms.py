"""UI forms as WTForms classes (admin_ui/forms.py): what a form refuses, and in which words.

Missing and over-long fields get the same message beside the same field and the same status
as before the forms were classes; a POST without its CSRF token changes nothing; a JSON body
is not read as a form; query-string forms (filters, paging, template links) need no token and
drop what they do not know. One test holds the views to reading forms through form classes.
"""

from __future__ import annotations

import re
from pathlib import Path

from storage.models import MailTemplate, Project, User
from tests.web import PASSWORD, csrf_token, post

VIEWS = Path(__file__).resolve().parents[1] / "admin_ui" / "views"
READS_REQUEST = re.compile(r"request\.(form|args|values|files)\b")
# What a view may still read from the request by hand: parameters that are not a form's fields.
NOT_FORMS = {
    'request.args.get("next")': "the page to return to after a login, put into the URL by "
    "the login redirect (checked by admin_ui.redirects.safe_next)",
    'request.args.get("notice", "")': "which sentence to show after a change, put into the "
    "URL by the view's own redirect",
}
EXPIRED = "The form expired or was sent from elsewhere. Reload the page."


def test_views_read_forms_only_through_form_classes():
    found = []
    for path in sorted(VIEWS.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if READS_REQUEST.search(line) and not any(allowed in line for allowed in NOT_FORMS):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == [], "read these through a class in admin_ui/forms.py:\n" + "\n".join(found)


def _status(web) -> str:
    return web.app.config["POSTROOM_SETTINGS"].ui.project_statuses[0]


def _new_project(web, client, name: str = "Bakery", **fields):
    return post(client, "/projects/new", {"name": name, "status": _status(web), **fields})


def _project(web, client, name: str = "Bakery") -> Project:
    assert _new_project(web, client, name).status_code == 302
    return Project.get(Project.name == name)


# --- missing fields: the same words beside the same field ----------------------------------
def test_a_project_without_a_name_is_refused_beside_the_name_field(web):
    client = web.client("member")
    for name in ("", "   "):
        response = _new_project(web, client, name)
        assert response.status_code == 400
        assert "Give the project a name." in response.get_data(as_text=True)
    missing = post(client, "/projects/new", {"status": _status(web)})  # no name field at all
    assert missing.status_code == 400
    assert "Give the project a name." in missing.get_data(as_text=True)
    assert Project.select().count() == 0


def test_a_project_status_not_listed_and_a_domain_that_is_none_are_refused(web):
    client = web.client("member")
    page = _new_project(web, client, status="someday").get_data(as_text=True)
    assert "Choose one of the listed statuses." in page
    page = _new_project(web, client, domain="not a domain").get_data(as_text=True)
    assert "Enter a domain like bakery-schmidt.de" in page
    assert _new_project(web, client, domain="https://www.Bakery.test/").status_code == 302
    assert Project.get().domain == "www.bakery.test"  # the host of what was pasted


def test_a_template_without_a_name_is_refused_and_kept_as_typed(web):
    client = web.client("member")
    form = {"name": "  ", "subject": "Hello {{ customer_name }}", "body": "Text\r\nmore"}
    response = post(client, "/templates/new", form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Give the template a name." in page
    assert "Hello {{ customer_name }}" in page
    assert MailTemplate.select().where(MailTemplate.subject == form["subject"]).count() == 0


def test_a_password_change_without_the_repeat_is_refused_as_differing(web):
    client = web.client("member")
    form = {"current_password": PASSWORD, "new_password": "another long password"}
    response = post(client, "/profile/password", form, token_from="/profile")
    assert response.status_code == 400
    assert "The two new passwords differ." in response.get_data(as_text=True)


def test_a_note_without_text_is_refused_and_the_text_field_marked(web):
    client = web.client("member")
    project = _project(web, client)
    path = f"/projects/{project.id}/entries/new"
    response = post(client, path, {"kind": "note", "subject": "Call back"}, token_from=path)
    assert response.status_code == 400
    assert re.search(r'<textarea name="text"[^>]*aria-invalid="true"', response.get_data(True))
    response = post(client, path, {"kind": "call", "text": "x", "occurred_at": "yesterday"})
    assert response.status_code == 400
    assert re.search(r'name="occurred_at"[^>]*aria-invalid="true"', response.get_data(True))


def test_a_member_role_that_is_none_is_a_bad_request(web):
    client = web.client("owner")
    target = web.users["member"]
    for form in ({"role": "boss"}, {}):
        assert post(client, f"/team/{target.id}/role", form).status_code == 400
    assert User.get_by_id(target.id).role == "member"


# --- over-long fields: the same limits -----------------------------------------------------
def test_project_fields_over_200_characters_are_refused_200_are_kept(web):
    client = web.client("member")
    for field in ("name", "contact_name"):
        fields = {"name": "Bakery", field: "x" * 201}
        response = post(client, "/projects/new", {"status": _status(web), **fields})
        assert response.status_code == 400
        assert "Keep this under 200 characters." in response.get_data(as_text=True)
    assert Project.select().count() == 0
    assert _new_project(web, client, "y" * 200, contact_name="z" * 200).status_code == 302


def test_a_customer_address_over_254_characters_is_refused_as_too_long(web):
    client = web.client("member")
    project = _project(web, client)
    address = "a" * 250 + "@b.test"
    response = post(client, f"/projects/{project.id}/addresses", {"address": address})
    assert response.status_code == 400
    assert "This is too long for an email address." in response.get_data(as_text=True)


def test_a_member_name_over_200_characters_is_refused(web):
    client = web.client("owner")
    form = {"email": "new@agency.test", "name": "n" * 201, "role": "member", "password": PASSWORD}
    response = post(client, "/team/members", form)
    assert response.status_code == 400
    assert "Email and name must each stay under 200 characters." in response.get_data(True)
    assert User.select().where(User.email == "new@agency.test").count() == 0


def test_a_password_over_1000_characters_is_refused_before_it_is_hashed(web):
    client = web.client("member")
    long = "p" * 1001
    form = {"current_password": PASSWORD, "new_password": long, "new_password_repeat": long}
    response = post(client, "/profile/password", form, token_from="/profile")
    assert response.status_code == 400
    assert "Passwords must stay under 1000 characters." in response.get_data(as_text=True)


# --- CSRF: exactly as strict as before -----------------------------------------------------
def test_a_form_sent_without_its_csrf_token_changes_nothing(web):
    client = web.client("owner")
    member = web.users["member"]
    status = _status(web)
    attempts = [
        ("/projects/new", {"name": "Sneaky", "status": status}),
        ("/team/members", {"email": "x@agency.test", "role": "member", "password": PASSWORD}),
        (f"/team/{member.id}/role", {"role": "admin"}),
        (f"/team/{member.id}/active", {"active": "0"}),
        ("/templates/new", {"name": "T", "subject": "S", "body": "B"}),
        ("/settings/signature", {"signature": "Sneaky"}),
        ("/profile", {"in_app": "mention"}),
    ]
    for path, form in attempts:
        for token in (None, "not-the-token"):
            data = form if token is None else {**form, "csrf_token": token}
            response = client.post(path, data=data)
            assert response.status_code == 400, path
            assert EXPIRED in response.get_data(as_text=True)
    assert Project.select().count() == 0
    assert User.select().count() == 4
    assert User.get_by_id(member.id).role == "member" and User.get_by_id(member.id).is_active
    assert MailTemplate.select().where(MailTemplate.name == "T").count() == 0


def test_a_login_without_its_csrf_token_is_refused(web):
    client = web.app.test_client()
    response = client.post("/login", data={"email": "member@agency.test", "password": PASSWORD})
    assert response.status_code == 400
    assert EXPIRED in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still logged out


def test_a_json_body_is_not_read_as_the_form(web):
    """Flask-WTF alone reads a JSON body as form data; the UI's forms read the form body only."""
    client = web.client("member")
    token = csrf_token(client, "/")
    response = client.post(
        "/projects/new",
        json={"name": "From JSON", "status": _status(web)},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 400
    assert "Give the project a name." in response.get_data(as_text=True)
    assert Project.select().count() == 0


# --- query-string forms: no token, unknown values dropped ----------------------------------
def test_query_forms_need_no_token_and_ignore_what_they_do_not_know(web):
    client = web.client("member")
    project = _project(web, client)
    protocol = client.get(
        f"/projects/{project.id}/protocol?kind=note&kind=bogus&category=nope&status=maybe"
        "&attachment=&before=abc"
    )
    assert protocol.status_code == 200
    page = protocol.get_data(as_text=True)
    assert 'value="bogus"' not in page and 'value="nope"' not in page
    for path in (
        "/?before=not-a-number",
        "/unassigned?before=1e9&q=%20bakery%20",
        f"/projects/{project.id}/messages/new?template=abc&answer=x&to=%20A@B.test",
        # digits int() will not read: a superscript two, thousands of digits
        f"/projects/{project.id}/messages/new?answer=%C2%B2",
        f"/projects/{project.id}/messages/new?answer=" + "7" * 5000,
        "/templates?q=" + "q" * 500,
    ):
        assert client.get(path).status_code == 200, path
    assert client.get(f"/projects/{project.id}/protocol?from_date=31.12.").status_code == 200
