"""Parse, route and file committed intakes in a process of their own, in arrival order
(mail parsed in a worker when its parse ends: smtpd_ingest/flow.py).

The listener's process only reads DATA and commits; parsing and filing are Python-heavy and
would compete with its event loop for the GIL, so they run in a child process that is handed
the ids of new intakes.

Several ingest processes may share one database: each intake is claimed by the one that files
it (storage.intake, claims). The listener records its mail claimed by this ingest (`holder`);
the child keeps the ingest's lease alive (a heartbeat every third of
`[ingest] claim_timeout_seconds`) and takes up, at start and every SWEEP_SECONDS, only what
is free: intakes of ingests whose lease ran out or was given back (a crash, a stop), and
unclaimed ones. A clean stop, or the listener's death, gives the lease back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing
import os
import signal
import sys
import time
from queue import Empty

from postroom.config import Settings

log = logging.getLogger(__name__)
GATHER_SECONDS = 0.05  # how long a batch waits for more intakes to arrive
SWEEP_SECONDS = 10.0  # how often the processor looks for intakes left waiting, busy or idle
STALE_SECONDS = 30.0  # an unclaimed intake pending this long was left by a tool that died
BEATS = 3  # heartbeats per claim timeout: two may fail (a database hiccup) and the lease holds
NICE = 10  # this process, relative to the listener
WORKER_NICE = 10  # parse workers, relative to this process
INLINE_PARSE_BYTES = 64 << 10  # smaller mail is parsed here, bigger in the workers
CHECKPOINT_PAGES = 10_000  # 40 MB of WAL (measured 1,000, 8,192, 16,384 in bench/ingest.py)


class IntakeProcessor:
    """Feed intake ids to the processor process."""

    def __init__(self, settings: Settings) -> None:
        from storage.intake import new_holder

        context = multiprocessing.get_context("spawn")
        self.holder = new_holder()  # this ingest's claims: the listener records mail with it
        self._ttl = settings.ingest.claim_timeout_seconds
        self._queue = context.Queue()
        self._process = context.Process(
            target=_run,
            args=(settings, self._queue, os.getpid(), self.holder),
            name="postroom-processor",
        )
        self._waiting: list[int] = []

    def start(self) -> None:
        """Take the lease before the first mail is recorded under it; start the child."""
        from storage.intake import beat

        try:
            beat(self.holder, self._ttl)
        except Exception:  # the database is away: the child takes it once it is back
            log.exception("taking the intake lease failed")
        self._process.start()

    def submit(self, intake_ids: list[int]) -> None:
        """Queue intakes for processing (never blocks the caller).

        Ids submitted during one event-loop turn travel together: one hand-off per group
        commit instead of one per message.
        """
        if not self._waiting:
            try:
                asyncio.get_running_loop().call_soon(self._flush)
            except RuntimeError:  # no loop (a tool): hand over at once
                self._queue.put(list(intake_ids))
                return
        self._waiting.extend(intake_ids)

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        if waiting:
            self._queue.put(waiting)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the processor finish the message at hand; the rest stays pending."""
        self._flush()
        self._queue.put(None)
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        _release(self.holder)


def _release(holder: str) -> None:
    """Give the lease back: the intakes left pending are free for any ingest at once."""
    from storage.intake import release

    try:
        release(holder)
    except Exception:  # the lease runs out instead
        log.exception("giving the intake lease back failed")


WAKE: list[int] = []  # put on the queue when a parse in a worker ends: no ids, a turn


def _next_batch(
    queue, parent_pid: int, room: int, due: float | None, sweep=None
) -> list[int] | None:
    """Wait for intake ids, at most `due` seconds (None: until some come); gather those that
    follow within GATHER_SECONDS, up to `room` in all.

    A batch is one transaction: fewer commits (each an fsync on SQLite) than one per
    message. [] means a parse ended or `due` passed; None means stop (told to, or the
    listener is gone).
    """
    batch: list[int] = []
    until = None if due is None else time.monotonic() + due
    while not batch:
        wait = 1.0 if until is None else min(1.0, max(0.0, until - time.monotonic()))
        try:
            ids = queue.get(timeout=wait)
        except Empty:
            if os.getppid() != parent_pid:  # the listener died (kill -9): stop too
                return None
            if sweep is not None:
                batch += sweep()
            if batch or until is None or time.monotonic() < until:
                continue
            return batch
        if ids is None:
            return None
        if not ids:  # woken
            return batch
        batch += ids
    deadline = time.monotonic() + GATHER_SECONDS
    while len(batch) < room:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            ids = queue.get(timeout=remaining)
        except Empty:
            break
        if ids is None:
            queue.put(None)  # file what we have, then stop
            break
        batch += ids
    return batch


