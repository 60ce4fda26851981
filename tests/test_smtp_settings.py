"""An account's own mail server: mail ports and public addresses only, unless the operator
allows more; and whatever a server answers, users read postroom's words, never its text.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from admin_ui import create_app
from domain.tokens import create_api_token
from postroom.config import Settings
from postroom.jobs import notify
from postroom.outbound import queue_message
from postroom.outbound_checks import OutboundError, check_smtp_host, public_address
from postroom.outbound_send import send_due
from storage.models import OutboundMessage
from storage.outbound import account_smtp, save_account_smtp
from tests.daemon import reserve_port
from tests.test_outbound import Sink, smtp_sink
from tests.web import login, post

SECRET = "SECRET-7f3a"  # what a foreign server says; it must never reach a user
FORM = {
    "security": "none",
    "username": "",
    "password": "",
    "from_address": "hello@agency.test",
    "from_name": "Agency",
}


def allowing(settings: Settings, *ports: int) -> Settings:
    outbound = dataclasses.replace(
        settings.outbound, allow_private_hosts=True, allowed_ports=(587, *ports)
    )
    return dataclasses.replace(settings, outbound=outbound)


def save(client, host: str, port: int):
    return post(
        client, "/settings/smtp", {**FORM, "host": host, "port": str(port)}, token_from="/settings"
    )


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0x7f.1",
        "2130706433",
        "10.0.0.5",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "[fe80::1]",
        "224.0.0.1",
    ],
)
def test_a_server_on_this_machine_or_a_private_network_is_refused(web, host):
    page = save(web.client("owner"), host, 587)
    assert page.status_code == 400
    assert "is a local or private address" in page.get_data(as_text=True)
    assert account_smtp(web.account.id) is None


NOT_PUBLIC = [
    # IPv6 forms an unpatched 3.11 calls global (CVE-2024-4032) or that embed a local IPv4
    "64:ff9b:1::7f00:1",
    "::ffff:0:127.0.0.1",
    "::127.0.0.1",
    "fec0::1",
    "5f00::1",
    "3fff::1",
    "::ffff:8.8.8.8",
    "::ffff:127.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "2001::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:2::1",
    "2001:10::1",
    "2001:20::1",
    "2001:1ff::1",
    "2001:db8::1",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2002:c0a8:101::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "4000::1",
    "e000::1",
    # IPv4: every block that is not the open internet
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.0.9",
    "192.0.0.170",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "",
    "localhost",
    "0x7f.1",
    "127.1",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "192.0.1.1",
    "198.20.0.1",
    "2a00:1450:4001:82b::1b",
    "2606:4700::1111",
    "2001:200::1",
    "2002:808:808::1",
    "64:ff9b::808:808",
]


@pytest.fixture(params=["this interpreter", "tables that call everything global"])
def interpreter_tables(request, monkeypatch):
    """The check must not lean on ipaddress's is_global and friends (outdated before
    3.11.10 / 3.12.4): run it also as if they called every address public."""
    if request.param != "this interpreter":
        for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
            monkeypatch.setattr(cls, "is_global", property(lambda self: True))
            for name in (
                "is_private",
                "is_loopback",
                "is_link_local",
                "is_multicast",
                "is_reserved",
                "is_unspecified",
                "is_site_local",
            ):
                if hasattr(cls, name):
                    monkeypatch.setattr(cls, name, property(lambda self: False))
    return request.param


def test_only_addresses_on_the_open_internet_count_as_public(interpreter_tables):
    assert [a for a in NOT_PUBLIC if public_address(a)] == []
    assert [a for a in PUBLIC if not public_address(a)] == []


@pytest.mark.parametrize(
    "address", ["::ffff:0:127.0.0.1", "64:ff9b:1::7f00:1", "192.0.0.8", "::127.0.0.1", "fec0::1"]
)
def test_a_server_named_by_an_address_an_old_interpreter_calls_global_is_refused(address):
    rules = Settings().outbound  # the defaults: public addresses only
    with pytest.raises(OutboundError, match="is a local or private address"):
        check_smtp_host(address, 587, rules)


@pytest.mark.parametrize("port", [22, 80, 6379, 8080, 11211, 2524])
def test_a_port_that_is_not_a_mail_port_is_refused(web, port):
    page = save(web.client("owner"), "192.0.2.10", port)  # a public-looking address
    assert page.status_code == 400
    assert f"Port {port} is not allowed" in page.get_data(as_text=True)
    assert account_smtp(web.account.id) is None


def test_the_operator_can_allow_a_local_server_and_a_port_in_the_config(web):
    port = reserve_port()
    app = create_app(allowing(web.app.config["POSTROOM_SETTINGS"], port), testing=True)
    client = app.test_client()
    login(client, "owner@agency.test")
    assert save(client, "127.0.0.1", port).status_code == 302
    assert (account_smtp(web.account.id).host, account_smtp(web.account.id).port) == (
        "127.0.0.1",
        port,
    )


def own_server(web, port: int) -> None:
    """Store the account's server in the storage layer, as a save before the rules would."""
    save_account_smtp(
        web.account.id,
        host="127.0.0.1",
        port=port,
        security="none",
        username="",
        password=None,
        from_address="hello@agency.test",
        from_name="Agency",
    )


