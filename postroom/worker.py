"""The worker: APScheduler ticks every job; a lease and the job's schedule decide if it runs.

Each job has a schedule of *slots* (every N seconds from the epoch, or a day starting at an
hour UTC). At each tick a worker skips the job if its slot has already run (`last_run_at` in
the slot, by whichever worker), else takes the job's lease and runs it. So with any number of
workers a job runs once per slot, one worker at a time; a worker that dies keeps its leases
until they expire, then another takes over. A job that fails is logged and tried again at a
later tick (backing off while it keeps failing); the worker itself never dies of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from postroom import leases
from postroom.config import Settings
from postroom.jobs import JobDeferred, backup, digest, maintenance, notify, retention
from postroom.outbound_send import send_due
from storage.db import is_sqlite
from storage.models import database

log = logging.getLogger("postroom.worker")

EPOCH = dt.datetime(1970, 1, 1)
DAY_SECONDS = 24 * 3600.0
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True)
class Every:
    """Slots of `seconds` each, counted from the epoch (so all workers agree on them)."""

    seconds: float

    def slot_start(self, now: dt.datetime) -> dt.datetime:
        elapsed = (now - EPOCH).total_seconds()
        return EPOCH + dt.timedelta(seconds=math.floor(elapsed / self.seconds) * self.seconds)

    def __str__(self) -> str:
        if self.seconds >= 3600:
            return f"every {self.seconds / 3600:g} h"
        return f"every {self.seconds:g} s"


@dataclass(frozen=True)
class DailyAt:
    """One slot a day, starting at `hour`:00 UTC."""

    hour: int

    def slot_start(self, now: dt.datetime) -> dt.datetime:
        start = now.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        return start if start <= now else start - dt.timedelta(days=1)

    def __str__(self) -> str:
        return f"daily at {self.hour:02d}:00 UTC"


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Every | DailyAt
    run: Callable[[Settings], str | None]


def registry(settings: Settings) -> list[Job]:
    """The singleton jobs this installation runs (the database is open)."""
    poll = settings.worker.poll_seconds
    jobs = [
        Job("outbound", Every(poll), send_outbound),
        Job("notify", Every(poll), notify.process_events),
        Job("notify_mail", Every(poll), notify.send_immediate),
        Job("digest", DailyAt(settings.worker.digest_hour), digest.send_digests),
        Job("retention", Every(DAY_SECONDS), retention.purge),
    ]
    hours = settings.storage.backup_interval_hours
    if hours > 0 and is_sqlite():
        jobs.append(Job("backup", Every(hours * 3600), backup.run))
    names = frozenset([job.name for job in jobs] + ["backup", "maintenance"])
    run_maintenance = functools.partial(maintenance.run, known_jobs=names)
    jobs.append(Job("maintenance", Every(DAY_SECONDS), run_maintenance))
    return jobs


def send_outbound(settings: Settings) -> str | None:
    """Job: send queued mail to customers (postroom.outbound_send)."""
    sent, failed = send_due(settings)
    return f"{sent} mails sent, {failed} failed" if sent or failed else None


class JobRunner:
    """Run one job at each tick if its slot is due and this worker holds its lease."""

    def __init__(self, settings: Settings, holder: str, job: Job) -> None:
        self.settings = settings
        self.holder = holder
        self.job = job
        self.lease_seconds = settings.worker.lease_seconds
        self.failures = 0
        self.not_before = 0.0  # monotonic time; set while backing off or deferred
        self._busy = threading.Lock()

    def tick(self) -> None:
        """Called by the scheduler; never raises."""
        if not self._busy.acquire(blocking=False):
            return  # the previous tick is still running in this process
        try:
            if time.monotonic() >= self.not_before:
                self._tick()
        except Exception as error:  # noqa: BLE001 - a job must never stop the worker
            self._failed(error)
        finally:
            self._busy.release()

    def _tick(self) -> None:
        name = self.job.name
        now = leases.database_now()
        slot = self.job.schedule.slot_start(now)
        if self._slot_done(slot):
            return
        if not leases.acquire(name, self.holder, self.lease_seconds, now=now):
            return
        if self._slot_done(slot):  # another worker finished it while we took the lease
            return
        started = time.monotonic()
        try:
            with _Heartbeat(name, self.holder, self.lease_seconds):
                summary = self.job.run(self.settings)
        except JobDeferred as deferred:
            self.not_before = time.monotonic() + deferred.retry_seconds
            log.debug("job %s deferred: %s", name, deferred)
            return
        leases.mark_run(name, self.holder, now)
        elapsed_ms = (time.monotonic() - started) * 1000
        if self.failures:
            log.info("job %s works again after %d failed runs", name, self.failures)
            self.failures, self.not_before = 0, 0.0
        if summary:
            log.info("job %s: %s (%.0f ms)", name, summary, elapsed_ms)
        log.debug(
            "job %s ran in slot %s (holder %s, %.0f ms)",
            name,
            slot.isoformat(),
            self.holder,
            elapsed_ms,
        )

    def _slot_done(self, slot: dt.datetime) -> bool:
        lease = leases.lease_of(self.job.name)
        return lease is not None and lease.last_run_at is not None and lease.last_run_at >= slot

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        poll = self.settings.worker.poll_seconds
        wait = min(MAX_BACKOFF_SECONDS, poll * 2 ** (self.failures - 1))
        self.not_before = time.monotonic() + wait
        if self.failures == 1:
            log.exception(
                "job %s failed (holder %s); trying again in %.1f s",
                self.job.name,
                self.holder,
                wait,
            )
        else:
            log.error(
                "job %s failed again (%d in a row; next try in %.1f s): %s: %s",
                self.job.name,
                self.failures,
                wait,
                type(error).__name__,
                error,
            )
        if not database.is_closed():
            with contextlib.suppress(Exception):  # a broken connection is opened afresh
                database.close()


class _Heartbeat:
    """Renew a lease while its job runs, so a long backup is not taken over midway."""

    def __init__(self, name: str, holder: str, ttl_seconds: float) -> None:
        self.name, self.holder, self.ttl = name, holder, ttl_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.ttl / 3):
                try:
                    if not leases.renew(self.name, self.holder, self.ttl):
                        log.warning(
                            "job %s: lease lost while running (holder %s)", self.name, self.holder
                        )
                except Exception:
                    log.exception("job %s: cannot renew its lease", self.name)
        finally:
            if not database.is_closed():
                database.close()


def build_scheduler(settings: Settings, holder: str, background: bool = True) -> BaseScheduler:
    """An APScheduler with a tick for every job of `registry(settings)` (not started)."""
    check_worker_settings(settings)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # no line per tick
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)  # skips: see below
    cls = BackgroundScheduler if background else BlockingScheduler
    scheduler = cls(
        timezone=dt.UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    epoch = EPOCH.replace(tzinfo=dt.UTC)
    for job in registry(settings):
        runner = JobRunner(settings, holder, job)
        tick = min(settings.worker.poll_seconds, getattr(job.schedule, "seconds", DAY_SECONDS))
        trigger = IntervalTrigger(seconds=tick, start_date=epoch, timezone=dt.UTC)
        scheduler.add_job(runner.tick, trigger, id=job.name, name=job.name)
        log.info("job %s: %s", job.name, job.schedule)
    scheduler.add_listener(_scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _scheduler_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MAX_INSTANCES:
        log.debug("job %s: tick skipped, the last one is still running", event.job_id)
    elif event.exception is not None:  # JobRunner.tick catches everything; a last guard
        log.error("job %s crashed its tick: %r", event.job_id, event.exception)


def check_worker_settings(settings: Settings) -> None:
    """Refuse settings the scheduler cannot work with (ValueError naming the key)."""
    worker = settings.worker
    if worker.poll_seconds <= 0:
        raise ValueError("worker.poll_seconds: must be above 0")
    if worker.lease_seconds <= 0:
        raise ValueError("worker.lease_seconds: must be above 0")
    if not 0 <= worker.digest_hour <= 23:
        raise ValueError("worker.digest_hour: must be an hour from 0 to 23")


class Worker:
    """The scheduler of this process with its lease holder name; stop() hands leases back."""

    def __init__(self, settings: Settings, *, holder: str | None = None) -> None:
        self.settings = settings
        self.holder = holder or leases.new_holder()
        self.scheduler = build_scheduler(settings, self.holder, background=True)

    def start(self) -> None:
        if not is_sqlite():
            log.info("backups: %s", backup.PG_ADVICE)
        if not self.settings.outbound.smtp_url:
            log.info(
                "notification email goes out only for accounts with their own mail server "
                "(Settings) until [outbound] smtp_url is set"
            )
        self.scheduler.start()
        log.info("worker started (holder %s)", self.holder)

    def stop(self) -> None:
        """Let running jobs finish, then release this worker's leases for the others."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        try:
            leases.release_all(self.holder)
        except Exception:
            log.exception("cannot release the leases of %s; they expire by themselves", self.holder)
        log.info("worker stopped (holder %s)", self.holder)
