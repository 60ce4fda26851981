"""After a bench-sized burst, every acknowledged message is stored and filed (issue: no loss).

The load is the benchmark's own (bench/ingest.py): 3,000 messages of 10 KB over 8 sessions,
from Postfix's smtp-source and from the Python generator, whose acknowledged messages are
known one by one. Nothing here is timed; the benchmark measures speed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from storage.db import open_database
from storage.models import Entry, Intake
from tests.conftest import IN_CI
from tests.daemon import Daemon
from tests.loops import in_own_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ingest import python_load_acknowledged, smtp_source

MESSAGES = 3000
SIZE = 10_240


def stored(daemon: Daemon) -> tuple[list[Intake], set[str]]:
    daemon.wait_processed(timeout=300)
    db = open_database(daemon.db_url)
    try:
        intakes = list(Intake.select(Intake.id, Intake.state, Intake.entry))
        subjects = {e.subject for e in Entry.select(Entry.subject)}
        return intakes, subjects
    finally:
        db.close()


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_every_message_acknowledged_in_a_burst_is_stored_and_filed(db_url, tmp_path, protocol):
    lmtp = protocol == "lmtp"
    with Daemon(tmp_path, db_url) as daemon:
        port = daemon.lmtp_port if lmtp else daemon.smtp_port
        acknowledged = in_own_thread(  # it runs asyncio.run()
            python_load_acknowledged, port, MESSAGES, 8, SIZE, lmtp, daemon.inbox
        )
        intakes, subjects = stored(daemon)
    assert len(acknowledged) == MESSAGES  # a healthy postroom acknowledges all of them
    assert len(intakes) == MESSAGES
    assert all(i.state == "done" and i.entry_id for i in intakes)
    assert {f"bench {n}" for n in acknowledged} <= subjects


def test_every_message_smtp_source_delivered_is_stored_and_filed(db_url, tmp_path):
    if not shutil.which("smtp-source") and not Path("/usr/sbin/smtp-source").exists():
        reason = "smtp-source (Debian's postfix package) is not installed"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    with Daemon(tmp_path, db_url) as daemon:
        smtp_source(daemon.smtp_port, MESSAGES, 8, SIZE, False, daemon.inbox)  # exits on a 4xx/5xx
        intakes, _ = stored(daemon)
    assert len(intakes) == MESSAGES
    assert all(i.state == "done" and i.entry_id for i in intakes)
