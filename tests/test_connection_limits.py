"""Few strangers cannot stop or slow mail: separate SMTP and LMTP limits, a per-address limit,
and deadlines for DATA and whole sessions, on a real daemon over real sockets."""

from __future__ import annotations

import select
import signal
import smtplib
import socket
import time

import pytest

from smtpd_ingest.smtp_session import client_address
from tests.daemon import Daemon
from tests.mail import message
from tests.test_smtp_session import intakes, read_reply


def greeting(port: int, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """Connect from `source`; return the socket and the first line the server sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return sock, sock.makefile("rb").readline()


def lmtp_delivery(daemon: Daemon, subject: str) -> list[bytes]:
    """A whole LMTP transaction (LHLO, MAIL, RCPT, DATA); return the reply after the message."""
    with socket.create_connection(("127.0.0.1", daemon.lmtp_port), timeout=30) as sock:
        reader = sock.makefile("rb")
        assert read_reply(reader)[0].startswith(b"220")
        for command in (
            b"LHLO mta.test",
            b"MAIL FROM:<a@customer.test>",
            b"RCPT TO:<" + daemon.inbox.encode() + b">",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            reply = read_reply(reader)
            assert reply[-1][:1] in (b"2", b"3"), (command, reply)
        sock.sendall(message(subject) + b".\r\n")
        return read_reply(reader)


def start_data(port: int, inbox: str, lmtp: bool = False) -> tuple[socket.socket, object]:
    """Open a session and go as far as the 354 of DATA."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    reader = sock.makefile("rb")
    read_reply(reader)
    for command in (
        b"LHLO c.test" if lmtp else b"EHLO c.test",
        b"MAIL FROM:<a@c.test>",
        b"RCPT TO:<" + inbox.encode() + b">",
        b"DATA",
    ):
        sock.sendall(command + b"\r\n")
        reply = read_reply(reader)
    assert reply[-1].startswith(b"354"), reply
    return sock, reader


def test_300_smtp_connections_from_one_address_leave_lmtp_and_other_addresses_served(
    db_url, tmp_path
):
    with Daemon(tmp_path, db_url) as daemon:  # the defaults: 20 per address, 200 SMTP
        held, refused = [], []
        try:
            for _ in range(300):
                sock, line = greeting(daemon.smtp_port)
                (held if line.startswith(b"220 ") else refused).append((sock, line))
            assert len(held) == 20
            assert {line for _, line in refused} == {
                b"421 4.7.0 Too many connections from your address, try again later\r\n"
            }
            for sock, _ in refused:  # the server closed each refused connection
                assert sock.recv(100) == b""
            # the local MTA delivers over LMTP meanwhile
            assert lmtp_delivery(daemon, "Over LMTP")[-1].startswith(b"250 2.1.5")
            # another client address is served in full
            with smtplib.SMTP(
                "127.0.0.1", daemon.smtp_port, timeout=30, source_address=("127.0.0.2", 0)
            ) as client:
                client.ehlo("other.test")
                client.mail("b@customer.test")
                assert client.rcpt(daemon.inbox)[0] == 250
                assert client.data(message("From another address"))[0] == 250
        finally:
            for sock, _ in held + refused:
                sock.close()
        # once the first address's sessions are gone, it is served again
        deadline = time.monotonic() + 10
        while True:
            sock, line = greeting(daemon.smtp_port)
            sock.close()
            if line.startswith(b"220 ") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert line.startswith(b"220 ")
        assert sorted(i.protocol for i in intakes(daemon)) == ["lmtp", "smtp"]


def test_smtp_and_lmtp_are_limited_apart(db_url, tmp_path):
    with Daemon(
        tmp_path,
        db_url,
        max_smtp_connections=3,
        max_lmtp_connections=2,
        max_connections_per_address=3,
    ) as daemon:
        held = []
        try:
            sources = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
            for source in sources:  # the SMTP limit is reached by three addresses
                sock, line = greeting(daemon.smtp_port, source)
                held.append(sock)
                assert line.startswith(b"220 ")
            sock, line = greeting(daemon.smtp_port, "127.0.0.4")
            sock.close()
            assert line == b"421 4.3.2 Too many connections, try again later\r\n"
            # LMTP has a limit of its own, not used up by SMTP
            assert lmtp_delivery(daemon, "SMTP is full")[-1].startswith(b"250 2.1.5")
            for _ in range(2):
                sock, line = greeting(daemon.lmtp_port)
                held.append(sock)
                assert line.startswith(b"220 ")
            sock, line = greeting(daemon.lmtp_port)
            sock.close()
            assert line == b"421 4.3.2 Too many connections, try again later\r\n"
        finally:
            for sock in held:
                sock.close()
        assert len(intakes(daemon)) == 1


def trickle_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Send one byte a second; return what the server said and when it closed (seconds)."""
    started = time.monotonic()
    said = b""
    while time.monotonic() - started < limit:
        readable, _, _ = select.select([sock], [], [], 1.0)
        if readable:
            try:
                chunk = sock.recv(1000)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return said, time.monotonic() - started
            said += chunk
            continue
        try:
            sock.sendall(b"x")
        except OSError:
            break
    return said, time.monotonic() - started


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_a_one_byte_a_second_data_is_cut_off_at_the_deadline(db_url, tmp_path, protocol):
    with Daemon(tmp_path, db_url, data_timeout_seconds=3) as daemon:
        port = daemon.lmtp_port if protocol == "lmtp" else daemon.smtp_port
        sock, _ = start_data(port, daemon.inbox, lmtp=protocol == "lmtp")
        with sock:
            # first more than a spool threshold at once, then a trickle that moves the idle
            # timeout on with every byte
            sock.sendall(b"Subject: slow\r\n\r\n" + b"y" * 100 + b"\r\n" * 1_500_000)
            said, elapsed = trickle_until_closed(sock, limit=30)
        assert said == b"421 4.4.2 Timeout: DATA took too long, closing connection\r\n"
        assert 2.5 < elapsed < 20
        assert intakes(daemon) == []
        spool = daemon.folder / "data" / "spool"
        deadline = time.monotonic() + 10
        while list(spool.glob("data-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(spool.glob("data-*")) == []
        # a prompt sender is not affected
        assert daemon.send(message("Prompt"))[0] == 250
        assert len(intakes(daemon)) == 1


def test_a_session_ends_between_transactions_at_the_session_deadline(db_url, tmp_path):
    with (
        Daemon(tmp_path, db_url, session_timeout_seconds=2) as daemon,
        socket.create_connection(("127.0.0.1", daemon.smtp_port), timeout=30) as sock,
    ):
        reader = sock.makefile("rb")
        read_reply(reader)
        started = time.monotonic()
        replies = []
        while time.monotonic() - started < 20:
            if not select.select([sock], [], [], 0.3)[0]:  # nothing said meanwhile: NOOP
                sock.sendall(b"NOOP\r\n")
            line = reader.readline()
            replies.append(line)
            if not line.startswith(b"250 "):
                break
        assert replies[-1] == b"421 4.4.2 Session lasted too long, closing connection\r\n"
        assert reader.readline() == b""
        assert 1.5 < time.monotonic() - started < 20


def test_sighup_takes_over_the_new_limits(db_url, tmp_path):
    with Daemon(tmp_path, db_url) as daemon:
        held = [greeting(daemon.smtp_port)[0] for _ in range(3)]
        try:
            daemon.ingest["max_connections_per_address"] = 3
            daemon.write_config()
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for_log("max_connections_per_address 3")
            sock, line = greeting(daemon.smtp_port)
            sock.close()
            assert line.startswith(b"421 4.7.0")
            sock, line = greeting(daemon.smtp_port, "127.0.0.2")
            sock.close()
            assert line.startswith(b"220 ")
        finally:
            for sock in held:
                sock.close()


@pytest.mark.parametrize(
    ("peer", "counted_as"),
    [
        (("192.0.2.7", 4000), "192.0.2.7"),
        (("::ffff:192.0.2.7", 4000, 0, 0), "192.0.2.7"),  # IPv4 in IPv6 form: the same client
        (("2001:db8::1", 25, 0, 0), "2001:db8::/64"),
        (("2001:db8::ffff:9", 25, 0, 0), "2001:db8::/64"),  # one /64: one client
        (("2001:db8:0:1::1", 25, 0, 0), "2001:db8:0:1::/64"),
        ("", None),  # unix socket
        (None, None),
    ],
)
def test_the_per_address_limit_counts_ipv4_addresses_and_ipv6_slash_64s(peer, counted_as):
    assert client_address(peer) == counted_as


def test_the_old_max_connections_key_names_its_replacements(tmp_path):
    from postroom.config import ConfigError, load_settings

    path = tmp_path / "postroom.toml"
    path.write_text("[ingest]\nmax_connections = 200\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "ingest.max_connections"
    assert "max_smtp_connections and max_lmtp_connections" in caught.value.reason
    for key, value in (("max_connections_per_address", 0), ("data_timeout_seconds", 0.5)):
        path.write_text(f"[ingest]\n{key} = {value}\n")
        with pytest.raises(ConfigError, match=f"ingest.{key}: must be at least 1"):
            load_settings(path)
