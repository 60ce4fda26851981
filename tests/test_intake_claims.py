"""Intake claims: each pending intake is filed by the one ingest process that claims it.

In-process tests of the rules in storage (claim, heartbeat, expiry, take-over, filing only
what is still held) on SQLite and PostgreSQL; then two real `postroom ingest` processes on one
PostgreSQL database with 2,000 deliveries between them, and a kill -9 of one of them while
it holds claims.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import smtplib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from smtpd_ingest.flow import IntakeFlow
from smtpd_ingest.parse import ParseError
from smtpd_ingest.parser_pool import InlineParser
from smtpd_ingest.pipeline import assemble_records
from storage import accounts
from storage.db import native_sql, open_database
from storage.filing import file_inbound
from storage.intake import (
    beat,
    claim_waiting,
    database_now,
    forget_dead_here,
    new_holder,
    release,
    waiting_intakes,
)
from storage.models import Entry, Intake, database, utcnow
from tests.daemon import Daemon
from tests.filing import record_intake
from tests.mail import message

HOUR = 3600.0
LONG_AGO = dt.timedelta(minutes=5)


def _record(account_id: int, raw: bytes, holder: str | None, received=None) -> int:
    return record_intake(account_id, raw, holder=holder, received_at=received or utcnow())


def claims(intake_ids: list[int]) -> dict[int, str | None]:
    """Who claims each of intake_ids (None: nobody)."""
    query = Intake.select(Intake.id, Intake.claimed_by).where(Intake.id.in_(intake_ids))
    return dict(query.tuples())


def _run_out(holder: str) -> None:
    """Let a lease run out (as if its process had stopped beating an hour ago)."""
    beat(holder, -HOUR)


@pytest.fixture
def account(storage_db):
    return accounts.create_account("Agency")


def test_an_intake_recorded_by_an_ingest_is_its_own_while_its_lease_lives(account):
    first, second = new_holder(), new_holder()
    beat(first, HOUR)
    beat(second, HOUR)
    mine = _record(account.id, message("mine"), first, utcnow() - LONG_AGO)
    assert claims([mine]) == {mine: first}
    # neither the sweep nor a start of another ingest takes it, however long it waited
    assert claim_waiting(second, utcnow()) == []
    assert claim_waiting(second) == []
    assert waiting_intakes([mine], second) == []
    assert [i.id for i in waiting_intakes([mine], first)] == [mine]
    assert claims([mine]) == {mine: first}


def test_a_heartbeat_keeps_the_claims_and_a_lease_run_out_is_taken_over_once(account):
    first, second, third = new_holder(), new_holder(), new_holder()
    beat(second, HOUR)
    beat(third, HOUR)
    _run_out(first)
    intakes = [_record(account.id, message(f"left {n}"), first) for n in range(3)]
    beat(first, HOUR)  # a heartbeat: the lease runs again, the claims are first's
    assert claim_waiting(second, utcnow()) == []
    beat(first, 0.5)
    time.sleep(0.7)  # no heartbeat since: first is presumed dead
    assert claim_waiting(second, utcnow()) == intakes
    assert claims(intakes) == dict.fromkeys(intakes, second)
    assert claim_waiting(third, utcnow()) == []  # taken over once: second is alive


def test_a_released_lease_frees_the_intakes_at_once_and_no_lease_is_no_claim(account):
    stopped, running, never_beat = new_holder(), new_holder(), new_holder()
    beat(stopped, HOUR)
    beat(running, HOUR)
    left = _record(account.id, message("left by a clean stop"), stopped)
    orphan = _record(account.id, message("holder never took a lease"), never_beat)
    sweep = utcnow() - dt.timedelta(seconds=30)  # what waited this long is taken up
    assert claim_waiting(running, sweep) == [orphan]
    release(stopped)
    assert claim_waiting(running, sweep) == [left]
    assert claims([left, orphan]) == {left: running, orphan: running}


def test_unclaimed_intakes_wait_for_the_sweep_and_a_start_takes_them_at_once(account):
    running, starting = new_holder(), new_holder()
    beat(running, HOUR)
    fresh = _record(account.id, message("by postroom import, filed by it"), None)
    old = _record(account.id, message("stored before claims"), None, utcnow() - LONG_AGO)
    thirty_seconds_ago = utcnow() - dt.timedelta(seconds=30)
    assert claim_waiting(running, thirty_seconds_ago) == [old]
    assert claims([fresh]) == {fresh: None}
    beat(starting, HOUR)
    assert claim_waiting(starting) == [fresh]  # at start: every unclaimed one


def test_an_ingest_takes_up_its_own_intakes_left_pending_once_they_waited(account):
    holder = new_holder()
    beat(holder, HOUR)
    own = _record(account.id, message("dropped after an error"), holder)
    assert claim_waiting(holder, utcnow() - dt.timedelta(seconds=30)) == []  # in its queue
    assert claim_waiting(holder, utcnow() + dt.timedelta(seconds=1)) == [own]


def test_filing_files_only_what_the_ingest_still_claims(account):
    slow, other = new_holder(), new_holder()
    beat(slow, HOUR)
    raw = message("filed by one of them")
    intake = _record(account.id, raw, slow)
    [waiting] = waiting_intakes([intake], slow)  # the slow one took it up, then stalled
    _run_out(slow)
    beat(other, HOUR)
    assert claim_waiting(other, utcnow()) == [intake]
    [record] = assemble_records([(account.id, raw, None, ParseError("not parsed"))])
    assert file_inbound([(intake, record)], slow) == []
    assert Intake.get_by_id(intake).state == "pending"
    [filed] = file_inbound([(intake, record)], other)
    assert Intake.get_by_id(intake).entry_id == filed.entry_id
    assert file_inbound([(intake, record)], other) == []  # done: filed once
    assert Entry.select().where(Entry.raw_sha256 == waiting.sha256).count() == 1


def test_the_flow_of_an_ingest_leaves_what_another_claims(account):
    mine, theirs = new_holder(), new_holder()
    beat(mine, HOUR)
    beat(theirs, HOUR)
    own = _record(account.id, message("mine"), mine)
    foreign = _record(account.id, message("theirs"), theirs)
    flow = IntakeFlow(InlineParser(), holder=mine)
    flow.add([own, foreign])
    filed = flow.drain()
    assert [f.intake_id for f in filed] == [own]
    assert Intake.get_by_id(foreign).state == "pending"
    assert Intake.get_by_id(foreign).attempts == 0  # not tried: another's


def test_a_restarted_ingest_frees_the_claims_of_dead_processes_of_its_host(account):
    host = socket.gethostname()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        gone = subprocess.Popen(["true"])
        gone.wait()
        dead = f"{host}:{gone.pid}:0001"
        reused = f"{host}:{os.getpid()}:0002"  # our own id, taken over from a dead ingest
        alive = f"{host}:{sleeper.pid}:0003"
        elsewhere = f"other-{host}:{gone.pid}:0004"
        me = new_holder()
        for holder in (dead, reused, alive, elsewhere, me):
            beat(holder, HOUR)
        intakes = {
            holder: _record(account.id, message(holder), holder)
            for holder in (dead, reused, alive, elsewhere)
        }
        assert sorted(forget_dead_here(me)) == sorted([dead, reused])
        assert claim_waiting(me) == sorted([intakes[dead], intakes[reused]])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_leases_run_by_the_database_clock(storage_db):
    holder = new_holder()
    before = database_now()
    beat(holder, 60)
    [(expires,)] = database.execute_sql(
        native_sql("SELECT expires_at FROM ingest_lease WHERE holder = ?"), (holder,)
    ).fetchall()
    if isinstance(expires, str):
        expires = dt.datetime.fromisoformat(expires)
    assert dt.timedelta(seconds=59) < expires - before < dt.timedelta(seconds=70)


# --- two real ingest processes on one PostgreSQL database -------------------------------

CLAIM_SECONDS = 30  # the claim timeout of both ingests
TOTAL = 2_000
KILLED = 200  # acknowledged by the ingest that is killed while it holds their claims


def _children(pid: int) -> list[tuple[int, int]]:
    """The processes below pid (its filing process, that one's parse workers ...), each
    with its parent."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += [(child, parents[child]) for child in sorted(frontier)]
    return found


def _filing_process(daemon: Daemon) -> int:
    """The ingest's parse-and-file process (its child started by multiprocessing)."""
    for pid, parent in _children(daemon.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if parent == daemon.process.pid and b"spawn_main" in cmdline:
            return pid
    raise AssertionError(f"no filing process below {daemon.process.pid}")


class Senders:
    """Client threads delivering numbered messages to one ingest, half over SMTP, half LMTP."""

    def __init__(self, daemon: Daemon, numbers: list[int], run: str, clients: int = 4) -> None:
        self.daemon, self.run = daemon, run
        self.acknowledged: dict[int, str] = {}  # number -> SHA-256 of the bytes answered 250
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._send, args=(numbers[n::clients], n % 2 == 1))
            for n in range(clients)
        ]
        for thread in self.threads:
            thread.start()

    def join(self) -> Senders:
        for thread in self.threads:
            thread.join(180)
        assert not self.errors, self.errors[:3]
        return self

    def _send(self, numbers: list[int], lmtp: bool) -> None:
        port = self.daemon.lmtp_port if lmtp else self.daemon.smtp_port
        client_class = smtplib.LMTP if lmtp else smtplib.SMTP
        try:
            with client_class("127.0.0.1", port, timeout=60) as client:
                for number in numbers:
                    sender = f"c{number}@customer.test"
                    raw = message(f"claims {self.run} {number}", sender=sender)
                    client.sendmail(sender, [self.daemon.inbox], raw)  # raises unless 250
                    with self.lock:
                        self.acknowledged[number] = hashlib.sha256(raw).hexdigest()
        except (OSError, smtplib.SMTPException) as error:
            with self.lock:
                self.errors.append(f"{error.__class__.__name__}: {error}")


