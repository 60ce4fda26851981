"""A kill -9 in the middle of a stream of deliveries loses no acknowledged message."""

from __future__ import annotations

import hashlib
import os
import signal
import smtplib
import threading
import time
import uuid
from pathlib import Path

from peewee import fn

from storage.db import open_database
from storage.models import Entry, Intake
from tests.daemon import Daemon
from tests.mail import message

CLIENTS = 8
PER_CLIENT = 250  # 2,000 deliveries in all
KILL_AFTER = 1_000  # acknowledged messages
SENDER = "crash@customer.test"


def make_message(run: str, client: int, seq: int, inbox: str) -> bytes:
    """A small message with CRLF line ends and no leading dots, sent byte for byte."""
    lines = [
        f"From: Crash Client {client} <{SENDER}>",
        f"To: {inbox}",
        f"Subject: crash {run} client {client} message {seq}",
        f"Message-ID: <{run}.{client}.{seq}@customer.test>",
        "Date: Mon, 03 Jun 2024 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Message {seq} of client {client} in run {run}.",
        "",
    ]
    return "\r\n".join(lines).encode()


class Clients:
    """Client threads, each on one SMTP connection with repeated MAIL/RCPT/DATA."""

    def __init__(self, daemon: Daemon) -> None:
        self.port = daemon.smtp_port
        self.inbox = daemon.inbox
        self.run = uuid.uuid4().hex[:10]
        self.lock = threading.Lock()
        self.acked: list[str] = []  # SHA-256 of each message answered 250 after DATA
        self.refused: list[tuple[int, bytes]] = []  # replies other than 250 after DATA
        self.errors: list[str] = []  # why each client stopped early
        self.threads = [
            threading.Thread(target=self._send, args=(n,), name=f"client-{n}", daemon=True)
            for n in range(CLIENTS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _send(self, client: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
                smtp.ehlo("crash-client.test")
                for seq in range(PER_CLIENT):
                    message = make_message(self.run, client, seq, self.inbox)
                    code, reply = smtp.mail(SENDER)
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, reply)
                    code, reply = smtp.rcpt(self.inbox)
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, reply)
                    code, reply = smtp.data(message)
                    with self.lock:
                        if code == 250:
                            self.acked.append(hashlib.sha256(message).hexdigest())
                        else:
                            self.refused.append((code, reply))
        except (smtplib.SMTPException, OSError) as error:
            with self.lock:
                self.errors.append(f"client {client}: {error.__class__.__name__}: {error}")


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def test_kill_9_during_deliveries_loses_no_acknowledged_message(daemon: Daemon) -> None:
    clients = Clients(daemon)
    clients.start()
    assert wait_for(
        lambda: clients.acked_count() >= KILL_AFTER or not clients.running(), 45, 0.002
    ), "clients stalled"
    at_kill = clients.acked_count()
    daemon.kill()
    clients.join(60)
    assert not clients.running(), "a client hung after the kill"
    acked = set(clients.acked)
    print(
        f"\nacknowledged before kill -9: {at_kill} (seen by clients when the kill was sent),"
        f" {len(clients.acked)} in all; refused: {len(clients.refused)};"
        f" clients stopped by: {sorted({e.split(': ', 1)[1] for e in clients.errors})}"
    )
    assert at_kill >= KILL_AFTER, (at_kill, clients.errors, clients.refused[:5])
    assert len(acked) == len(clients.acked), "two acknowledged messages had the same bytes"
    assert len(clients.acked) < CLIENTS * PER_CLIENT, "the kill came after every delivery"

    daemon.start()

    db = open_database(daemon.db_url)
    try:
        stored = {
            row.raw_id
            for row in Intake.select(Intake.raw).where(Intake.recipient == daemon.inbox.lower())
        }
        duplicates = list(
            Intake.select(Intake.raw, Intake.recipient, fn.COUNT(Intake.id).alias("n"))
            .group_by(Intake.raw, Intake.recipient)
            .having(fn.COUNT(Intake.id) > 1)
            .tuples()
        )
    finally:
        db.close()
    lost = acked - stored
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages have no intake row"
    assert not duplicates, duplicates

    def processed() -> bool:
        db = open_database(daemon.db_url)
        try:
            pending = Intake.select().where(Intake.state == "pending").count()
            filed = Entry.select().where(Entry.raw_sha256.in_(list(acked))).count()
        finally:
            db.close()
        return pending == 0 or filed >= len(acked)

    wait_for(processed, 90, 0.5)
    entries = daemon.entries()
    filed = {entry["raw_sha256"] for entry in entries}
    unfiled = acked - filed
    if unfiled:
        db = open_database(daemon.db_url)
        try:
            states = list(
                Intake.select(Intake.state, Intake.error, fn.COUNT(Intake.id))
                .where(Intake.raw.in_(list(unfiled)))
                .group_by(Intake.state, Intake.error)
                .tuples()
            )
        finally:
            db.close()
        raise AssertionError(
            f"{len(unfiled)} of {len(acked)} acknowledged messages have no entry;"
            f" their intakes (state, error, count): {states[:10]}"
        )
    assert len(entries) == len(filed), "an entry was filed twice"
    assert len(entries) <= len(stored)


def test_an_intake_left_waiting_by_a_dead_ingest_is_filed_by_a_running_one(db_url, tmp_path):
    """An ingest killed between commit and hand-over leaves a pending intake; another ingest
    on the same database files it without a restart (its processor sweeps on a timer), even
    while a steady stream of mail never leaves its queue idle."""
    import datetime as dt

    from storage.intake import Delivery, IntakeBatchItem, record_batch

    raw = b"From: anna@customer.test\r\nSubject: left waiting\r\n\r\nhello\r\n"
    with Daemon(tmp_path, db_url) as daemon:
        daemon.send(message(subject="first"))
        daemon.wait_for_entries(1)  # the processor is up and has caught up at its start
        long_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
        sender, peer = "anna@customer.test", "192.0.2.1:25"
        delivery = Delivery(
            "LEFT1",
            daemon.account["id"],
            daemon.inbox.lower(),
            None,
            sender,
            peer,
            "mx",
            "smtp",
            long_ago,
        )
        db = open_database(daemon.db_url)
        try:  # as the dead ingest did: committed, never handed to a processor
            digest = hashlib.sha256(raw).hexdigest()
            [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))])
        finally:
            db.close()
        db = open_database(daemon.db_url)
        try:
            deadline, sent = time.monotonic() + 60, 0
            while Intake.get_by_id(recorded.intake_id).state != "done":
                assert time.monotonic() < deadline, f"not filed while {sent} mails streamed in"
                assert daemon.send(message(subject=f"stream {sent}"))[0] == 250
                sent += 1
                time.sleep(0.2)  # a mail every 0.2 s or so: the queue never idle for 1 s
            assert Entry.get(Entry.id == Intake.get_by_id(recorded.intake_id).entry_id).subject == (
                "left waiting"
            )
        finally:
            db.close()


