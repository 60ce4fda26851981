"""Prove tests/postfix_harness.py against a real aiosmtpd LMTP sink."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller, UnixSocketController
from aiosmtpd.lmtp import LMTP

from tests.daemon import reserve_port
from tests.postfix_harness import PostfixInstance, machine_state, require_postfix

REPO_ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "postroom.test"
SENDER = "sender@origin.test"


class LMTPController(Controller):
    """aiosmtpd controller that speaks LMTP instead of SMTP."""

    def factory(self) -> LMTP:
        """Build the LMTP protocol instance for one connection."""
        return LMTP(self.handler, **self.SMTP_kwargs)


class UnixLMTPController(UnixSocketController):
    """aiosmtpd controller that speaks LMTP on a unix socket."""

    def factory(self) -> LMTP:
        """Build the LMTP protocol instance for one connection."""
        return LMTP(self.handler, **self.SMTP_kwargs)


class Sink:
    """LMTP handler that records deliveries; can answer 451 to the first N attempts."""

    def __init__(self, fail_first: int = 0) -> None:
        """Set how many DATA attempts get a temporary failure."""
        self.fail_first = fail_first
        self.attempts = 0
        self.delivered: list[tuple[str, list[str], bytes]] = []
        self.arrived = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        """Answer one line per recipient, as LMTP requires."""
        with self._lock:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                reply = "451 4.3.0 try again later"
            else:
                self.delivered.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                )
                self.arrived.set()
                reply = "250 2.0.0 delivered"
        return "\r\n".join([reply] * len(envelope.rcpt_tos))


def make_message(marker: str) -> bytes:
    """Build a message whose body has the lines most likely to be mangled in transit."""
    return (
        f"From: Sender <{SENDER}>\n"
        f"To: inbox@{DOMAIN}\n"
        f"Subject: harness {marker}\n"
        f"Message-ID: <{marker}@origin.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        f"marker {marker}\n"
        ".\n"
        "..two dots\n"
        "From the start of a line\n"
        "Grüße aus Köln\n"
        "\n"
        "last line\n"
    ).encode()


def normalise(content: bytes) -> bytes:
    """Turn CRLF line ends into LF for comparison with what was submitted."""
    return content.replace(b"\r\n", b"\n")


@pytest.fixture
def port() -> int:
    """A port for the LMTP sink, refusing connections until the sink starts there."""
    require_postfix()
    return reserve_port()


@pytest.fixture
def postfix(port: int) -> Iterator[PostfixInstance]:
    """A private Postfix routing DOMAIN to an LMTP sink on 127.0.0.1:port."""
    with PostfixInstance(DOMAIN, f"inet:127.0.0.1:{port}") as instance:
        yield instance


def start_sink(handler: Sink, port: int) -> LMTPController:
    """Start an LMTP sink on 127.0.0.1:port."""
    controller = LMTPController(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def test_message_arrives_with_body_intact(postfix: PostfixInstance, port: int) -> None:
    sink = Sink()
    controller = start_sink(sink, port)
    try:
        marker = uuid.uuid4().hex
        message = make_message(marker)
        postfix.send(SENDER, [f"inbox@{DOMAIN}"], message)
        assert sink.arrived.wait(15), postfix.diagnostics()
        postfix.wait_for_empty_queue()
    finally:
        controller.stop()
    assert len(sink.delivered) == 1, postfix.diagnostics()
    mail_from, rcpts, content = sink.delivered[0]
    assert mail_from == SENDER
    assert rcpts == [f"inbox@{DOMAIN}"]
    received = normalise(content)
    headers, _, body = message.partition(b"\n\n")
    assert received.endswith(b"\n\n" + body), received
    for line in headers.split(b"\n"):
        assert line in received.split(b"\n"), (line, received)


def test_sink_down_defers_then_delivers_once_after_flush(
    postfix: PostfixInstance, port: int
) -> None:
    marker = uuid.uuid4().hex
    postfix.send(SENDER, [f"inbox@{DOMAIN}"], make_message(marker))
    postfix.wait_until(
        lambda: (
            any(item["queue_name"] == "deferred" for item in postfix.queue())
            and postfix.deferred_reasons()
        )
    )
    reasons = postfix.deferred_reasons()
    assert any("Connection refused" in r for r in reasons), postfix.diagnostics()

    sink = Sink()
    controller = start_sink(sink, port)
    try:
        postfix.flush()
        assert sink.arrived.wait(15), postfix.diagnostics()
        postfix.wait_for_empty_queue()
    finally:
        controller.stop()
    assert len(sink.delivered) == 1, postfix.diagnostics()
    assert marker.encode() in sink.delivered[0][2]


def test_temporary_failure_is_retried_after_flush(postfix: PostfixInstance, port: int) -> None:
    sink = Sink(fail_first=1)
    controller = start_sink(sink, port)
    rcpts = [f"inbox@{DOMAIN}", f"other@{DOMAIN}"]
    try:
        postfix.send(SENDER, rcpts, make_message(uuid.uuid4().hex))
        # the short backoff may already have retried it; flush anyway once it was deferred
        postfix.wait_until(
            lambda: sink.delivered or any("4.3.0" in r for r in postfix.deferred_reasons())
        )
        postfix.flush()
        assert sink.arrived.wait(15), postfix.diagnostics()
        postfix.wait_for_empty_queue()
    finally:
        controller.stop()
    assert sink.attempts == 2, postfix.diagnostics()
    assert len(sink.delivered) == 1, postfix.diagnostics()
    assert sorted(sink.delivered[0][1]) == sorted(rcpts)
    assert "451 4.3.0" in postfix.log_text()


def test_unix_socket_target() -> None:
    require_postfix()
    sockdir = Path(tempfile.mkdtemp(prefix="postroom-lmtp-"))
    os.chmod(sockdir, 0o755)  # noqa: S103 -- lmtp runs as user "postfix"
    sock = sockdir / "lmtp.sock"
    sink = Sink()
    controller = UnixLMTPController(sink, unix_socket=str(sock))
    controller.start()
    try:
        os.chmod(sock, 0o666)  # noqa: S103 -- lmtp must connect
        with PostfixInstance(DOMAIN, f"unix:{sock}") as postfix:
            postfix.send(SENDER, [f"inbox@{DOMAIN}"], make_message("unix"))
            assert sink.arrived.wait(15), postfix.diagnostics()
            postfix.wait_for_empty_queue()
    finally:
        controller.stop()
        sock.unlink(missing_ok=True)
        sockdir.rmdir()
    assert len(sink.delivered) == 1


def test_the_machines_postfix_is_left_as_it_was_also_when_a_test_fails() -> None:
    """postconf -n, main.cf, master.cf and whether it runs: the same after a private
    instance was used, and after one whose test raised while mail sat in its queue."""
    require_postfix()
    before = machine_state()
    with PostfixInstance(DOMAIN, f"inet:127.0.0.1:{reserve_port()}") as postfix:
        folder = postfix.folder
        postfix.send(SENDER, [f"inbox@{DOMAIN}"], make_message("kept"))
        postfix.wait_until(postfix.queue)
        assert Path(postfix.maillog_file).parent == folder, "its log is its own"
    assert machine_state() == before
    assert not folder.exists()

    with (
        pytest.raises(RuntimeError, match="the test failed"),
        PostfixInstance(DOMAIN, f"inet:127.0.0.1:{reserve_port()}") as postfix,
    ):
        folder = postfix.folder
        postfix.send(SENDER, [f"inbox@{DOMAIN}"], make_message("failing"))
        raise RuntimeError("the test failed")
    assert machine_state() == before
    assert not folder.exists(), "the failed test's instance was not removed"


def test_an_instance_left_by_a_killed_test_process_is_stopped_by_the_next(tmp_path) -> None:
    require_postfix()
    before = machine_state()
    script = (
        "import os\n"
        "from tests.postfix_harness import PostfixInstance\n"
        f"p = PostfixInstance('{DOMAIN}', 'inet:127.0.0.1:9').__enter__()\n"
        "print(p.folder, flush=True)\n"
        "os._exit(1)\n"  # no __exit__, no atexit: as if killed
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT
    )
    left = Path(killed.stdout.strip())
    assert left.is_dir(), killed.stderr
    with PostfixInstance(DOMAIN, f"inet:127.0.0.1:{reserve_port()}"):
        assert not left.exists(), "the abandoned instance was not stopped"
    assert machine_state() == before
