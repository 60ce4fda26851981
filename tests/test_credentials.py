"""Sessions and API tokens that can be ended: password change, sign-out everywhere, (de)activation,
absolute session lifetime, token list/revoke/expiry (issue 13, finding 10)."""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from domain.tokens import api_tokens, create_api_token, user_for_token
from postroom.auth import check_login
from postroom.config import ConfigError, load_settings
from storage.models import ApiToken, User, WebSession, utcnow
from tests.daemon import Daemon
from tests.web import PASSWORD, login, post

NEW_PASSWORD = "Quokka lantern orbit 7319"


def api_status(web, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return web.app.test_client().get("/api/v1/entries", headers=headers).status_code


def signed_in(client) -> bool:
    response = client.get("/profile")
    if response.status_code == 302:
        assert "/login" in response.location
        return False
    assert response.status_code == 200
    return True


def change_password(client, current: str = PASSWORD, new: str = NEW_PASSWORD, repeat=None):
    return post(
        client,
        "/profile/password",
        {
            "current_password": current,
            "new_password": new,
            "new_password_repeat": new if repeat is None else repeat,
        },
        token_from="/profile",
    )


# --- password change -------------------------------------------------------------------------
def test_a_password_change_ends_other_sessions_and_tokens_but_keeps_this_one(web):
    this, other = web.client("member"), web.client("member")
    token = create_api_token(web.users["member"], "laptop script")
    assert api_status(web, token) == 200 and signed_in(other)

    response = change_password(this)
    assert response.status_code == 302 and response.location.endswith("notice=password-changed")
    page = this.get(response.location).get_data(as_text=True)
    assert "Your password is changed" in page
    assert "laptop script" not in page  # the token is gone from the list
    assert signed_in(this)
    assert not signed_in(other)
    assert api_status(web, token) == 401
    assert ApiToken.select().where(ApiToken.user == web.users["member"].id).count() == 0
    # the new password logs in, the old one does not
    assert check_login("member@agency.test", PASSWORD) is None
    fresh = web.app.test_client()
    login(fresh, "member@agency.test", NEW_PASSWORD)
    assert signed_in(fresh)


def test_other_users_keep_their_sessions_and_tokens(web):
    admin = web.client("admin")
    admin_token = create_api_token(web.users["admin"])
    change_password(web.client("member"))
    assert signed_in(admin) and api_status(web, admin_token) == 200


@pytest.mark.parametrize(
    ("current", "new", "repeat", "says"),
    [
        ("wrong password here", NEW_PASSWORD, None, "the current password is wrong"),
        (PASSWORD, NEW_PASSWORD, "Quokka lantern orbit 7318", "The two new passwords differ."),
        (PASSWORD, "short", None, "10 characters"),
        (PASSWORD, "x" * 2000, None, "under 1000 characters"),
    ],
)
def test_a_refused_password_change_ends_nothing(web, current, new, repeat, says):
    this, other = web.client("member"), web.client("member")
    token = create_api_token(web.users["member"])
    response = change_password(this, current, new, repeat)
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    assert signed_in(this) and signed_in(other) and api_status(web, token) == 200
    assert User.get_by_id(web.users["member"].id).auth_generation == 0


def test_guessing_the_current_password_is_throttled_like_a_login(web):
    this, other = web.client("member"), web.client("member")
    for _ in range(5):
        assert change_password(this, current="guess guess guess").status_code == 400
    refused = change_password(this)  # even the right one, until the back-off ends
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in refused.get_data(as_text=True)
    assert signed_in(other) and User.get_by_id(web.users["member"].id).auth_generation == 0


def test_a_read_only_member_may_change_their_own_password(web):
    client = web.client("read-only")
    assert change_password(client).status_code == 302
    assert signed_in(client)


def test_the_password_form_needs_the_csrf_token(web):
    client = web.client("member")
    form = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_repeat": NEW_PASSWORD,
    }
    response = client.post("/profile/password", data=form)
    assert response.status_code == 400
    assert User.get_by_id(web.users["member"].id).auth_generation == 0


def test_setting_a_password_on_the_server_ends_sessions_and_tokens(web):
    from domain.users import set_password

    client = web.client("member")
    token = create_api_token(web.users["member"])
    set_password(User.get_by_id(web.users["member"].id), NEW_PASSWORD)
    assert not signed_in(client) and api_status(web, token) == 401