def _state(url: str) -> dict:
    """Every intake (id, queue id, message, state, claimed by) and entry (id, message)."""
    db = open_database(url)
    try:
        intakes = list(
            Intake.select(
                Intake.id, Intake.queue_id, Intake.raw, Intake.state, Intake.claimed_by
            ).tuples()
        )
        entries = list(Entry.select(Entry.id, Entry.raw_sha256).tuples())
    finally:
        db.close()
    return {"intakes": intakes, "entries": entries}


def _wait_filed(url: str, digests: set[str], timeout: float, *, all_done: bool = True) -> dict:
    """Wait until every message of `digests` has an entry (and, with all_done, no intake is
    pending); return the state then."""
    deadline = time.monotonic() + timeout
    while True:
        state = _state(url)
        filed = {sha for _, sha in state["entries"]}
        pending = [i for i in state["intakes"] if i[3] == "pending"]
        if (digests <= filed and not (all_done and pending)) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _log_ids(daemon: Daemon, logger: str, mark: str) -> list[str]:
    """Queue ids on the log lines of `logger` that contain `mark`."""
    return [
        line.split("queue_id=", 1)[1].split()[0]
        for line in daemon.log_text().splitlines()
        if f" {logger} queue_id=" in line and mark in line
    ]


def _received_by(daemon: Daemon) -> set[str]:
    """Queue ids of the mail this ingest answered 250 (one line per transaction)."""
    return set(_log_ids(daemon, "postroom.ingest", " result=250"))


