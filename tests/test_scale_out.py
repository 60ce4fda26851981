"""Several ingest and web processes on one PostgreSQL database share everything they need."""

from __future__ import annotations

import hashlib
import re
import smtplib
import threading
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from storage.db import make_database
from storage.models import ALL_MODELS, Intake
from tests.daemon import Daemon
from tests.mail import message

PASSWORD = "correct horse battery"


def intake_counts(url: str) -> dict[str, int]:
    db = make_database(url)
    with db.bind_ctx(ALL_MODELS):
        rows = Intake.select(Intake.raw, Intake.recipient)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.raw_id] = counts.get(row.raw_id, 0) + 1
    db.close()
    return counts


def test_two_ingests_and_two_webs_on_one_database(pg_url, tmp_path):
    first = Daemon(tmp_path / "a", pg_url)
    with first:
        second = first.sibling(tmp_path / "b")
        web_a, web_b = first.sibling(tmp_path / "c", "web"), first.sibling(tmp_path / "d", "web")
        with second, web_a, web_b:
            first.create_user("member@agency.test", "member", PASSWORD)
            sent = []
            for number in range(10):
                raw = message(f"Alternating {number}")
                target = first if number % 2 == 0 else second
                assert target.send(raw)[0] == 250
                sent.append(hashlib.sha256(raw).hexdigest())
            # the same bytes to the other ingest (an MTA retrying elsewhere) are stored once
            twice = message("Twice, same bytes")
            assert first.send(twice)[0] == 250 and second.send(twice)[0] == 250
            sent.append(hashlib.sha256(twice).hexdigest())
            counts = intake_counts(pg_url)
            assert all(counts.get(digest) == 1 for digest in sent), counts
            listed = first.wait_for_entries(11)
            assert len({e["raw_sha256"] for e in listed}) == len(listed) == 11

            # logged in on one web process, still logged in on the other
            jar = CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            page = opener.open(web_a.web_url + "/login").read().decode()
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            form = urllib.parse.urlencode(
                {"email": "member@agency.test", "password": PASSWORD, "csrf_token": token}
            ).encode()
            opener.open(web_a.web_url + "/login", data=form)
            cookie = next(c for c in jar if c.name == "postroom_session")
            request = urllib.request.Request(  # noqa: S310 - our own local server
                web_b.web_url + "/", headers={"Cookie": f"postroom_session={cookie.value}"}
            )
            with opener.open(request) as response:
                body = response.read().decode()
            assert response.geturl().endswith("/")
            assert "member@agency.test" in body


def test_kill_9_of_one_ingest_under_load_loses_nothing_and_retries_are_not_doubled(
    pg_url, tmp_path
):
    first = Daemon(tmp_path / "a", pg_url)
    with first:
        second = first.sibling(tmp_path / "b")
        with second:
            messages = [message(f"Load {number}") for number in range(600)]
            acknowledged: set[int] = set()
            stop = threading.Event()

            def deliver(start: int) -> None:
                try:
                    with smtplib.SMTP("127.0.0.1", first.smtp_port, timeout=30) as client:
                        for number in range(start, len(messages), 4):
                            if stop.is_set():
                                return
                            client.sendmail("a@customer.test", [first.inbox], messages[number])
                            acknowledged.add(number)
                except (OSError, smtplib.SMTPException):
                    return

            threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            while len(acknowledged) < 150:
                threading.Event().wait(0.01)
            first.kill()
            stop.set()
            for thread in threads:
                thread.join(30)
            # the MTA retries everything it has no 250 for, and some it had (a lost 250)
            retried = [n for n in range(len(messages)) if n not in acknowledged]
            retried += sorted(acknowledged)[:50]
            with second.smtp() as client:
                for number in retried:
                    client.sendmail("a@customer.test", [second.inbox], messages[number])
            counts = intake_counts(pg_url)
            for number, raw in enumerate(messages):
                assert counts.get(hashlib.sha256(raw).hexdigest()) == 1, number
            print(f"acknowledged by the killed ingest: {len(acknowledged)} of {len(messages)}")
            assert len(second.wait_for_entries(600, timeout=120)) == 600