def test_a_login_whose_check_passed_before_a_password_change_is_refused_next_time(web, monkeypatch):
    """The race, made deterministic: the old password is checked, then a password change
    commits (through the storage layer), then the login completes; its session must not
    survive that change."""
    from admin_ui.views import auth as auth_view
    from domain.users import set_password

    def check_then_change(email: str, password: str):
        user = check_login(email, password)  # the real check passes with the old password
        assert user is not None
        set_password(User.get_by_id(user.id), NEW_PASSWORD)  # commits meanwhile
        return user

    monkeypatch.setattr(auth_view, "check_login", check_then_change)
    racer = web.app.test_client()
    login(racer, "member@agency.test")  # 302: the login itself completes
    monkeypatch.undo()
    stored = WebSession.select().where(WebSession.user == web.users["member"].id)
    generation = User.get_by_id(web.users["member"].id).auth_generation
    assert [row.auth_generation for row in stored] == [generation - 1]  # the one read
    assert not signed_in(racer)  # refused at the next request
    assert WebSession.select().where(WebSession.user == web.users["member"].id).count() == 0
    fresh = web.app.test_client()
    login(fresh, "member@agency.test", NEW_PASSWORD)
    assert signed_in(fresh)


# --- sign out everywhere, deactivation ---------------------------------------------------------
def test_sign_out_everywhere_else_keeps_this_session_and_the_tokens(web):
    this, other = web.client("member"), web.client("member")
    token = create_api_token(web.users["member"])
    response = post(this, "/profile/sessions/end-others", token_from="/profile")
    assert response.status_code == 302
    assert "signed out everywhere else" in this.get(response.location).get_data(as_text=True)
    assert signed_in(this) and not signed_in(other)
    assert api_status(web, token) == 200


def test_deactivation_then_reactivation_does_not_revive_old_sessions(web):
    member = web.users["member"]
    client = web.client("member")
    token = create_api_token(member)
    stale_rows = list(WebSession.select().where(WebSession.user == member.id).dicts())
    assert stale_rows
    admin = web.client("admin")
    assert post(admin, f"/team/{member.id}/active", {"active": "0"}).status_code == 302
    assert not signed_in(client) and api_status(web, token) == 401
    assert post(admin, f"/team/{member.id}/active", {"active": "1"}).status_code == 302
    assert User.get_by_id(member.id).is_active
    assert not signed_in(client) and api_status(web, token) == 401
    # even a session row that survived (a restored backup, a write that raced the delete)
    # is refused: it carries the generation of before the deactivation
    WebSession.insert_many(stale_rows).execute()
    assert not signed_in(client)
    login(client, "member@agency.test")  # the member logs in again normally
    assert signed_in(client)


def test_a_role_change_from_a_stale_copy_does_not_undo_an_ended_session(web):
    member = web.users["member"]
    stale = User.get_by_id(member.id)
    client = web.client("member")
    rows = list(WebSession.select().where(WebSession.user == member.id).dicts())
    change_password(web.client("member"))
    owner = web.client("owner")
    assert post(owner, f"/team/{stale.id}/role", {"role": "admin"}).status_code == 302
    WebSession.insert_many(rows).on_conflict_ignore().execute()
    assert User.get_by_id(member.id).auth_generation == 1
    assert not signed_in(client)


# --- absolute lifetime -------------------------------------------------------------------------
def test_a_session_ends_after_the_absolute_lifetime_however_active(web):
    client = web.client("member")
    now = utcnow()
    WebSession.update(created_at=now - dt.timedelta(hours=167), last_seen_at=now).execute()
    assert signed_in(client)  # default [web] session_max_hours = 168
    WebSession.update(created_at=now - dt.timedelta(hours=169), last_seen_at=now).execute()
    assert not signed_in(client)
    assert WebSession.select().where(WebSession.user == web.users["member"].id).count() == 0


def test_the_session_limits_are_checked_in_the_config(tmp_path):
    config = tmp_path / "postroom.toml"
    config.write_text("[web]\nsession_max_hours = 12\n")
    assert load_settings(config).web.session_max_hours == 12
    config.write_text("[web]\nsession_max_hours = 0\n")
    with pytest.raises(ConfigError, match=r"web\.session_max_hours"):
        load_settings(config)


