"""A refusal is tied to the field it is about, and only to that one (issue 19).

The page marks the refused field aria-invalid and names the message in its aria-describedby
(tests/test_a11y_structure.py); these are the cases where the field is found another way
than by the message alone: the agency's name on the setup page shares a member name's rule,
and the mail server's network policy is about its address (host and port), which the page
finds without asking the network once per field.
"""

from __future__ import annotations

import socket

import pytest

from tests.test_a11y_structure import Page, assert_tied, fresh_client
from tests.web import csrf_token


def invalid_fields(html: str) -> list[str]:
    """The names of the fields the page marks aria-invalid."""
    return [e.attrs.get("name", "") for e in Page(html).elements if "aria-invalid" in e.attrs]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_agency_name_with_a_tab_is_marked_at_the_agency_not_at_your_name(storage_db, tmp_path):
    from domain.tokens import setup_token

    client = fresh_client(tmp_path)
    path = f"/setup?token={setup_token()}"
    sent = {
        "agency": "Pixel\tStudio",
        "name": "Owner",
        "email": "owner@pixel.test",
        "password": "plum cake at nine",
        "time_zone": "Europe/Berlin",
        "csrf_token": csrf_token(client, path),
    }
    page = client.post(path, data=sent)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert_tied(html, "agency", "must be one line")
    assert invalid_fields(html) == ["agency"]

    # the owner's own name on two lines is still marked at the name
    sent |= {"agency": "Pixel", "name": "Own\ter"}
    html = client.post(path, data=sent).get_data(as_text=True)
    assert_tied(html, "name", "must be one line", "name-hint")
    assert invalid_fields(html) == ["name"]


SERVER = {
    "host": "smtp.example.org",
    "port": "587",
    "security": "starttls",
    "username": "",
    "password": "",
    "from_address": "office@example.org",
    "from_name": "",
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_server_the_network_policy_refuses_is_marked_at_its_host_and_port(web, monkeypatch):
    lookups = []
    real_lookup = socket.getaddrinfo

    def counted_lookup(host, *args, **kwargs):
        lookups.append(host)
        return real_lookup(host, *args, **kwargs)

    client = web.client("owner")
    token = csrf_token(client, "/settings")
    monkeypatch.setattr(socket, "getaddrinfo", counted_lookup)
    sent = SERVER | {"host": "127.0.0.1", "from_name": "x" * 201, "csrf_token": token}
    page = client.post("/settings/smtp", data=sent)
    assert page.status_code == 400
    # the server's address is looked up once, by the check before saving; finding which
    # field a problem is about asks no network
    assert lookups == ["127.0.0.1"]
    html = page.get_data(as_text=True)
    marked = ("host", "port", "from_name")
    assert_tied(html, "host", "local or private address", also=marked)
    assert_tied(html, "port", "local or private address", also=marked)
    assert_tied(html, "from_name", "The sender name is too long.", also=marked)
    assert sorted(invalid_fields(html)) == ["from_name", "host", "port"]
