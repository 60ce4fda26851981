"""The envelope a stranger sends: control bytes are refused with 5xx before anything is stored,
and RCPT answers tell nothing about which account ids exist."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from domain.projects import create_project
from postroom.config import IngestSettings
from smtpd_ingest import handler as handler_module
from smtpd_ingest.handler import IngestHandler
from storage.accounts import create_account
from tests.daemon import DOMAIN, Daemon
from tests.mail import message
from tests.test_smtp_session import intakes, read_reply

# C0 controls, DEL, and a byte that is not UTF-8
BAD_BYTES = [b"\x00", b"\x01", b"\t", b"\x1b", b"\x1f", b"\x7f", b"\xff"]


def session(port: int) -> tuple[socket.socket, object]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    reader = sock.makefile("rb")
    assert read_reply(reader)[0].startswith(b"220")
    return sock, reader


def say(sock, reader, command: bytes) -> bytes:
    sock.sendall(command + b"\r\n")
    return read_reply(reader)[-1]


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_control_bytes_in_the_envelope_get_501_and_never_reach_the_database(
    db_url, tmp_path, protocol
):
    hello = b"LHLO" if protocol == "lmtp" else b"EHLO"
    with Daemon(tmp_path, db_url) as daemon:
        port = daemon.lmtp_port if protocol == "lmtp" else daemon.smtp_port
        inbox = daemon.inbox.encode()
        local, _, domain = inbox.partition(b"@")
        sock, reader = session(port)
        with sock:
            for bad in BAD_BYTES:
                assert say(sock, reader, hello + b" c" + bad + b".test") == (
                    b"501 5.5.4 Bad host name syntax"
                ), bad
                assert say(sock, reader, hello + b" c.test").startswith(b"250 ")
                for path in (
                    b"<a" + bad + b"b@customer.test>",
                    b"<ab@customer.test" + bad + b">",
                    b"<ab@customer.test>" + bad + b"SIZE=10",  # a trailing one aiosmtpd strips
                    b'<"a' + bad + b'b"@customer.test>',
                ):
                    reply = say(sock, reader, b"MAIL FROM:" + path)
                    assert reply == b"501 5.1.7 Bad sender address syntax", (path, reply)
                assert say(sock, reader, b"MAIL FROM:<a@customer.test>").startswith(b"250 ")
                for path in (
                    b"<" + local + bad + b"@" + domain + b">",
                    b"<" + inbox + bad + b">",
                    b"<" + bad + inbox + b">",
                ):
                    reply = say(sock, reader, b"RCPT TO:" + path)
                    assert reply == b"501 5.1.3 Bad recipient address syntax", (path, reply)
                assert say(sock, reader, b"RCPT TO:<" + inbox + b">").startswith(b"250 ")
                assert say(sock, reader, b"DATA").startswith(b"354 ")
                assert say(sock, reader, message() + b".").startswith(b"250 2.")
        stored = intakes(daemon)
    assert len(stored) == len(BAD_BYTES)
    assert {(i.mail_from, i.helo, i.protocol) for i in stored} == {
        ("a@customer.test", "c.test", protocol)
    }


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_an_unknown_account_id_and_a_wrong_token_get_the_same_reply(daemon, protocol):
    account_id, token = daemon.inbox.partition("+")[2].partition("@")[0].split(".")
    project = daemon.create_project(int(account_id), "Bakery")
    project_id, project_token = project["reply_address"].partition("@")[0].split(".")[2].split("-")
    wrong = "x" * len(token)
    recipients = {
        "wrong token": f"inbox+{account_id}.{wrong}@{DOMAIN}",
        "unknown id": f"inbox+{int(account_id) + 1000}.{token}@{DOMAIN}",
        "unknown id, wrong token": f"inbox+987654321.{wrong}@{DOMAIN}",
        "wrong project token": f"inbox+{account_id}.{token}.{project_id}-{'y' * 13}@{DOMAIN}",
        "unknown project": f"inbox+{account_id}.{token}.{int(project_id) + 99}-{project_token}"
        f"@{DOMAIN}",
    }
    port = daemon.lmtp_port if protocol == "lmtp" else daemon.smtp_port
    sock, reader = session(port)
    with sock:
        say(sock, reader, b"LHLO c.test" if protocol == "lmtp" else b"EHLO c.test")
        say(sock, reader, b"MAIL FROM:<a@customer.test>")
        replies = {
            what: say(sock, reader, f"RCPT TO:<{rcpt}>".encode())
            for what, rcpt in recipients.items()
        }
        right = f"inbox+{account_id}.{token}.{project_id}-{project_token}@{DOMAIN}"
        assert say(sock, reader, f"RCPT TO:<{right}>".encode()).startswith(b"250 ")
    assert set(replies.values()) == {b"550 5.1.1 No such inbox here"}, replies


def test_rcpt_does_the_same_work_for_an_unknown_id_as_for_a_wrong_token(storage_db, monkeypatch):
    """The same lookups (one, then cached; a refusal from the cache is read again, in case
    the token was replaced since), and compare_digest with the given token second (its time
    follows that argument's length), for a known and an unknown id alike."""
    account = create_account("Agency")
    project = create_project(account.id, "Bakery")
    calls: list[tuple] = []
    real_lookup, real_project = handler_module.inbox_tokens, handler_module.reply_tokens
    real_compare = handler_module.hmac.compare_digest

    def lookup(account_id):
        calls.append(("lookup", account_id > 0))
        return real_lookup(account_id)

    def project_lookup(account_id, project_id):
        calls.append(("project lookup", account_id > 0))
        return real_project(account_id, project_id)

    def compare(expected, given):
        calls.append(("compare", given))
        return real_compare(expected, given)

    monkeypatch.setattr(handler_module, "inbox_tokens", lookup)
    monkeypatch.setattr(handler_module, "reply_tokens", project_lookup)
    monkeypatch.setattr(handler_module.hmac, "compare_digest", compare)
    settings = dataclasses.replace(IngestSettings(), domains=(DOMAIN,))

    def work(local_part: str) -> list[tuple]:
        handler = IngestHandler(settings, writer=None, on_recorded=lambda ids: None)
        calls.clear()
        results = [handler.resolve_recipient(f"{local_part}@{DOMAIN}") for _ in range(2)]
        assert results == [None, None]
        return list(calls)

    given = "q" * 16
    wrong_token = work(f"inbox+{account.id}.{given}")
    unknown_id = work(f"inbox+{account.id + 500}.{given}")
    # each time two comparisons (current and old token), with the given token second; the
    # second time the cache's refusal is read again
    compare = ("compare", given)
    assert (
        wrong_token
        == unknown_id
        == [
            ("lookup", True),
            compare,
            compare,
            compare,
            compare,
            ("lookup", True),
            compare,
            compare,
        ]
    )
    detail = f"inbox+{account.id}.{account.inbox_token}"
    wrong_project = work(f"{detail}.{project.id}-{'q' * 13}")
    unknown_project = work(f"{detail}.{project.id + 500}-{'q' * 13}")
    assert (
        [c[0] for c in wrong_project]
        == [c[0] for c in unknown_project]
        == [
            *("lookup", "compare", "compare"),
            *("project lookup", "compare", "compare"),
            *("compare", "compare"),  # the account's token, from the cache
            *("compare", "compare", "project lookup", "compare", "compare"),
        ]
    )
    assert wrong_project[-1] == unknown_project[-1] == ("compare", "q" * 13)