# --- API tokens --------------------------------------------------------------------------------
def test_the_profile_lists_own_tokens_and_revoking_one_fails_it_at_once(web):
    member = web.users["member"]
    kept = create_api_token(member, "backup job")
    revoked = create_api_token(member, "old laptop")
    create_api_token(web.users["admin"], "admin's tool")
    assert api_status(web, revoked) == 200
    client = web.client("member")
    page = client.get("/profile").get_data(as_text=True)
    assert "backup job" in page and "old laptop" in page and "admin&#39;s tool" not in page
    backup_row = re.search(r'<tr id="token-\d+">\s*<td>backup job</td>.*?</tr>', page, re.S)
    assert backup_row and backup_row.group(0).count("</time>") == 1  # created; never used
    [row] = [t for t in api_tokens(user_id=member.id) if t.name == "old laptop"]
    response = post(client, f"/profile/tokens/{row.id}/revoke", token_from="/profile")
    assert response.status_code == 302
    assert api_status(web, revoked) == 401
    assert api_status(web, kept) == 200
    assert "old laptop" not in client.get("/profile").get_data(as_text=True)


def test_nobody_revokes_a_token_of_another_user_from_their_profile(web):
    theirs = create_api_token(web.users["owner"], "owner's")
    [row] = api_tokens(user_id=web.users["owner"].id)
    client = web.client("admin")
    assert (
        post(client, f"/profile/tokens/{row.id}/revoke", token_from="/profile").status_code == 404
    )
    assert post(client, f"/profile/tokens/{2**64}/revoke", token_from="/profile").status_code == 404
    assert api_status(web, theirs) == 200
    no_csrf = web.client("owner").post(f"/profile/tokens/{row.id}/revoke")
    assert no_csrf.status_code == 400 and api_status(web, theirs) == 200


def test_owners_and_admins_revoke_tokens_of_their_team_on_the_team_page(web):
    from domain.users import create_user
    from storage.accounts import create_account

    member_token = create_api_token(web.users["member"], "member sync")
    owner_token = create_api_token(web.users["owner"], "owner export")
    stranger = create_user(create_account("Other").id, "x@other.test", "owner", PASSWORD)
    foreign_token = create_api_token(stranger, "foreign")
    url = {t.name: f"/team/tokens/{t.id}/revoke" for t in api_tokens()}

    def revoke(client, name: str) -> int:
        return post(client, url[name], token_from="/team").status_code

    admin = web.client("admin")
    page = admin.get("/team").get_data(as_text=True)
    assert "member sync" in page and "owner export" in page and "foreign" not in page
    assert url["member sync"] in page and url["owner export"] not in page  # owners' for owners
    assert revoke(admin, "foreign") == 404
    assert revoke(admin, "owner export") == 409 and api_status(web, owner_token) == 200
    assert revoke(admin, "member sync") == 302 and api_status(web, member_token) == 401
    assert revoke(web.client("owner"), "owner export") == 302
    assert api_status(web, owner_token) == 401 and api_status(web, foreign_token) == 200
    member = web.client("member")
    assert "/team/tokens/" not in member.get("/team").get_data(as_text=True)
    assert revoke(member, "foreign") == 403


def test_an_expired_token_fails_and_is_shown_as_expired(web):
    member = web.users["member"]
    token = create_api_token(member, "short-lived", expires_days=1)
    assert api_status(web, token) == 200
    ApiToken.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    assert api_status(web, token) == 401
    assert user_for_token(token) is None
    assert "(expired)" in web.client("member").get("/profile").get_data(as_text=True)


def test_last_use_is_recorded_at_most_once_a_minute(web):
    token = create_api_token(web.users["member"])
    [row] = api_tokens(user_id=web.users["member"].id)
    assert row.last_used_at is None
    assert api_status(web, token) == 200
    first = ApiToken.get_by_id(row.id).last_used_at
    assert first is not None
    recent = utcnow() - dt.timedelta(seconds=30)
    ApiToken.update(last_used_at=recent).execute()
    assert api_status(web, token) == 200
    assert ApiToken.get_by_id(row.id).last_used_at == recent  # no write within the minute
    ApiToken.update(last_used_at=utcnow() - dt.timedelta(minutes=2)).execute()
    assert api_status(web, token) == 200
    assert ApiToken.get_by_id(row.id).last_used_at > recent


