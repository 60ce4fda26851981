"""Every SMTP session postroom opens ends by its deadline, whatever the server does.

The servers here are real TCP servers on 127.0.0.1 that misbehave as a hostile or broken
mail server would: a greeting dripped a line or a byte at a time, a reply of endless lines,
an answer to the message that never ends. They note when postroom hung up.
"""

from __future__ import annotations

import select
import smtplib
import socket
import threading
import time

import pytest

from postroom.smtp_client import (
    MAX_REPLY_LINES,
    ReplyTooLong,
    SessionTimeout,
    SmtpServer,
    connect,
    failure_words,
)

LONG = 60.0  # a connect timeout no test may wait for: the deadline must end it first


class ScriptedServer:
    """A TCP server that talks to each connection as `script(server, connection)` says."""

    def __init__(self, script) -> None:
        self.script = script
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.events: list[tuple[str, float]] = []  # ("connected" | "hung up" | "message", t)
        threading.Thread(target=self._accept, daemon=True).start()

    def note(self, event: str) -> None:
        with self.lock:
            self.events.append((event, time.monotonic()))

    def count(self, event: str) -> int:
        with self.lock:
            return sum(1 for name, _ in self.events if name == event)

    def when(self, event: str) -> float:
        with self.lock:
            return next(at for name, at in self.events if name == event)

    def wait_for(self, event: str, timeout: float = 30.0) -> bool:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.count(event):
                return True
            time.sleep(0.02)
        return False

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        self.note("connected")
        try:
            with connection:
                self.script(self, connection)
        except OSError:
            pass
        self.note("hung up")

    def close(self) -> None:
        self.listener.close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def drip(connection: socket.socket, chunk: bytes, every: float) -> None:
    """Send `chunk` every `every` seconds until the other side hangs up."""
    while True:
        readable, _, _ = select.select([connection], [], [], every)
        if readable:
            if not connection.recv(65536):
                return  # postroom hung up
            continue
        connection.sendall(chunk)


def dripping(chunk: bytes, every: float):
    return lambda server, connection: drip(connection, chunk, every)


def slow_after_data(server: ScriptedServer, connection: socket.socket) -> None:
    """A mail server that takes the message, then drips its answer to it for ever."""
    connection.sendall(b"220 mx.test ESMTP\r\n")
    reader = connection.makefile("rb")
    while line := reader.readline():
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            connection.sendall(b"250-mx.test\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            connection.sendall(b"354 go ahead\r\n")
            while (line := reader.readline()) not in (b".\r\n", b""):
                pass
            server.note("message")
            drip(connection, b"250-still thinking\r\n", 0.2)
            return
        elif verb == b"QUIT":
            connection.sendall(b"221 bye\r\n")
            return
        else:
            connection.sendall(b"250 OK\r\n")


def open_session(port: int, *, timeout: float = LONG, session_seconds: float = LONG):
    return connect(
        SmtpServer("127.0.0.1", port, "none"),
        helo="postroom.test",
        timeout=timeout,
        session_seconds=session_seconds,
    )


@pytest.mark.parametrize(
    "chunk",
    [b"220-still greeting\r\n", b"2"],  # a line at a time, a byte at a time
)
def test_a_greeting_that_never_ends_is_cut_off_at_the_session_deadline(chunk):
    with ScriptedServer(dripping(chunk, 0.1)) as server:
        with pytest.raises(SessionTimeout) as raised:
            open_session(server.port, session_seconds=1.0)
        assert server.wait_for("hung up")  # postroom hung up, the server did not
        assert raised.value.seconds == 1.0
        assert failure_words(raised.value) == (
            "the outgoing mail server was too slow; postroom ended the connection (time limit: 1 s)"
        )


def test_the_setup_as_a_whole_takes_at_most_three_connect_timeouts():
    """Each read is quick (every 0.05 s), yet greeting, EHLO and login together are bounded."""
    with ScriptedServer(dripping(b"220-still greeting\r\n", 0.05)) as server:
        with pytest.raises(SessionTimeout) as raised:
            open_session(server.port, timeout=1.0)  # the session itself may last 60 s
        assert raised.value.seconds == 3.0
        assert server.wait_for("hung up")


def test_a_reply_of_endless_lines_is_cut_off_before_the_deadline():
    with ScriptedServer(dripping(b"220-more\r\n" * 50, 0.001)) as server:
        with pytest.raises(ReplyTooLong) as raised:  # not SessionTimeout: long before it
            open_session(server.port)
        assert str(MAX_REPLY_LINES) in str(raised.value)
        assert server.wait_for("hung up")
        assert "longer than postroom accepts" in failure_words(raised.value)


def test_a_server_that_drips_its_answer_to_the_message_is_ended_at_the_deadline():
    with ScriptedServer(slow_after_data) as server:
        client = open_session(server.port, session_seconds=2.0)
        assert 0 < client.seconds_left() <= 2.0
        with pytest.raises(SessionTimeout):
            client.sendmail("a@agency.test", ["b@bakery.test"], b"Subject: x\r\n\r\nHello\r\n")
        assert server.wait_for("hung up")
        assert server.count("message") == 1
        assert server.when("hung up") > server.when("message")
        assert client.seconds_left() == 0
        with pytest.raises(smtplib.SMTPServerDisconnected):  # the session is over
            client.noop()


def test_a_well_behaved_server_is_not_hurried():
    """Replies of many lines up to the cap, and a session used until its end, are fine."""
    lines = b"".join(b"250-line %d\r\n" % n for n in range(MAX_REPLY_LINES - 1))

    def generous(server, connection):
        connection.sendall(b"220 mx.test ESMTP\r\n")
        reader = connection.makefile("rb")
        while line := reader.readline():
            if line[:4].upper() == b"EHLO":
                connection.sendall(lines + b"250 OK\r\n")
            elif line[:4].upper() == b"QUIT":
                connection.sendall(b"221 bye\r\n")
                return
            else:
                connection.sendall(b"250 OK\r\n")

    with ScriptedServer(generous) as server:
        client = open_session(server.port, session_seconds=30.0)
        assert len(client.ehlo_resp.split(b"\n")) == MAX_REPLY_LINES
        assert client.noop()[0] == 250
        client.quit()
        assert server.wait_for("hung up")