def queue(web, project, settings):
    return queue_message(
        project, web.users["member"], "anna@bakery.example", "Draft", "Text", settings=settings
    )


def test_the_rules_are_checked_again_before_each_connection(web, bakery):
    """A name that resolved to a public address at saving may point here now (DNS rebinding)."""
    port = reserve_port()
    own_server(web, port)
    settings = web.app.config["POSTROOM_SETTINGS"]
    only_port = dataclasses.replace(settings.outbound, allowed_ports=(587, port))
    settings = dataclasses.replace(settings, outbound=only_port)  # the port is not the fault
    queue(web, bakery, settings)
    with smtp_sink(port) as sink:
        assert send_due(settings) == (0, 1)
    assert sink.received == []
    assert "is a local or private address" in OutboundMessage.get().last_error


def greeting_server(line: bytes):
    """A TCP server that answers each connection with one line and hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(line)

    threading.Thread(target=serve, daemon=True).start()
    return listener


class Refusing(Sink):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return f"550 5.7.1 {SECRET} <script>alert(1)</script> relay denied"


def what_users_see(web, entry_id: int, project_id: int) -> str:
    """Every page and API answer a member can reach about the failed mail, as one text."""
    member = web.client("member")
    token = create_api_token(web.users["member"])
    api = web.app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    pages = [
        member.get(f"/entries/{entry_id}"),
        member.get(f"/projects/{project_id}/protocol"),
        member.get("/notifications"),
        api.get(f"/api/v1/entries/{entry_id}", headers=headers),
        api.get(f"/api/v1/entries?project_id={project_id}", headers=headers),
        api.get(f"/api/v1/projects/{project_id}", headers=headers),
    ]
    assert all(page.status_code == 200 for page in pages), [p.status_code for p in pages]
    return "\n".join(page.get_data(as_text=True) for page in pages)


def test_no_word_a_foreign_server_says_reaches_the_ui_or_the_api(web, bakery):
    settings = web.app.config["POSTROOM_SETTINGS"]
    refusing_port, banner_port = reserve_port(), reserve_port()
    greeting = greeting_server(f"554 5.3.2 {SECRET} internal-db-01 says hello\r\n".encode())
    greeting_port = greeting.getsockname()[1]
    cases = [  # (the server, how it fails, our words)
        (refusing_port, "none", "rejected the recipient with code 550"),
        (greeting_port, "none", "refused the connection with code 554"),
        (banner_port, "starttls", "does not offer what is needed (STARTTLS or login)"),
    ]
    refusing = Controller(Refusing(), hostname="127.0.0.1", port=refusing_port, ident=SECRET)
    banner = Controller(Sink(), hostname="127.0.0.1", port=banner_port, ident=SECRET)
    refusing.start()
    banner.start()
    try:
        for port, security, words in cases:
            allowed = dataclasses.replace(
                allowing(settings, port),
                outbound=dataclasses.replace(allowing(settings, port).outbound, max_attempts=1),
            )
            save_account_smtp(
                web.account.id,
                host="127.0.0.1",
                port=port,
                security=security,
                username="",
                password=None,
                from_address="hello@agency.test",
                from_name="Agency",
            )
            entry = queue(web, bakery, allowed)
            assert send_due(allowed) == (0, 1)
            row = OutboundMessage.get(OutboundMessage.entry == entry.id)
            assert row.state == "failed" and words in row.last_error, row.last_error
            notify.process_events(allowed)  # the author is told, in the bell
            seen = what_users_see(web, entry.id, bakery.id)
            assert words in seen
            assert (
                SECRET not in seen and "internal-db-01" not in seen and "relay denied" not in seen
            )
    finally:
        refusing.stop()
        banner.stop()
        greeting.close()
