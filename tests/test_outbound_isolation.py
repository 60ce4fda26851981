"""One account's slow or silent mail server never holds up another account's mail.

Account A's own server misbehaves (a port that never says a word, a greeting dripped a line
a second, an answer to the message that never ends); account B's is a real aiosmtpd sink.
Both accounts' mail is due in the same pass of the worker. The assertions are about order
and events (B's mail arrives while A's session is still running; A's session ends at its
deadline), with time bounds only where they are the point, and then far from what a slow
machine needs: A's connect timeout is 60 s, B's mail must arrive within half of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import threading
import time

from domain.projects import create_project
from domain.users import create_user
from postroom.outbound import queue_message
from postroom.outbound_send import send_due, wait_for_sessions
from storage.accounts import create_account
from storage.models import OutboundMessage, utcnow
from storage.outbound import due_messages, save_account_smtp
from tests.daemon import reserve_port
from tests.test_outbound import smtp_sink
from tests.test_smtp_deadline import ScriptedServer, dripping, slow_after_data
from tests.web import PASSWORD

A_TIMEOUT = 60.0  # A's connect timeout: what A's server may take per step
PROMPTLY = A_TIMEOUT / 2  # B's mail arrives well before A's server could even time out


def account_with_server(name: str, port: int):
    """An account with a member, a project and its own server on this machine."""
    account = create_account(name)
    user = create_user(account.id, f"sam@{name.lower()}.test", "member", PASSWORD, name="Sam")
    project = create_project(account.id, "Bakery", customer_addresses=["anna@bakery.example"])
    save_account_smtp(
        account.id,
        host="127.0.0.1",
        port=port,
        security="none",
        username="",
        password=None,
        from_address=f"hello@{name.lower()}.test",
        from_name=name,
    )
    return user, project


def rows_of(project) -> list[OutboundMessage]:
    query = OutboundMessage.select().where(OutboundMessage.account == project.account_id)
    return list(query.order_by(OutboundMessage.id))


def settings_for(web, *ports: int, **outbound):
    settings = web.app.config["POSTROOM_SETTINGS"]
    changed = dataclasses.replace(
        settings.outbound,
        allow_private_hosts=True,
        allowed_ports=ports,
        connect_timeout_seconds=A_TIMEOUT,
        **outbound,
    )
    return dataclasses.replace(settings, outbound=changed)


def queue(user, project, subject: str, settings):
    queue_message(project, user, "anna@bakery.example", subject, "Text", settings=settings)


def wait_until(condition, timeout: float) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Holding:
    """A port that accepts connections and never says a word, until released."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return

    def release(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


def test_a_silent_server_of_one_account_does_not_delay_the_mail_of_another(web):
    silent = Holding()
    sink_port = reserve_port()
    settings = settings_for(web, silent.port, sink_port)
    a_user, a_project = account_with_server("Slow", silent.port)
    b_user, b_project = account_with_server("Quick", sink_port)
    for number in range(3):  # A's mail is older: it would go first in a one-by-one queue
        queue(a_user, a_project, f"A {number}", settings)
    queue(b_user, b_project, "B 1", settings)
    try:
        with smtp_sink(sink_port) as sink:
            started = time.monotonic()
            assert send_due(settings) == (1, 0)  # B's; A's session is still waiting
            assert wait_until(lambda: len(silent.held) == 1, PROMPTLY)
            assert time.monotonic() - started < PROMPTLY
            assert [mail_from for mail_from, _, _ in sink.received] == ["hello@quick.test"]
            assert [row.attempts for row in rows_of(a_project)] == [0, 0, 0]  # still running

            # B's next mail goes in the next pass; A's account is left alone meanwhile
            queue(b_user, b_project, "B 2", settings)
            assert send_due(settings) == (1, 0)
            assert len(sink.received) == 2 and len(silent.held) == 1
            assert [row.attempts for row in rows_of(a_project)] == [0, 0, 0]
    finally:
        silent.release()  # A's server hangs up: its session ends
    assert wait_for_sessions(PROMPTLY)
    assert send_due(settings) == (0, 1)  # a later pass reports A's ended session
    a_rows = rows_of(a_project)
    assert [row.attempts for row in a_rows] == [1, 0, 0]  # the rest waits: A backs off
    assert a_rows[0].last_error == "the outgoing mail server closed the connection"
    assert send_due(settings) == (0, 0)  # backing off: not even tried
    assert [row.attempts for row in rows_of(a_project)] == [1, 0, 0]


def test_a_dripping_server_is_ended_at_the_session_deadline_and_holds_up_no_one(web):
    """A greeting a line a second never trips a read timeout; the session deadline ends it."""
    dripper = ScriptedServer(dripping(b"220-still greeting\r\n", 1.0))
    sink_port = reserve_port()
    settings = settings_for(web, dripper.port, sink_port, session_seconds=3.0)
    a_user, a_project = account_with_server("Slow", dripper.port)
    b_user, b_project = account_with_server("Quick", sink_port)
    queue(a_user, a_project, "A", settings)
    queue(b_user, b_project, "B", settings)
    try:
        with smtp_sink(sink_port) as sink:
            send_due(settings, wait=0)
            assert wait_until(lambda: sink.received, PROMPTLY)
            b_arrived = time.monotonic()
            assert wait_for_sessions(A_TIMEOUT)  # A's session ends, without a read timeout
    finally:
        dripper.close()
    assert dripper.wait_for("hung up")
    assert b_arrived < dripper.when("hung up")  # B did not wait for A
    ran = dripper.when("hung up") - dripper.when("connected")
    # ended at its deadline (the server notes the connection a moment after postroom's timer
    # starts), not by a 60 s timeout, nor never
    assert 2.5 <= ran < A_TIMEOUT
    [a_row] = rows_of(a_project)
    assert (a_row.state, a_row.attempts) == ("queued", 1)
    assert a_row.last_error == (
        "the outgoing mail server was too slow; postroom ended the connection (time limit: 3 s)"
    )
    assert [row.state for row in rows_of(b_project)] == ["sent"]


def test_no_message_is_sent_twice_while_a_slow_session_runs(web):
    """A server takes the message and never finishes answering: while the session may still
    run, the message stays claimed (for any worker) and later passes leave it alone."""
    server = ScriptedServer(slow_after_data)
    session_seconds = 3.0
    settings = settings_for(web, server.port, session_seconds=session_seconds)
    user, project = account_with_server("Slow", server.port)
    queue(user, project, "Once", settings)
    results = []
    try:
        results.append(send_due(settings, wait=0))
        assert server.wait_for("message", PROMPTLY)
        claimed_at = utcnow()
        while server.count("hung up") == 0 and len(results) < 1000:
            results.append(send_due(settings, wait=0))  # the account is busy: left alone
            # another worker, even one whose clock is a session ahead, finds it claimed
            later = claimed_at + dt.timedelta(seconds=session_seconds)
            assert due_messages(later, project.account_id) == []
            time.sleep(0.1)
        assert wait_for_sessions(A_TIMEOUT)
    finally:
        server.close()
    results.append(send_due(settings, wait=0))  # reports the ended session, if not yet
    assert len(results) > 2  # passes ran while the session did
    assert server.count("connected") == 1 and server.count("message") == 1
    assert (sum(sent for sent, _ in results), sum(failed for _, failed in results)) == (0, 1)
    [row] = rows_of(project)
    assert (row.state, row.attempts) == ("queued", 1)
    assert "too slow" in row.last_error
    assert server.count("connected") == 1  # the retry waits its back-off
