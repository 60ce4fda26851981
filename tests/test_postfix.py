"""Stories of mail that reaches postroom through the machine's real Postfix over LMTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from storage.db import open_database
from storage.models import Intake
from tests.daemon import DOMAIN, Daemon
from tests.postfix_harness import PostfixInstance, require_postfix

CUSTOMER = "alice@customer.test"


@pytest.fixture(autouse=True)
def _postfix_required() -> None:
    """Skip (or fail on CI) before a daemon is started for nothing."""
    require_postfix()


@pytest.fixture
def postfix(daemon: Daemon) -> Iterator[PostfixInstance]:
    """A private Postfix, routing the ingest domain to the daemon's LMTP listener."""
    with PostfixInstance(DOMAIN, f"inet:127.0.0.1:{daemon.lmtp_port}") as instance:
        yield instance


def make_message(sender: str, to: str, subject: str) -> bytes:
    marker = uuid.uuid4().hex
    return (
        f"From: Alice Customer <{sender}>\n"
        f"To: {to}\n"
        f"Subject: {subject}\n"
        f"Message-ID: <{marker}@customer.test>\n"
        "Date: Mon, 03 Jun 2024 10:00:00 +0200\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        f"Hello, this is {subject}.\n"
        "Grüße aus Köln\n"
    ).encode()


def intake_rows(daemon: Daemon) -> list[tuple[str, str, str]]:
    """Return (sha256, recipient, protocol) of every intake row, read beside the daemon."""
    db = open_database(daemon.db_url)
    try:
        query = Intake.select(Intake.raw, Intake.recipient, Intake.protocol)
        return [(row.raw_id, row.recipient, row.protocol) for row in query]
    finally:
        db.close()


def test_mail_from_a_customer_via_postfix_is_filed_under_the_project(
    daemon: Daemon, postfix: PostfixInstance
) -> None:
    project = daemon.create_project(daemon.account["id"], "Website relaunch", CUSTOMER)
    subject = f"Relaunch feedback {uuid.uuid4().hex[:8]}"

    postfix.send(CUSTOMER, [daemon.inbox], make_message(CUSTOMER, daemon.inbox, subject))
    postfix.wait_for_empty_queue(timeout=30)
    found = daemon.wait_for_entries(1, timeout=30)

    assert len(found) == 1, (found, daemon.log_text(), postfix.diagnostics())
    entry = found[0]
    assert entry["subject"] == subject
    assert entry["from"] == CUSTOMER
    assert entry["project_id"] == project["id"], entry
    assert entry["route"]["rule"] == "sender", entry
    assert entry["parse_error"] is None, entry
    rows = intake_rows(daemon)
    assert len(rows) == 1, rows
    assert rows[0][1:] == (daemon.inbox.lower(), "lmtp")
    assert rows[0][0] == entry["raw_sha256"]
    assert "status=sent" in postfix.log_text(), postfix.diagnostics()


def test_postfix_defers_while_postroom_is_down_and_delivers_each_once_after(
    daemon: Daemon, postfix: PostfixInstance
) -> None:
    daemon.stop()
    run = uuid.uuid4().hex[:8]
    subjects = {f"Deferred {run} #{n}" for n in range(5)}
    for subject in sorted(subjects):
        postfix.send(CUSTOMER, [daemon.inbox], make_message(CUSTOMER, daemon.inbox, subject))

    def all_deferred() -> bool:
        queue = postfix.queue()
        return (
            len(queue) == 5
            and all(item["queue_name"] == "deferred" for item in queue)
            and len(postfix.deferred_reasons()) == 5
        )

    postfix.wait_until(all_deferred, timeout=30)
    reasons = postfix.deferred_reasons()
    assert all("Connection refused" in reason for reason in reasons), postfix.diagnostics()
    assert intake_rows(daemon) == []

    daemon.start()
    postfix.flush()
    postfix.wait_for_empty_queue(timeout=30)
    found = daemon.wait_for_entries(5, timeout=30)

    assert sorted(e["subject"] for e in found) == sorted(subjects), (found, daemon.log_text())
    assert len({e["raw_sha256"] for e in found}) == 5
    rows = intake_rows(daemon)
    assert len(rows) == 5, rows
    assert {row[0] for row in rows} == {e["raw_sha256"] for e in found}
    assert postfix.queue() == []
