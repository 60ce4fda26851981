"""Display names and the own password (issue 17, acceptance 5): the name given at setup, on
invite or in the profile is the author in the protocol, `{{ sender_name }}` in templates and
the `From:` name of mail to customers; everyone changes their own password on the profile.
"""

from __future__ import annotations

import email
import html
import re
from email.policy import default as default_policy
from email.utils import getaddresses

import pytest

from domain.errors import Invalid
from domain.projects import create_project
from domain.tokens import setup_token
from domain.users import MAX_NAME_CHARS, NOT_ONE_LINE, WRONG_PASSWORD, set_name
from postroom.config import load_settings
from postroom.mail_templates import variables_for
from postroom.outbound import from_name_of, sender_of_account
from postroom.outbound_send import send_due
from storage.models import Entry, OutboundMessage, User
from tests.daemon import Daemon, reserve_port
from tests.test_outbound import smtp_sink
from tests.web import PASSWORD, csrf_token

OWNER_PASSWORD = "long enough password"
NEW_PASSWORD = "a brand new passphrase"


def _setup_app(tmp_path, port: int):
    """A fresh installation whose [outbound] server is an SMTP sink on `port`."""
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text(
        '[ingest]\ndomains = ["agency.test"]\n'
        f'[outbound]\nsmtp_url = "smtp://127.0.0.1:{port}?security=none"\n'
    )
    settings = load_settings(config)
    return create_app(settings, testing=True), settings


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_name_given_at_setup_is_the_author_in_the_protocol_and_the_from_name(
    storage_db, tmp_path
):
    port = reserve_port()
    app, settings = _setup_app(tmp_path, port)
    client = app.test_client()
    page = f"/setup?token={setup_token()}"
    form = client.get(page).get_data(as_text=True)
    assert re.search(r'<label>Your name <input name="name"', form)  # labelled
    response = client.post(
        page,
        data={
            "agency": "Pixel & Paper",
            "name": "  Sam Miller ",
            "email": "owner@pixel.test",
            "password": OWNER_PASSWORD,
            "csrf_token": csrf_token(client, page),
        },
    )
    assert response.status_code == 302, _text(response)[:500]
    owner = User.get()
    assert owner.name == "Sam Miller"
    project = create_project(
        owner.account_id, "Bakery Miller", customer_addresses=["anna@bakery.example"]
    )
    assert variables_for(project, owner, "anna@bakery.example")["sender_name"] == "Sam Miller"

    # a note: its author in the protocol and "by …" on the entry
    path = f"/projects/{project.id}/entries/new"
    response = client.post(
        path,
        data={
            "kind": "note",
            "subject": "Called back",
            "text": "She wants a quote.",
            "csrf_token": csrf_token(client, path),
        },
    )
    assert response.status_code == 302, _text(response)[:500]
    note = Entry.get(Entry.kind == "note")
    protocol = _text(client.get(f"/projects/{project.id}/protocol"))
    assert '<span class="from">Sam Miller</span>' in protocol
    assert "by Sam Miller" in _text(client.get(f"/entries/{note.id}"))

    # a mail to the customer, sent to the sink: From names Sam Miller
    path = f"/projects/{project.id}/messages/new"
    response = client.post(
        path,
        data={
            "to": "anna@bakery.example",
            "to_other": "",
            "subject": "Your quote",
            "body": "Hello Anna,\n\nhere it is.",
            "csrf_token": csrf_token(client, path),
        },
    )
    assert response.status_code == 302, _text(response)[:500]
    with smtp_sink(port) as sink:
        assert send_due(settings) == (1, 0)
    [(_mail_from, _rcpt, raw)] = sink.received
    mail = email.message_from_bytes(raw, policy=default_policy)
    [(name, address)] = getaddresses([mail["From"]])
    agency_sender = sender_of_account(owner.account_id, settings)[0]
    assert name == f"Sam Miller ({agency_sender})"
    assert address.endswith("@agency.test")
    sent = Entry.get_by_id(OutboundMessage.get().entry_id)
    assert sent.from_name == name  # the protocol shows who wrote it
    assert "Sam Miller" in _text(client.get(f"/projects/{project.id}/protocol"))


