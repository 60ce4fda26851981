"""Parse, route and file committed intakes in a process of their own, in arrival order.

The listener's process only reads DATA and commits; parsing and filing are Python-heavy and
would compete with its event loop for the GIL, so they run in a child process that is handed
the ids of new intakes (and takes up, at start, every intake left pending by a crash).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from queue import Empty

from postroom.config import Settings

log = logging.getLogger(__name__)


class IntakeProcessor:
    """Feed intake ids to the processor process."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._process = context.Process(
            target=_run, args=(settings, self._queue, os.getpid()), name="postroom-processor"
        )

    def start(self) -> None:
        self._process.start()

    def submit(self, intake_ids: list[int]) -> None:
        """Queue intakes for processing (never blocks the caller)."""
        for intake_id in intake_ids:
            self._queue.put(intake_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the processor finish the message at hand; the rest stays pending."""
        self._queue.put(None)
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


def _run(settings: Settings, queue, parent_pid: int) -> None:
    """The processor process: open the database, catch up, then follow the queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    os.nice(10)  # in a burst the listener comes first; filing catches up right after
    logging.basicConfig(
        level=settings.log.level.upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from smtpd_ingest.parser_pool import ParserPool
    from smtpd_ingest.pipeline import process_intake
    from storage.db import open_database
    from storage.intake import pending_intake_ids

    storage = settings.storage
    open_database(storage.url, busy_timeout_ms=storage.busy_timeout_ms,
                  max_page_count=storage.sqlite_max_page_count,
                  pool_size=storage.pool_size)  # fmt: skip
    parser = ParserPool(settings.ingest.parse_workers, settings.ingest.parse_timeout_seconds)
    try:
        left = pending_intake_ids()
        if left:
            log.info("processing %d intakes left from an earlier run", len(left))
        for intake_id in left:
            process_intake(intake_id, parser)
        while True:
            try:
                intake_id = queue.get(timeout=1.0)
            except Empty:
                if os.getppid() != parent_pid:  # the listener died (kill -9): stop too
                    return
                continue
            if intake_id is None:
                return
            try:
                process_intake(intake_id, parser)
            except Exception:  # process_intake records failures; this is the last guard
                log.exception("intake=%s processing crashed", intake_id)
    finally:
        parser.close()
