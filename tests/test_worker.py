"""The worker as operators run it: `postroom worker` processes, leases, failures, takeover.

Schedules are shortened through the settings (`[worker] poll_seconds = 0.5`, leases of 2 s);
each run of a job is a debug line "job <name> ran in slot <start> (holder <id>, …)" that the
tests count across the processes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.users import create_user
from postroom import leases
from postroom.config import load_settings
from postroom.worker import Every, Job, JobRunner
from storage import accounts
from storage import notifications as store
from storage.db import open_database
from storage.models import Event, JobLease, Notification
from tests.daemon import Daemon, reserve_port
from tests.mail import message
from tests.test_notifications import Sink

REPO_ROOT = Path(__file__).resolve().parents[1]
RAN = re.compile(r"job (\w+) ran in slot (\S+) \(holder (\S+),")
POLL, LEASE = 0.5, 2.0


class WorkerProcess:
    """One `postroom worker` with its own log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "postroom", "-c", str(config), "worker"],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        ready = self.wait_for("worker ready")
        self.holder = re.search(r"postroom worker ready \((\S+)\)", ready)[1]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, words: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while words not in self.text():
            assert self.process.poll() is None, f"the worker exited:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"{words!r} not logged:\n{self.text()[-3000:]}"
            time.sleep(0.05)
        return self.text()

    def runs(self) -> list[tuple[str, str, str]]:
        return RAN.findall(self.text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


def write_config(folder: Path, db_url: str, **outbound: str) -> Path:
    config = folder / "postroom.toml"
    lines = [
        "[storage]",
        f"url = {json.dumps(db_url)}",
        f"data_dir = {json.dumps(str(folder))}",
        "backup_interval_hours = 0",
        "[ingest]",
        'domains = ["in.example"]',
        "[worker]",
        f"poll_seconds = {POLL}",
        f"lease_seconds = {LEASE}",
        "[log]",
        'level = "debug"',
        "[outbound]",
        *(f"{key} = {json.dumps(value)}" for key, value in outbound.items()),
    ]
    config.write_text("\n".join(lines) + "\n")
    subprocess.run(
        [sys.executable, "-m", "postroom", "-c", str(config), "init"],
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
    )
    return config


def wait_until(condition, timeout: float = 15, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def team(db_url: str):
    """An account with an author and a colleague who is @mentioned; the database stays open."""
    db = open_database(db_url)
    account = accounts.create_account("Agency")
    author = create_user(account.id, "anna@agency.test", "member", "correct horse battery")
    colleague = create_user(account.id, "ben@agency.test", "member", "correct horse battery")
    project = domain_projects.create_project(account.id, "Bakery")
    return db, project, author, colleague


def mention(project, author, number: int) -> None:
    domain_entries.add_manual_entry(project, author, kind="note", text=f"@ben look at {number}")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_run_each_slot_once_and_one_takes_over_when_the_other_is_killed(
    db_url, tmp_path
):
    config = write_config(tmp_path, db_url)
    db, project, author, colleague = team(db_url)
    first = WorkerProcess(config, tmp_path / "first.log")
    second = WorkerProcess(config, tmp_path / "second.log")
    try:
        started = time.monotonic()
        for number in range(8):
            mention(project, author, number)
            time.sleep(0.25)
        wait_until(
            lambda: not Event.select().where(Event.processed_at.is_null()).exists(),
            what="both workers to notify",
        )
        # every event notified exactly once, though both workers were polling
        assert Notification.select().where(Notification.user == colleague.id).count() == 8
        assert Notification.select().count() == 8

        runs = first.runs() + second.runs()
        per_slot = Counter((job, slot) for job, slot, _ in runs)
        assert max(per_slot.values()) == 1, [k for k, n in per_slot.items() if n > 1]
        notify_slots = {slot for job, slot, _ in runs if job == "notify"}
        assert len(notify_slots) >= (time.monotonic() - started) / POLL * 0.6

        holder = JobLease.get_by_id("notify").holder
        victim, survivor = (first, second) if holder == first.holder else (second, first)
        assert holder == victim.holder
        victim.process.kill()  # kill -9: no chance to hand the lease back
        victim.process.wait()
        killed = time.monotonic()
        mention(project, author, 99)
        wait_until(
            lambda: JobLease.get_by_id("notify").holder == survivor.holder,
            timeout=LEASE + 8,
            what="the takeover",
        )
        took = time.monotonic() - killed
        assert LEASE - POLL - 0.3 <= took <= LEASE + 5, took
        wait_until(lambda: Notification.select().count() == 9, what="the survivor's run")
        before_kill = {slot for job, slot, _ in runs if job == "notify"}
        wait_until(
            lambda: {s for j, s, _ in survivor.runs() if j == "notify"} - before_kill,
            what="the survivor's notify runs in its log",
        )

        assert survivor.stop() == 0  # SIGTERM: finish, hand the leases back, exit 0
        assert "worker stopped" in survivor.text()
        assert not JobLease.select().where(JobLease.holder == survivor.holder).exists()
    finally:
        for worker in (first, second):
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        db.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failing_job_is_logged_and_retried_and_the_worker_lives_on(db_url, tmp_path):
    port = reserve_port()  # nothing listens here yet: notification mail cannot be sent
    config = write_config(
        tmp_path,
        db_url,
        smtp_url=f"smtp://127.0.0.1:{port}?security=none",
        from_address="postroom@agency.test",
    )
    db, project, author, colleague = team(db_url)
    worker = WorkerProcess(config, tmp_path / "worker.log")
    sink = Sink(port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    started = False
    try:
        mention(project, author, 1)
        log = worker.wait_for("job notify_mail failed (holder")
        assert "ConnectionRefusedError" in log  # the first failure with its traceback
        worker.wait_for("job notify_mail failed again (2 in a row")
        assert worker.process.poll() is None
        # the in-app side did not wait for the mail server
        [note] = Notification.select().where(Notification.user == colleague.id)
        assert note.email_due == "immediate" and note.emailed_at is None

        controller.start()
        started = True
        wait_until(lambda: sink.to("ben@agency.test"), what="the retried mail")
        worker.wait_for("job notify_mail works again after")
        assert Notification.get_by_id(note.id).emailed_at is not None
        assert worker.stop() == 0
        assert len(sink.to("ben@agency.test")) == 1
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
        if started:
            controller.stop()
        db.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_postroom_run_notifies_too_because_it_runs_the_worker_in_the_same_process(db_url, tmp_path):
    with Daemon(tmp_path, db_url, command="run") as daemon:
        assert "postroom worker ready" in daemon.log_text()
        db = open_database(db_url)
        try:
            account_id = daemon.account["id"]
            project = domain_projects.create_project(
                account_id, "Bakery", customer_addresses=["anna@bakery.test"]
            )
            member = create_user(account_id, "ben@agency.test", "member", "correct horse battery")
            store.set_following(project.id, member.id, True)
            daemon.send(message("Opening hours", sender="anna@bakery.test"))
            row = wait_until(
                lambda: Notification.get_or_none(Notification.user == member.id),
                timeout=20,
                what="the notification",
            )
            assert row.text == "Mail from anna@bakery.test in Bakery: Opening hours"
        finally:
            db.close()
    assert "worker stopped" in daemon.log_text()


def test_a_lease_is_one_workers_until_it_expires_or_is_given_back(storage_db):
    now = leases.database_now()
    later = now + dt.timedelta(seconds=LEASE + 0.1)
    assert leases.acquire("notify", "a", LEASE, now=now)  # first use inserts the row
    assert not leases.acquire("notify", "b", LEASE, now=now)
    assert leases.acquire("notify", "a", LEASE, now=now)  # the holder extends it
    assert not leases.renew("notify", "b", LEASE)
    assert leases.acquire("notify", "b", LEASE, now=later)  # a dead holder's lease ran out
    assert not leases.mark_run("notify", "a", later)  # only the holder records a run
    assert leases.release("notify", "b") and not leases.release("notify", "b")
    assert leases.acquire("notify", "a", LEASE, now=now)  # given back: free at once
    assert JobLease.get_by_id("notify").holder == "a"


def test_a_slot_runs_once_whoever_ticks_and_a_failed_run_is_tried_again(storage_db, caplog):
    caplog.set_level(logging.INFO, logger="postroom.worker")
    settings = load_settings(None)
    runs = []

    def job(_settings):
        runs.append(len(runs))
        if len(runs) == 1:
            raise ConnectionRefusedError("the mail server is down")
        return "done"

    hourly = Job("hourly", Every(3600), job)
    first, second = JobRunner(settings, "a", hourly), JobRunner(settings, "b", hourly)
    first.tick()  # fails: logged, the slot stays open
    assert runs == [0] and JobLease.get_by_id("hourly").last_run_at is None
    assert "job hourly failed (holder a)" in caplog.text
    assert "ConnectionRefusedError: the mail server is down" in caplog.text
    first.tick()  # backing off: not yet
    assert runs == [0]
    first.not_before = 0
    first.tick()
    assert runs == [0, 1] and "job hourly works again after 1 failed runs" in caplog.text
    leases.release("hourly", "a")
    second.tick()  # the lease is free, but this slot has run
    first.tick()
    assert runs == [0, 1]
