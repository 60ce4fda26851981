"""Review of issue 15 (users, sessions, tokens, accounts in domain; the UI's form classes):
what a hostile user or a careless paste sends, on SQLite and PostgreSQL, in process."""

from __future__ import annotations

import pytest

from domain.tokens import create_api_token
from domain.users import create_user
from storage.accounts import create_account
from storage.models import ApiToken, Project, User
from tests.web import PASSWORD, post

ONE_LINE = "Write this on one line, without tabs or other control characters."


def _status(web) -> str:
    return web.app.config["POSTROOM_SETTINGS"].ui.project_statuses[0]


# --- a project's name and contact person: the domain's one-line rule beside the field ------
@pytest.mark.parametrize("field", ["name", "contact_name"])
def test_a_tab_in_a_project_field_is_refused_beside_the_field_when_editing(web, bakery, field):
    """A tab pasted into the name (the browser keeps it) was a 500: the domain refuses it."""
    client = web.client("member")
    path = f"/projects/{bakery.id}/edit"
    fields = {"name": "Bakery Miller", "status": bakery.status, field: "Bakery\tMiller"}
    response = post(client, path, fields, token_from=path)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nothing was saved. Correct the marked fields" in page
    assert ONE_LINE in page
    stored = Project.get_by_id(bakery.id)
    assert (stored.name, stored.contact_name) == ("Bakery Miller", "Anna Miller")


@pytest.mark.parametrize("field", ["name", "contact_name"])
def test_a_control_character_in_a_new_project_is_refused_beside_the_field(web, field):
    client = web.client("member")
    fields = {"name": "Bakery", "status": _status(web), field: "Bakery\x01Miller"}
    response = post(client, "/projects/new", fields)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert ONE_LINE in page
    assert "must be one line" not in page  # not listed under the addresses
    assert Project.select().count() == 0


# --- another account's ids -----------------------------------------------------------------
def test_ids_of_another_account_are_not_found_on_the_team_and_profile_pages(web):
    other = create_account("Other agency")
    stranger = create_user(other.id, "s@other.test", "owner", PASSWORD)
    create_api_token(stranger, "theirs")
    token = ApiToken.get()
    client = web.client("owner")
    assert post(client, f"/team/{stranger.id}/role", {"role": "member"}).status_code == 404
    assert post(client, f"/team/{stranger.id}/active", {"active": "0"}).status_code == 404
    assert post(client, f"/team/tokens/{token.id}/revoke").status_code == 404
    assert post(client, f"/profile/tokens/{token.id}/revoke").status_code == 404
    assert ApiToken.select().count() == 1
    stored = User.get_by_id(stranger.id)
    assert (stored.role, stored.is_active) == ("owner", True)


# --- a member's name: one limit for the CLI and the UI -------------------------------------
def test_a_members_name_over_200_characters_is_refused_by_the_domain_and_the_cli(
    web, db_url, tmp_path
):
    """The UI refused a name over 200 characters, the CLI stored it (SQLite) or failed with
    a traceback (PostgreSQL: the column holds 255)."""
    import os

    from click.testing import CliRunner

    from domain import users
    from domain.errors import Invalid
    from postroom.cli import main

    with pytest.raises(Invalid, match="a name has at most 200 characters"):
        users.create_user(web.account.id, "long@agency.test", "member", PASSWORD, "x" * 300)
    kept = users.create_user(web.account.id, "fits@agency.test", "member", PASSWORD, "y" * 200)
    assert len(kept.name) == 200

    config = tmp_path / "cli.toml"
    config.write_text(f'[storage]\nurl = "{db_url}"\n[ingest]\ndomains = ["in.example"]\n')
    args = ["-c", str(config), "user", "create", "cli@agency.test", "--account"]
    umask = os.umask(0o077)  # the command sets its own; this process keeps the one it had
    try:
        result = CliRunner().invoke(
            main, [*args, str(web.account.id), "--name", "x" * 201, "--password-stdin"], PASSWORD
        )
    finally:
        os.umask(umask)
    assert result.exit_code == 1, result.output
    assert "Error: a name has at most 200 characters\n" in result.output
    assert User.select().where(User.email.in_(["long@agency.test", "cli@agency.test"])).count() == 0