def _filed_by(daemon: Daemon) -> list[str]:
    """Queue ids of the intakes this ingest filed (one line per intake filed)."""
    return _log_ids(daemon, "smtpd_ingest.pipeline", " entry=")


def _holder(daemon: Daemon) -> str:
    return f"{socket.gethostname()}:{daemon.process.pid}:"


def _assert_filed_once(state: dict, digests: set[str]) -> None:
    """One entry per message, every acknowledged one filed, every intake done."""
    per_raw: dict[str, int] = {}
    for _, sha in state["entries"]:
        per_raw[sha] = per_raw.get(sha, 0) + 1
    twice = {sha: n for sha, n in per_raw.items() if n > 1}
    assert not twice, f"{len(twice)} messages filed more than once"
    assert digests <= set(per_raw), f"{len(digests - set(per_raw))} acknowledged, not filed"
    states: dict[str, int] = {}
    for intake in state["intakes"]:
        states[intake[3]] = states.get(intake[3], 0) + 1
    assert states == {"done": len(state["intakes"])}, states  # none failed, none pending
    assert len({intake[2] for intake in state["intakes"]}) == len(state["intakes"])


def _lease_left(url: str, holder: str) -> float:
    """Seconds the lease of `holder` has left, by the database's clock."""
    db = open_database(url)
    try:
        [(left,)] = database.execute_sql(
            "SELECT extract(epoch FROM expires_at - (now() AT TIME ZONE 'UTC'))"
            " FROM ingest_lease WHERE holder LIKE %s",
            (holder + "%",),
        ).fetchall()
    finally:
        db.close()
    return float(left)