def _processes() -> dict[int, tuple[int, str, int]]:
    """Every process's (parent pid, state, start time), read from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        found[int(stat.parent.name)] = (int(fields[1]), fields[0], int(fields[19]))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(pid: int, processes: dict[int, tuple[int, str, int]]) -> set[int]:
    """The processes below pid (children, their children, ...)."""
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, *_) in processes.items() if parent in frontier}
        found |= frontier
    return found


def _alive(processes: dict[int, tuple[int, str, int]], pid: int, started: int) -> bool:
    """Whether the process that started at `started` as pid is still running."""
    _, state, start = processes.get(pid, (0, "Z", 0))
    return state != "Z" and start == started


def test_parse_workers_go_when_the_filing_process_is_killed(db_url, tmp_path) -> None:
    """A kill -9 of the filing process leaves no parse worker behind.

    Robust on a busy machine: the parse may take long (its worker runs at the lowest
    priority), so its timeout is far away (a timeout would restart the pool and take the
    worker away before the kill); a worker is told from a later process that got its pid
    by its start time."""
    big = message(subject="big", body="A line of a long letter.\n" * 8000)  # parsed by a worker
    with Daemon(tmp_path, db_url, parse_timeout_seconds=600) as daemon:
        code, _ = daemon.send(big)
        assert code == 250
        entries = daemon.wait_for_entries(1, timeout=300)
        assert [e["subject"] for e in entries] == ["big"], daemon.log_text()[-3000:]
        processes = _processes()
        children = [pid for pid, (parent, *_) in processes.items() if parent == daemon.process.pid]
        filing = [pid for pid in children if b"spawn_main" in _cmdline(pid)]
        assert len(filing) == 1, [_cmdline(pid) for pid in children]
        below = {pid: processes[pid][2] for pid in _descendants(filing[0], processes)}
        assert below, ("no parse worker below the filing process", daemon.log_text()[-3000:])
        os.kill(filing[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            processes = _processes()  # a zombie ("Z") has exited, only not yet been reaped
            left = [pid for pid, started in below.items() if _alive(processes, pid, started)]
            if not left:
                break
            time.sleep(0.1)
        assert not left, [_cmdline(pid) for pid in left]