# --- a text field sent as a file part --------------------------------------------------------
def test_a_text_field_sent_as_a_file_is_read_as_not_sent(web):
    """A multipart body with a file where a form has a text field was a 500 (the field's filter
    got the file); the views read request.form alone and saw the field as not sent."""
    import io

    from storage.models import Account
    from tests.web import csrf_token

    client = web.client("owner")
    assert post(client, "/settings/signature", {"signature": "Kind regards"}).status_code == 302
    sent = {"csrf_token": csrf_token(client, "/settings"), "signature": (io.BytesIO(b"x"), "a")}
    response = client.post("/settings/signature", data=sent, content_type="multipart/form-data")
    assert response.status_code == 302
    assert Account.get_by_id(web.account.id).signature == ""

    anonymous = web.client(None)
    sent = {
        "csrf_token": csrf_token(anonymous, "/login"),
        "email": (io.BytesIO(b"owner@agency.test"), "email.txt"),
        "password": PASSWORD,
    }
    response = anonymous.post("/login", data=sent, content_type="multipart/form-data")
    assert response.status_code == 401  # a failed login: no e-mail was given
    assert anonymous.get("/profile").status_code == 302  # not logged in


# --- when a call happened: the ends of the calendar ----------------------------------------
@pytest.mark.parametrize(
    ("occurred_at", "zone"),
    [("9999-12-31T23:59", "America/New_York"), ("0001-01-01T00:00", "Asia/Tokyo")],
)
def test_a_call_at_the_end_of_the_calendar_is_refused_beside_the_field(
    web, bakery, occurred_at, zone
):
    """Moving the user's local time to UTC overflowed (a 500); the field is marked instead."""
    import re

    from domain.time_zones import set_user_time_zone
    from storage.models import Entry

    set_user_time_zone(web.users["member"], zone)
    client = web.client("member")
    path = f"/projects/{bakery.id}/entries/new"
    form = {"kind": "call", "text": "Called", "occurred_at": occurred_at}
    response = post(client, path, form, token_from=path)
    assert response.status_code == 400
    assert re.search(r'name="occurred_at"[^>]*aria-invalid="true"', response.get_data(True))
    assert Entry.select().where(Entry.kind == "call").count() == 0


# --- a NUL in a search box -----------------------------------------------------------------
def test_a_nul_in_a_search_box_is_dropped(web, bakery):
    """PostgreSQL refuses a NUL in a query: the search boxes of the projects, unassigned mail,
    the templates and the message form's template search were a 500 there (the API says 400)."""
    client = web.client("member")
    for path, name in (
        ("/projects", "q"),
        ("/unassigned", "q"),
        ("/templates", "q"),
        (f"/projects/{bakery.id}/messages/new", "template_q"),
    ):
        response = client.get(path, query_string={name: "Bak\x00ery"})
        assert response.status_code == 200, path
    page = client.get("/projects", query_string={"q": "Bak\x00ery"}).get_data(as_text=True)
    assert "Bakery Miller" in page


# --- a NUL where PostgreSQL refuses one ----------------------------------------------------
def test_a_login_with_a_nul_in_the_email_is_a_failed_login(web):
    """It was a 500 on PostgreSQL before the password was checked (and counted as a try)."""
    from tests.web import csrf_token

    client = web.client(None)
    for email in ("\x00", "member@agency.test\x00"):
        sent = {"email": email, "password": PASSWORD, "csrf_token": csrf_token(client, "/login")}
        response = client.post("/login", data=sent)
        assert response.status_code == 401
    assert client.get("/profile").status_code == 302  # not logged in


@pytest.mark.parametrize("field", ["name", "subject", "body"])
def test_a_template_with_a_nul_is_refused_and_not_stored(web, field):
    """It was a 500 on PostgreSQL (stored as is on SQLite)."""
    from domain.templates import NO_NUL
    from storage.models import MailTemplate

    client = web.client("member")
    form = {"name": "Offer", "subject": "Our offer", "body": "Text", field: "Off\x00er"}
    response = post(client, "/templates/new", form)
    assert response.status_code == 400
    assert NO_NUL in response.get_data(as_text=True)
    assert MailTemplate.select().where(MailTemplate.subject == "Our offer").count() == 0