def test_a_refused_name_at_setup_keeps_the_token_and_stores_nothing(storage_db, tmp_path):
    app, _settings = _setup_app(tmp_path, reserve_port())
    client = app.test_client()
    token = setup_token()
    page = f"/setup?token={token}"
    response = client.post(
        page,
        data={
            "agency": "Pixel & Paper",
            "name": "Sam\u2028Bcc: someone",
            "email": "owner@pixel.test",
            "password": OWNER_PASSWORD,
            "csrf_token": csrf_token(client, page),
        },
    )
    assert response.status_code == 200 and NOT_ONE_LINE in _text(response)
    assert User.select().count() == 0 and setup_token() == token


def test_the_from_name_is_the_authors_with_the_senders():
    """Without a display name the sender's (the agency's) name stands alone."""
    assert from_name_of(User(name="Sam"), "Agency") == "Sam (Agency)"
    assert from_name_of(User(name=""), "Agency") == "Agency"
    assert from_name_of(None, "Agency") == "Agency"
    assert from_name_of(User(name="Agency"), "Agency") == "Agency"
    assert from_name_of(User(name="Sam"), "") == "Sam"
    long_name = "S" * MAX_NAME_CHARS
    assert from_name_of(User(name=long_name), "A" * MAX_NAME_CHARS) == long_name  # fits 255


def test_a_name_given_on_invite_is_shown_on_the_team_page(web):
    owner = web.client("owner")
    response = owner.post(
        "/team/members",
        data={
            "email": "kim@agency.test",
            "name": "Kim Lee",
            "role": "member",
            "password": PASSWORD,
            "csrf_token": csrf_token(owner, "/team"),
        },
    )
    assert response.status_code == 302
    assert User.get(User.email == "kim@agency.test").name == "Kim Lee"
    assert "<td>Kim Lee</td>" in _text(owner.get("/team"))
    assert re.search(
        r'<label>Name <span class="muted">\(optional\)</span> <input type="text" name="name"',
        _text(owner.get("/team")),
    )


def test_everyone_edits_their_own_name_in_the_profile(web):
    member = web.client("member")
    profile = _text(member.get("/profile"))
    assert re.search(r'<label>Display name <input name="name" value="Member"', profile)
    response = member.post(
        "/profile/name", data={"name": " Mia Berg ", "csrf_token": csrf_token(member, "/profile")}
    )
    assert response.status_code == 302
    assert "Your name is saved." in _text(member.get(response.headers["Location"]))
    assert User.get_by_id(web.users["member"].id).name == "Mia Berg"
    for bad, words in (("Mia\nBerg", NOT_ONE_LINE), ("x" * (MAX_NAME_CHARS + 1), "at most")):
        response = member.post(
            "/profile/name", data={"name": bad, "csrf_token": csrf_token(member, "/profile")}
        )
        assert response.status_code == 400 and words in _text(response)
        assert User.get_by_id(web.users["member"].id).name == "Mia Berg"
    # without the CSRF token nothing changes
    assert member.post("/profile/name", data={"name": "Mallory"}).status_code == 400
    assert User.get_by_id(web.users["member"].id).name == "Mia Berg"


def test_a_read_only_member_names_themselves_too(web):
    reader = web.client("read-only")
    response = reader.post(
        "/profile/name", data={"name": "Rita Reader", "csrf_token": csrf_token(reader, "/profile")}
    )
    assert response.status_code == 302
    assert User.get_by_id(web.users["read-only"].id).name == "Rita Reader"


def test_set_name_is_the_one_rule_for_the_cli_too(web):
    user = web.users["admin"]
    assert set_name(user, "  Alex Stone ").name == "Alex Stone"
    assert User.get_by_id(user.id).name == "Alex Stone"
    with pytest.raises(Invalid):
        set_name(user, "Alex\rStone")
    assert set_name(user, "").name == ""  # cleared: the e-mail is shown


def _change(client, current: str, new: str, repeat: str | None = None):
    return client.post(
        "/profile/password",
        data={
            "current_password": current,
            "new_password": new,
            "new_password_repeat": new if repeat is None else repeat,
            "csrf_token": csrf_token(client, "/profile"),
        },
    )


def _login_status(web, password: str) -> int:
    client = web.app.test_client()
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"email": "member@agency.test", "password": password, "csrf_token": token},
    ).status_code