def _run(settings: Settings, queue, parent_pid: int, holder: str) -> None:
    """The processor process: open the database, catch up, then follow the queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    logging.basicConfig(
        level=settings.log.level.upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from smtpd_ingest.flow import BATCH, IntakeFlow
    from smtpd_ingest.parser_pool import ParserPool
    from storage.db import is_sqlite, open_database
    from storage.intake import beat, claim_waiting, forget_dead_here

    storage = settings.storage
    db = open_database(
        storage.url,
        busy_timeout_ms=storage.busy_timeout_ms,
        max_page_count=storage.sqlite_max_page_count,
        pool_size=storage.pool_size,
    )
    if is_sqlite(db):
        # Entries are committed to the main file with synchronous=FULL (on disk when the
        # commit returns); only then are their intakes marked done, in the received-mail file
        # (storage.filing.file_inbound). That mark needs no sync of its own: the listener's
        # next sync of that file puts it on disk, and a mark lost to a power cut means the
        # intake is filed again, which finds its entry and marks it done.
        db.mail_pragma("synchronous", "NORMAL")
        # This process runs the WAL checkpoints (the listener's connection leaves them to
        # it), every CHECKPOINT_PAGES rather than SQLite's 1,000: pages written again and
        # again (indexes, the full-text index) are copied once per checkpoint, not ten times.
        db.pragma("wal_autocheckpoint", CHECKPOINT_PAGES, permanent=True)
    # In a burst the listener comes first: filing and parsing yield the CPU to it and catch
    # up right after. The lock this process holds while it files stays short (a batch of
    # BATCH, worked out before the lock is taken), so a lower priority costs the listener's
    # commits little (measured: nice 0, 5, 10, 12 in bench/ingest.py; 10 kept the best
    # balance of acknowledged and filed rate).
    os.nice(NICE)
    parser = ParserPool(
        settings.ingest.parse_workers,
        settings.ingest.parse_timeout_seconds,
        nice=WORKER_NICE,
        inline_bytes=INLINE_PARSE_BYTES,
    )
    ttl = settings.ingest.claim_timeout_seconds
    swept = beaten = time.monotonic()

    def sweep() -> list[int]:
        """Keep the lease (a heartbeat every ttl / BEATS); every SWEEP_SECONDS, idle or not,
        claim the intakes that are free: acknowledged by an ingest that died (kill -9, power
        loss) or stopped while this one runs on the same database; unclaimed ones that
        waited STALE_SECONDS; and this one's own left pending while the database was away."""
        nonlocal swept, beaten
        if time.monotonic() - beaten >= ttl / BEATS:
            beaten = time.monotonic()
            try:
                beat(holder, ttl)
            except Exception:  # the database is away: the next beat may still be in time
                log.exception("renewing the intake lease failed")
        if time.monotonic() - swept < SWEEP_SECONDS:
            return []
        swept = time.monotonic()
        try:
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            found = claim_waiting(holder, now - dt.timedelta(seconds=STALE_SECONDS))
        except Exception:  # the database is away: try again at the next sweep
            log.exception("looking for left intakes failed")
            return []
        if found:
            log.info("taking up %d intakes left waiting", len(found))
        return found

    flow = IntakeFlow(parser, wake=lambda: queue.put(WAKE), holder=holder)
    queue.cancel_join_thread()  # what this process puts is a wake-up call, never lost mail
    try:
        beat(holder, ttl)
        dead = forget_dead_here(holder)
        if dead:
            log.info("ingest processes gone, their intakes free: %s", ", ".join(dead))
        left = claim_waiting(holder)
        if left:
            log.info("processing %d intakes left from an earlier run", len(left))
        flow.add(left)
        while True:
            flow.add(sweep())  # on its timer: a steady stream never leaves the queue idle
            room = max(0, BATCH - flow.queued)  # a batch's worth waiting: no gathering
            due = flow.due() if room else 0.0
            batch = _next_batch(queue, parent_pid, room, due, sweep)
            if batch is None:  # told to stop, or the listener is gone: nothing comes any more
                _release(holder)
                return
            flow.add(batch)
            try:
                flow.step()
            except Exception as error:  # they stay pending (sweep, next start)
                log.exception("intakes in progress left pending")
                flow.reset(error)
    finally:
        parser.close(kill=True)


def reprocess_intakes(parser, ttl_seconds: float) -> tuple[int, int]:
    """File again what no running ingest files: pending mail whose claim is free (a dead
    ingest's, unclaimed) and quarantined (failed) mail, claimed first under a lease of its
    own, so that no ingest takes it up meanwhile; pending mail a live ingest holds is left to
    it. For `postroom reprocess`. Returns (intakes processed, intakes left to ingests)."""
    from smtpd_ingest.pipeline import process_intake
    from storage.intake import beat, claim_failed, claim_waiting, new_holder, release
    from storage.models import Intake

    holder = new_holder()
    beat(holder, ttl_seconds)
    try:
        beaten = time.monotonic()
        pending = claim_waiting(holder)
        claimed = sorted([*pending, *claim_failed(holder)])
        held = Intake.select().where(Intake.state == "pending").count() - len(pending)
        for intake_id in claimed:
            if time.monotonic() - beaten > ttl_seconds / 3:  # outlive the slowest parse
                beat(holder, ttl_seconds)
                beaten = time.monotonic()
            process_intake(intake_id, parser, holder)
        return len(claimed), max(0, held)
    finally:
        release(holder)
