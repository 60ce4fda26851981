"""Every state-changing route of the UI is closed to read-only members and needs a CSRF token."""

from __future__ import annotations

import re

from tests.web import csrf_token

SAFE = {"GET", "HEAD", "OPTIONS"}
ANONYMOUS_FORMS = {"auth.login", "auth.setup"}  # reached before a session has a user
OWN_SESSION = {  # a read-only member's own session, notifications, profile, followed projects
    "auth.logout",
    "notifications.mark_read",
    "notifications.mark_all_read",
    "notifications.profile",
    "notifications.follow",
    "credentials.change_password",  # and their own password, name, sessions and API tokens
    "credentials.change_name",
    "credentials.change_time_zone",  # their own time zone (what they see, not the account)
    "credentials.change_language",  # their own language (what they read, not the account)
    "credentials.sign_out_elsewhere",
    "credentials.revoke_token",
}


def changing_routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every UI rule that changes something, ids filled with 1."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("api."):
            continue
        for method in sorted((rule.methods or set()) - SAFE):
            url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "1", rule.rule)
            routes.append((rule.endpoint, method, url))
    return routes


def test_the_route_table_has_changing_routes(web):
    assert len(changing_routes(web.app)) >= 2


def test_read_only_members_get_403_on_every_changing_route(web):
    client = web.client("read-only")
    token = csrf_token(client, "/")
    for endpoint, method, url in changing_routes(web.app):
        if endpoint in ANONYMOUS_FORMS | OWN_SESSION:
            continue
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 403, (endpoint, method, url, response.status_code)


def test_every_changing_route_refuses_a_request_without_csrf_token(web):
    client = web.client("owner")
    for endpoint, method, url in changing_routes(web.app):
        response = client.open(url, method=method, data={"anything": "1"})
        assert response.status_code == 400, (endpoint, method, url, response.status_code)
        assert "form expired" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200  # the session survived all of it


def test_ids_beyond_a_database_integer_are_not_found_never_a_500(web):
    client = web.client("owner")
    huge = str(2**64)
    for rule in web.app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or "<" not in rule.rule:
            continue
        if rule.endpoint.startswith("api."):
            continue  # the API answers huge ids with JSON 404s; tests/test_api_schema.py fuzzes it
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", huge, rule.rule)
        response = client.get(url)
        assert response.status_code in (400, 404), (rule.rule, response.status_code)
    for path in ("/", "/unassigned", "/projects/1/protocol"):
        assert client.get(f"{path}?before={huge}").status_code in (200, 404), path
