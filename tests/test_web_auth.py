"""Logging in, sessions, CSRF, roles and the first-run setup of the admin UI."""

from __future__ import annotations

from storage.models import WebSession
from tests.web import PASSWORD, csrf_token, login


def test_pages_need_a_login_and_login_starts_a_new_session(web):
    client = web.client(None)
    assert client.get("/").status_code == 302
    client.get("/login")
    before = client.get_cookie("postroom_session").value
    login(client, "member@agency.test")
    after = client.get_cookie("postroom_session").value
    assert before != after
    page = client.get("/")
    assert page.status_code == 200
    assert "member@agency.test" in page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_session_cookie_is_httponly_and_samesite_lax(web):
    client = web.client(None)
    response = client.get("/login")
    header = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_a_wrong_password_gives_one_generic_error(web):
    client = web.client(None)
    for email in ("member@agency.test", "nobody@agency.test"):
        token = csrf_token(client)
        response = client.post(
            "/login", data={"email": email, "password": "wrong password!", "csrf_token": token}
        )
        assert response.status_code == 401
        assert "Email or password is wrong." in response.get_data(as_text=True)


def test_repeated_failures_are_refused_from_that_address_only(web):
    client = web.client(None)
    for _ in range(6):
        token = csrf_token(client)
        response = client.post(
            "/login",
            data={"email": "member@agency.test", "password": "guess guess", "csrf_token": token},
        )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in response.get_data(as_text=True)
    # even the right password waits now, from this address
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": "member@agency.test", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    # from another address the member logs in at once
    elsewhere = web.app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    login(elsewhere, "member@agency.test")


def test_a_post_without_csrf_token_is_refused(web):
    client = web.client("member")
    response = client.post("/logout")
    assert response.status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_logout_ends_the_session_on_the_server(web):
    client = web.client("member")
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302
    assert WebSession.select().where(WebSession.user.is_null(False)).count() == 0