def test_two_ingests_file_each_intake_once_and_take_over_a_killed_ones_claims(pg_url, tmp_path):
    run = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]
    first = Daemon(tmp_path / "a", pg_url, claim_timeout_seconds=CLAIM_SECONDS)
    paused = None
    try:
        with first:
            second = first.sibling(tmp_path / "b")
            second.ingest["claim_timeout_seconds"] = CLAIM_SECONDS
            # 1. the first ingest holds 300 acknowledged mails it has not filed (its filing
            # process paused) when the second starts: the second leaves them alone
            paused = _filing_process(first)
            os.kill(paused, signal.SIGSTOP)
            early = Senders(first, list(range(300)), run).join()
            with second:
                probe = Senders(second, [300], run, clients=1).join()
                # the second is up and filing (it took up what was free at its start)
                _wait_filed(pg_url, set(probe.acknowledged.values()), 60, all_done=False)
                held = [i for i in _state(pg_url)["intakes"] if i[3] == "pending"]
                assert len(held) == 300, len(held)
                assert all(i[4].startswith(_holder(first)) for i in held), held[:3]
                os.kill(paused, signal.SIGCONT)
                paused = None

                # 2. the other 1,699 at the same time, half to each
                to_first = Senders(first, list(range(301, TOTAL, 2)), run)
                to_second = Senders(second, list(range(302, TOTAL, 2)), run)
                sent = [early, probe, to_first.join(), to_second.join()]
                digests = {d for s in sent for d in s.acknowledged.values()}
                assert len(digests) == TOTAL
                started = time.monotonic()
                state = _wait_filed(pg_url, digests, 300)
                print(f"\n{TOTAL} deliveries filed {time.monotonic() - started:.1f} s after")
                _assert_filed_once(state, digests)
                assert len(state["entries"]) == len(state["intakes"]) == TOTAL
                # no duplicate filing work: each intake filed once, by the ingest that got it
                by_first, by_second = _filed_by(first), _filed_by(second)
                assert len(by_first) + len(by_second) == TOTAL
                assert set(by_first) == _received_by(first)
                assert set(by_second) == _received_by(second)

                # 3. kill -9 of the first (listener, filing process, parse workers) while it
                # holds the claims of 200 acknowledged mails it has not filed
                paused = _filing_process(first)
                os.kill(paused, signal.SIGSTOP)
                late = Senders(first, list(range(TOTAL, TOTAL + KILLED)), run).join()
                holder = _holder(first)
                for pid in [first.process.pid, *(pid for pid, _ in _children(first.process.pid))]:
                    os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                paused = None
                first.kill()  # reaps it
                lease_left = _lease_left(pg_url, holder)
                claimed = [i for i in _state(pg_url)["intakes"] if i[3] == "pending"]
                assert len(claimed) == KILLED
                assert all(i[4].startswith(holder) for i in claimed)
                while all(i[4].startswith(holder) for i in claimed):
                    assert time.monotonic() - killed < CLAIM_SECONDS + 30, "not taken over"
                    time.sleep(0.2)
                    claimed = [
                        i for i in _state(pg_url)["intakes"] if i[0] in {c[0] for c in claimed}
                    ]
                taken = time.monotonic() - killed
                assert taken > lease_left - 0.5, (taken, lease_left)  # not before the timeout
                everything = digests | set(late.acknowledged.values())
                state = _wait_filed(pg_url, everything, 120)
                print(
                    f"the killed ingest's {KILLED} claims: its lease had {lease_left:.1f} s"
                    f" left, taken over after {taken:.1f} s, filed after"
                    f" {time.monotonic() - killed:.1f} s"
                )
                _assert_filed_once(state, everything)
                assert len(state["entries"]) == len(state["intakes"]) == TOTAL + KILLED
                taken_over = set(_filed_by(second)) - set(by_second)
                assert taken_over == _received_by(first) - set(by_first)
                assert len(taken_over) == KILLED
    finally:
        if paused is not None:
            os.kill(paused, signal.SIGCONT)


def test_reprocess_leaves_a_running_ingests_mail_to_it_and_files_the_rest(
    account, db_url, tmp_path
):
    """`postroom reprocess` claims what it files: pending mail a live ingest holds is left
    to it; pending mail of a dead one and quarantined (failed) mail are filed, once."""
    running, dead = new_holder(), new_holder()
    beat(running, HOUR)
    _run_out(dead)
    held = _record(account.id, message("held by a running ingest"), running)
    orphan = _record(account.id, message("left by a dead ingest"), dead)
    failed = _record(account.id, message("quarantined once"), running)
    Intake.update(state="failed", error="parse timed out").where(Intake.id == failed).execute()
    result = Daemon(tmp_path / "cli", db_url).cli("reprocess")
    assert "2 intakes processed (1 left to running ingests)" in result.stdout
    states = dict(Intake.select(Intake.id, Intake.state).tuples())
    assert states[held] == "pending" and claims([held]) == {held: running}
    assert states[orphan] == "done" and states[failed] == "done"
    subjects = [e.subject for e in Entry.select().where(Entry.account_id == account.id)]
    assert sorted(subjects) == ["left by a dead ingest", "quarantined once"]
    # the command's own lease is given back: nothing it claimed stays held by it
    assert database.execute_sql(native_sql("SELECT count(*) FROM ingest_lease")).fetchone()[0] == 2
