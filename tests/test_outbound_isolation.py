"""One account's silent mail server never holds up another account's mail.

Account A's own server is a port that accepts connections and never says a word; account
B's is a real aiosmtpd sink. Both accounts' mail is due in the same pass of the worker.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

from postroom.auth import create_user
from postroom.outbound import queue_message
from postroom.outbound_send import send_due
from storage.accounts import create_account, create_project
from storage.models import OutboundMessage
from storage.outbound import save_account_smtp
from tests.daemon import free_port
from tests.test_outbound import smtp_sink
from tests.web import PASSWORD

SILENT_TIMEOUT = 60.0  # what A's server may take per step; B must not wait for it


def account_with_server(name: str, port: int):
    """An account with a member, a project and its own server on this machine."""
    account = create_account(name)
    user = create_user(account.id, f"sam@{name.lower()}.test", "member", PASSWORD, name="Sam")
    project = create_project(account.id, "Bakery", customer_addresses=["anna@bakery.example"])
    save_account_smtp(account.id, host="127.0.0.1", port=port, security="none", username="",
                      password=None, from_address=f"hello@{name.lower()}.test",
                      from_name=name)  # fmt: skip
    return user, project


def rows_of(project) -> list[OutboundMessage]:
    query = OutboundMessage.select().where(OutboundMessage.account == project.account_id)
    return list(query.order_by(OutboundMessage.id))


def test_a_silent_server_of_one_account_does_not_delay_the_mail_of_another(web):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel; nobody ever answers them
    silent_port = silent.getsockname()[1]
    sink_port = free_port()
    settings = web.app.config["POSTROOM_SETTINGS"]
    outbound = dataclasses.replace(
        settings.outbound, allow_private_hosts=True, allowed_ports=(silent_port, sink_port),
        connect_timeout_seconds=SILENT_TIMEOUT,
    )  # fmt: skip
    settings = dataclasses.replace(settings, outbound=outbound)
    a_user, a_project = account_with_server("Slow", silent_port)
    b_user, b_project = account_with_server("Quick", sink_port)
    for number in range(3):  # A's mail is older: it would go first in a one-by-one queue
        queue_message(a_project, a_user, "anna@bakery.example", f"A {number}", "Text",
                      settings=settings)  # fmt: skip
    queue_message(b_project, b_user, "anna@bakery.example", "B", "Text", settings=settings)
    results = []
    with smtp_sink(sink_port) as sink:
        started = time.monotonic()
        worker = threading.Thread(target=lambda: results.append(send_due(settings)))
        worker.start()
        while not sink.received and time.monotonic() - started < SILENT_TIMEOUT:
            time.sleep(0.05)
        waited = time.monotonic() - started
        silent.close()  # ends A's waiting connection (reset) so the pass can finish
        worker.join(SILENT_TIMEOUT + 10)
    assert not worker.is_alive()
    assert len(sink.received) == 1 and waited < 15, waited
    assert sink.received[0][0] == "hello@quick.test"
    assert results == [(1, 1)]  # B sent; A: one attempt failed, its other two not tried
    assert [row.attempts for row in rows_of(a_project)] == [1, 0, 0]
    a_rows = rows_of(a_project)
    assert a_rows[0].last_error.startswith("the outgoing mail server")
    # A backs off: the next pass does not even try it (B has nothing left)
    assert send_due(settings) == (0, 0)
    assert [row.attempts for row in rows_of(a_project)] == [1, 0, 0]


def test_a_server_that_never_answers_is_given_up_on_within_the_connect_timeout(web):
    """The default connect timeout is short: a server that never answers costs 10 s, not 60."""
    settings = web.app.config["POSTROOM_SETTINGS"]
    assert settings.outbound.connect_timeout_seconds == 10
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        port = silent.getsockname()[1]
        outbound = dataclasses.replace(
            settings.outbound, allow_private_hosts=True, allowed_ports=(port,),
            connect_timeout_seconds=1.0,
        )  # fmt: skip
        settings = dataclasses.replace(settings, outbound=outbound)
        user, project = account_with_server("Slow", port)
        queue_message(project, user, "anna@bakery.example", "A", "Text", settings=settings)
        started = time.monotonic()
        assert send_due(settings) == (0, 1)
        assert time.monotonic() - started < 5  # the 1 s timeout, not the 60 s of a reply
        assert OutboundMessage.get().last_error == "the outgoing mail server did not answer in time"
    finally:
        silent.close()
