"""Redirects after login and after forms stay on this site, whatever `next` or the Referer say."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from admin_ui.redirects import local_path
from domain.projects import create_project
from storage.models import Entry
from tests.web import PASSWORD, csrf_token, post

ORIGIN = "http://localhost"  # what the Flask test client calls the site

TRICKS = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "/%09/evil.example/x",
    "/\t/evil.example/x",
    "\t//evil.example/x",
    "/\n/evil.example/x",
    "/%0A/evil.example/x",
    "/%0D%0A/evil.example/x",
    "/\r\n/evil.example/x",
    "https://evil.example/x",
    "HTTPS://evil.example",
    "http:/evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%252F%252Fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "/\x00",
    "/\x00//evil.example",
    "///evil.example",
    "////evil.example",
    "/ /evil.example",
    " //evil.example",
    "/\u3000/evil.example",
    "/\u2028/evil.example",
    "/\ufeff/evil.example",
    "/\u200b/evil.example",
    "/\x85/evil.example",
    "／／evil.example",  # fullwidth solidus
    "\uff0f\uff0fevil.example",
    "evil.example",
    "http://[::1",  # urlsplit raises for an IPv6 host without "]": not a 500
    "//[evil.example",
    ".//evil.example",
    "?next=//evil.example",
    "#//evil.example",
    "/.//evil.example",  # dot segments: normalised, "//evil.example"
    "/./",
    "/.",
    "/..",
    "/x/../..//evil",
    "/x/..//evil.example",
    "/a/b/../../..//evil.example",
    "/%2e//evil.example",  # the same, percent-encoded, once or twice
    "/%2E%2E//evil.example",
    "/x/%2e%2e/%2E%2e//evil",
    "/x/.%2e//evil.example",
    "/%252e%252e//evil.example",
    "/x/..;/..;//evil.example",  # path parameters, as some servers read them
    "/tickets/..?x=1",
    "/" + "a" * 5000,
    "/" + "%25" * 1000 + "2F",
    "//" + "a" * 100_000,
    "",
]
FINE = [
    ("/", "/"),
    ("/entries/12", "/entries/12"),
    ("/projects/3/protocol?q=from%3Aanna&page=2", "/projects/3/protocol?q=from%3Aanna&page=2"),
    ("/tickets#entry-4", "/tickets#entry-4"),
    ("/unassigned?q=caf%C3%A9", "/unassigned?q=caf%C3%A9"),
    ("/unassigned?q=café", "/unassigned?q=caf%C3%A9"),
    ("/projekte/müller", "/projekte/m%C3%BCller"),
    ("/http://evil.example", "/http://evil.example"),  # a path on this site
    ("/files/report.v2..pdf", "/files/report.v2..pdf"),  # dots inside a name are fine
    ("/.well-known/x", "/.well-known/x"),
    ("/tickets?next=/../x", "/tickets?next=/../x"),  # the query is not a path
]


def browser_target(location: str, base: str = ORIGIN + "/login") -> tuple[str, str]:
    """Where a browser would go: scheme and host after it drops tabs and newlines and reads
    backslashes as slashes (the WHATWG URL parser), resolved against the page."""
    cleaned = location.strip("\x00 ").translate({9: None, 10: None, 13: None}).replace("\\", "/")
    parts = urlsplit(urljoin(base, cleaned))
    return parts.scheme, parts.netloc


@pytest.mark.parametrize("target", TRICKS)
def test_a_tricky_target_is_refused(target):
    assert local_path(target) is None


@pytest.mark.parametrize(("target", "sent"), FINE)
def test_a_path_of_this_site_is_followed(target, sent):
    assert local_path(target) == sent
    assert browser_target(sent) == ("http", "localhost")


def test_every_next_after_login_stays_on_this_site_and_none_fails(web):
    client = web.app.test_client()
    for target in [*TRICKS, *(path for path, _sent in FINE)]:
        token = csrf_token(client)
        response = client.post(
            "/login",
            query_string={"next": target},
            data={"email": "member@agency.test", "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302, (target, response.status_code)
        location = response.headers["Location"]
        assert location.isascii() and location.isprintable(), (target, location)
        assert browser_target(location) == ("http", "localhost"), (target, location)
        if target in TRICKS:
            assert location == "/", (target, location)


def test_the_issues_sample_is_refused_over_a_raw_query_string(web):
    client = web.app.test_client()
    for raw in ("next=%2F%09%2Fevil.example%2Fx", "next=%0A", "next=%2F%0A%2Fevil.example"):
        token = csrf_token(client)
        response = client.post(
            f"/login?{raw}",
            data={"email": "member@agency.test", "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/"


def test_form_redirects_and_the_referer_stay_on_this_site(web):
    client = web.client("member")
    project = create_project(web.account.id, "Bakery")
    for target in ("/%09/evil.example", "//evil.example", "https://evil.example"):
        response = post(client, f"/projects/{project.id}/follow", {"follow": "1", "next": target})
        assert response.status_code == 302
        assert response.headers["Location"] == f"/projects/{project.id}/protocol"
    response = post(client, f"/projects/{project.id}/follow", {"follow": "0", "next": "/tickets"})
    assert response.headers["Location"] == "/tickets"

    entry = Entry.create(account=web.account.id, project=project.id, subject="Hello")
    token = csrf_token(client, "/")
    for referer in (
        f"{ORIGIN}//evil.example/x",
        f"{ORIGIN}/%2F%2Fevil.example",
        "https://evil.example/tickets",
    ):
        response = client.post(
            f"/entries/{entry.id}/done",
            data={"csrf_token": token, "done": "1"},
            headers={"Referer": referer},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == f"/entries/{entry.id}", referer
    response = client.post(
        f"/entries/{entry.id}/done",
        data={"csrf_token": token, "done": "0"},
        headers={"Referer": f"{ORIGIN}/tickets?page=2"},
    )
    assert response.headers["Location"] == f"/tickets?page=2#entry-{entry.id}"