# --- over real sockets: the web server and the command line -------------------------------------
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect
        )

    def open(self, path: str, data: dict | None = None, headers: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        url = self.base + path  # our own local server: http only
        request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def form(self, path: str, page: str, data: dict):
        _, _, html = self.open(page)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        return self.open(path, {**data, "csrf_token": token})

    def login(self, email: str, password: str) -> None:
        status, _, _ = self.form("/login", "/login", {"email": email, "password": password})
        assert status == 302, status


def test_over_http_a_password_change_ends_the_other_browser_and_the_token(db_url, tmp_path):
    with Daemon(tmp_path, db_url, command="web") as daemon:
        daemon.create_user("anna@agency.test", role="member")
        token = daemon.cli_json(
            "token", "create", "anna@agency.test", "--name", "ci", "--expires-days", "30"
        )["token"]
        listed = daemon.cli_json("token", "list", "--user", "anna@agency.test")
        assert [(t["name"], t["user"]) for t in listed] == [("ci", "anna@agency.test")]
        assert listed[0]["expires_at"] is not None and "token" not in listed[0]
        bearer = {"Authorization": f"Bearer {token}"}
        this, other = Browser(daemon.web_url), Browser(daemon.web_url)
        this.login("anna@agency.test", PASSWORD)
        other.login("anna@agency.test", PASSWORD)
        assert other.open("/profile")[0] == 200
        assert this.open("/api/v1/entries", headers=bearer)[0] == 200

        status, headers, _ = this.form(
            "/profile/password",
            "/profile",
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_repeat": NEW_PASSWORD,
            },
        )
        assert status == 302
        assert this.open("/profile")[0] == 200
        status, headers, _ = other.open("/profile")
        assert status == 302 and "/login" in headers["Location"]
        assert this.open("/api/v1/entries", headers=bearer)[0] == 401
        assert daemon.cli_json("token", "list") == []


def test_the_command_line_lists_and_revokes_tokens(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    daemon.account = daemon.create_account()
    daemon.create_user("anna@agency.test")
    daemon.create_user("ben@agency.test")
    first = daemon.cli_json("token", "create", "anna@agency.test", "--name", "one")["token"]
    daemon.cli_json("token", "create", "ben@agency.test", "--name", "two")
    everyone = daemon.cli_json("token", "list")
    assert [t["name"] for t in everyone] == ["one", "two"]
    assert first not in daemon.cli("token", "list").stdout
    [anna] = daemon.cli_json("token", "list", "--user", "anna@agency.test")
    assert "revoked" in daemon.cli("token", "revoke", str(anna["id"])).stdout
    assert [t["name"] for t in daemon.cli_json("token", "list")] == ["two"]
    again = daemon.cli("token", "revoke", str(anna["id"]), check=False)
    assert again.returncode == 1 and f"no API token {anna['id']}" in again.stderr
    bad = daemon.cli("token", "create", "anna@agency.test", "--expires-days", "0", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr

    from storage.db import open_database

    db = open_database(db_url)
    try:
        assert user_for_token(first) is None
    finally:
        db.close()


def test_over_http_a_revoked_token_gets_401_at_once(db_url, tmp_path):
    """Revoked on the command line (another process) or in the profile: the very next API
    request with it, to the running web server, gets 401; the other token still works."""
    with Daemon(tmp_path, db_url, command="web") as daemon:
        daemon.create_user("anna@agency.test", role="member")
        tokens = {
            name: daemon.cli_json("token", "create", "anna@agency.test", "--name", name)["token"]
            for name in ("ci", "laptop", "kept")
        }
        client = Browser(daemon.web_url)

        def status(name: str) -> int:
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            return client.open("/api/v1/entries", headers=headers)[0]

        assert [status(name) for name in tokens] == [200, 200, 200]
        ids = {t["name"]: t["id"] for t in daemon.cli_json("token", "list")}
        daemon.cli("token", "revoke", str(ids["ci"]))
        assert status("ci") == 401

        client.login("anna@agency.test", PASSWORD)
        revoked, _, _ = client.form(f"/profile/tokens/{ids['laptop']}/revoke", "/profile", {})
        assert revoked == 302
        assert status("laptop") == 401
        assert status("kept") == 200
