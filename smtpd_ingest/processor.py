"""Parse, route and file committed intakes on a background thread, in arrival order."""

from __future__ import annotations

import logging
import queue
import threading

from smtpd_ingest.pipeline import Parser, process_intake
from storage.intake import pending_intake_ids

log = logging.getLogger(__name__)


class IntakeProcessor:
    """Work through intake ids handed over by the listener (and those left from a crash)."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="intake-processor", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, intake_ids: list[int]) -> None:
        """Queue intakes for processing; safe to call from any thread."""
        for intake_id in intake_ids:
            self._queue.put(intake_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the message at hand, then stop; the rest stays pending for the next start."""
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            left = pending_intake_ids()
        except Exception:
            log.exception("cannot read pending intakes")
            left = []
        if left:
            log.info("processing %d intakes left from an earlier run", len(left))
            self.submit(left)
        while True:
            intake_id = self._queue.get()
            if intake_id is None or self._stopping.is_set():
                return
            try:
                process_intake(intake_id, self.parser)
            except Exception:  # process_intake records failures; this is the last guard
                log.exception("intake=%s processing crashed", intake_id)
