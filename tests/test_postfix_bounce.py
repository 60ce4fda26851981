"""A real Postfix bounces postroom's mail, and the bounce finds the mail it answers (issue 17).

postroom's worker (send_due) sends a mail through a private Postfix (tests/postfix_harness.py)
to a user that does not exist on a domain Postfix delivers locally. Postfix accepts it, its
local delivery agent finds no such user, and Postfix writes the delivery status notification
itself, to the envelope sender: postroom's VERP address on the ingest domain, which Postfix
delivers over LMTP to the running postroom. The outbound entry is then bounced, with the
reason shown on its page, and nothing is left in Unassigned.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid

from admin_ui import create_app
from domain.bounces import bounce_address
from domain.users import create_user
from postroom.config import load_settings
from postroom.outbound import queue_message
from postroom.outbound_send import send_due
from storage.db import open_database
from storage.models import Entry, OutboundMessage, Project
from tests.daemon import DOMAIN, Daemon
from tests.postfix_harness import PostfixInstance, free_port, require_postfix
from tests.web import PASSWORD, login

LOCAL_DOMAIN = "customer-local.test"


def wait_for_listener(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_postfix_writes_the_dsn_and_it_marks_the_outbound_entry_bounced(
    daemon: Daemon, tmp_path
) -> None:
    require_postfix()
    account_id = daemon.account["id"]
    project_id = daemon.create_project(account_id, "Bakery Miller", "anna@bakery.example")["id"]
    missing = f"nobody-{uuid.uuid4().hex[:10]}@{LOCAL_DOMAIN}"  # no such user on the machine
    config = tmp_path / "web.toml"
    config.write_text(f'[ingest]\ndomains = ["{DOMAIN}"]\n')
    smtp_port = free_port()
    lmtp = f"inet:127.0.0.1:{daemon.lmtp_port}"
    db = open_database(daemon.db_url)
    try:
        with PostfixInstance(
            DOMAIN, lmtp, smtp_port=smtp_port, local_domains=(LOCAL_DOMAIN,)
        ) as postfix:
            wait_for_listener(smtp_port)
            base = load_settings(config)
            url = f"smtp://127.0.0.1:{smtp_port}?security=none"
            settings = dataclasses.replace(
                base, outbound=dataclasses.replace(base.outbound, smtp_url=url)
            )
            author = create_user(account_id, "sam@agency.test", "member", PASSWORD, name="Sam")
            project = Project.get_by_id(project_id)
            sent = queue_message(
                project, author, missing, "Your offer", "Hello.", settings=settings
            )

            assert send_due(settings) == (1, 0), daemon.log_text()
            postfix.wait_for_empty_queue(timeout=60)
            found = daemon.wait_for_entries(1, timeout=60)

            log = postfix.log_text()
            verp = bounce_address(sent.id, DOMAIN)
            assert "status=bounced" in log and "unknown user" in log, postfix.diagnostics()
            assert f"<{verp}>" in log, postfix.diagnostics()  # the DSN went to the VERP address
            [bounce] = [e for e in found if e["kind"] == "inbound"]
            assert bounce["project_id"] == project_id, (bounce, daemon.log_text())
            assert bounce["route"]["rule"] == "bounce"
            assert bounce["route"]["detail"] == str(sent.id)
            assert Entry.get_by_id(bounce["id"]).is_bounce
            assert [e for e in found if e["project_id"] is None] == []  # Unassigned is empty

        outbound = OutboundMessage.get(OutboundMessage.entry == sent.id)
        entry = Entry.get_by_id(sent.id)
        assert (entry.status, entry.send_problem) == ("open", "bounced")
        assert outbound.bounce_status == "5.1.1"
        assert outbound.bounce_recipient == missing
        assert "unknown user" in outbound.bounce_detail
        assert outbound.bounce_entry == bounce["id"]

        client = create_app(settings, testing=True).test_client()
        login(client, "sam@agency.test")
        page = client.get(f"/entries/{sent.id}").get_data(as_text=True)
        assert ">bounced</span>" in page
        assert "Bounced:" in page and "5.1.1" in page and "unknown user" in page
        assert client.get("/unassigned").get_data(as_text=True).count('class="entry ') == 0
    finally:
        db.close()