def test_the_own_password_change_works_and_the_old_one_stops_working(web):
    elsewhere = web.client("member")  # another browser, signed in before the change
    member = web.client("member")
    profile = _text(member.get("/profile"))
    for label in ("Current password", "New password", "New password again"):
        assert f"<label>{label} <input" in profile
    response = _change(member, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert "Your password is changed." in _text(member.get(response.headers["Location"]))
    assert member.get("/profile").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/profile").status_code == 302  # the other session ended
    assert _login_status(web, PASSWORD) == 401
    assert _login_status(web, NEW_PASSWORD) == 302


def test_a_wrong_current_password_is_refused(web):
    member = web.client("member")
    response = _change(member, "not my password at all", NEW_PASSWORD)
    assert response.status_code == 400 and WRONG_PASSWORD in _text(response)
    response = _change(member, PASSWORD, NEW_PASSWORD, repeat="something else entirely")
    assert response.status_code == 400 and "The two new passwords differ." in _text(response)
    response = _change(member, PASSWORD, "short")
    assert response.status_code == 400 and "at least 10 characters" in _text(response)
    # without the CSRF token nothing changes
    response = member.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_repeat": NEW_PASSWORD,
        },
    )
    assert response.status_code == 400
    assert _login_status(web, PASSWORD) == 302 and _login_status(web, NEW_PASSWORD) == 401


def test_the_cli_sets_and_clears_a_display_name_and_refuses_a_line_break(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)  # the CLI only: nothing is started
    daemon.cli("init")
    daemon.account = daemon.create_account()
    daemon.create_user("sam@agency.test")
    shown = daemon.cli("user", "set-name", "sam@agency.test", "Sam Miller")
    assert "name of sam@agency.test set to 'Sam Miller'" in shown.stdout
    refused = daemon.cli("user", "set-name", "sam@agency.test", "Sam\nMiller", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "cleared" in daemon.cli("user", "set-name", "sam@agency.test", "").stdout
    unknown = daemon.cli("user", "set-name", "nobody@x.test", "N", check=False)
    assert unknown.returncode == 1 and "no user nobody@x.test" in unknown.stderr


def test_in_a_browser_the_setup_name_signs_notes_and_mail_and_a_new_password_replaces_the_old(
    storage_db, tmp_path, page, network_log
):
    """Acceptance 5 as the owner lives it: the name typed at setup is the author of a note in
    the protocol and the From name of a mail sent from the message form; the password changed
    on the profile is the only one that signs in afterwards."""
    from tests.test_ui_entries import serving

    port = reserve_port()
    app, settings = _setup_app(tmp_path, port)
    with serving(app) as base:
        page.goto(f"{base}/setup?token={setup_token()}")
        page.get_by_label("Agency name").fill("Pixel & Paper")
        page.get_by_label("Your name").fill("Sam Miller")
        page.get_by_label("Your email").fill("owner@pixel.test")
        page.get_by_label("Password (10 characters or more").fill(OWNER_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Create").click()
        owner = User.get()
        project = create_project(
            owner.account_id, "Bakery Miller", customer_addresses=["anna@bakery.example"]
        )

        page.goto(f"{base}/projects/{project.id}/entries/new")
        page.locator("textarea[name=text]").fill("She wants a quote.")
        with page.expect_navigation():
            page.get_by_role("button", name="Add to protocol").click()
        page.goto(f"{base}/projects/{project.id}/protocol")
        assert (
            "Sam Miller"
            in page.locator(f"#entry-{Entry.get(Entry.kind == 'note').id}").inner_text()
        )

        page.goto(f"{base}/projects/{project.id}/messages/new")
        page.locator("select[name=to]").select_option("anna@bakery.example")
        page.locator("input[name=subject]").fill("Your quote")
        page.locator("textarea[name=body]").fill("Hello Anna,\n\nhere it is.")
        with page.expect_navigation():
            page.get_by_role("button", name="Send").click()
        with smtp_sink(port) as sink:
            assert send_due(settings) == (1, 0)
        [(_mail_from, _rcpt, raw)] = sink.received
        mail = email.message_from_bytes(raw, policy=default_policy)
        [(name, _address)] = getaddresses([mail["From"]])
        assert name.startswith("Sam Miller")

        page.goto(f"{base}/profile#password")
        page.get_by_label("Current password").fill(OWNER_PASSWORD)
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Change password").click()
        assert "Your password is changed." in page.locator("body").inner_text()

        page.context.clear_cookies()  # signed out: this browser starts again
        for password, signed_in in ((OWNER_PASSWORD, False), (NEW_PASSWORD, True)):
            page.goto(f"{base}/login")
            page.fill("input[name=email]", "owner@pixel.test")
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert (page.locator(".error[role=alert]").count() == 0) is signed_in, password
            assert page.url.rstrip("/").endswith("/login") is not signed_in, page.url
    network_log.assert_only_local()
