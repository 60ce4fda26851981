"""LMTP answers once per accepted recipient after DATA (RFC 2033), tested over a raw socket."""

from __future__ import annotations

import socket

from tests.daemon import DOMAIN
from tests.mail import message
from tests.test_smtp_session import read_reply


def test_three_recipients_one_invalid_get_550_then_two_250s_and_both_accounts_file_it(daemon):
    other = daemon.create_account("Second agency")
    first_inbox, second_inbox = daemon.inbox, other["inbox_address"]
    raw = message("For two agencies")
    with socket.create_connection(("127.0.0.1", daemon.lmtp_port)) as sock:
        reader = sock.makefile("rb")
        assert read_reply(reader)[0].startswith(b"220")
        sock.sendall(b"LHLO mta.test\r\n")
        assert any(b"ENHANCEDSTATUSCODES" in line for line in read_reply(reader))
        sock.sendall(b"MAIL FROM:<customer@customer.test>\r\n")
        assert read_reply(reader)[0].startswith(b"250 2.1.0")
        replies = []
        for rcpt in (first_inbox, f"inbox+1.wrongtoken@{DOMAIN}", second_inbox):
            sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            replies.append(read_reply(reader)[0])
        assert replies[0].startswith(b"250 2.1.5")
        assert replies[1].startswith(b"550 5.1.1")
        assert replies[2].startswith(b"250 2.1.5")
        sock.sendall(b"DATA\r\n")
        assert read_reply(reader)[0].startswith(b"354")
        sock.sendall(raw + b".\r\n")
        after_data = [read_reply(reader)[0], read_reply(reader)[0]]
        assert after_data[0].startswith(b"250 2.1.5 <" + first_inbox.encode() + b">")
        assert after_data[1].startswith(b"250 2.1.5 <" + second_inbox.encode() + b">")
        sock.sendall(b"QUIT\r\n")
        assert read_reply(reader)[0].startswith(b"221")
    first = daemon.wait_for_entries(1, "--account", str(daemon.account["id"]))
    second = daemon.wait_for_entries(1, "--account", str(other["id"]))
    assert [e["subject"] for e in first] == ["For two agencies"]
    assert [e["subject"] for e in second] == ["For two agencies"]
    assert first[0]["id"] != second[0]["id"]
