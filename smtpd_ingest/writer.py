"""Group commit: messages that arrive while a transaction runs are stored in the next one."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from peewee import OperationalError

from storage.db import is_sqlite
from storage.intake import IntakeBatchItem, Recorded, record_batch
from storage.models import database

log = logging.getLogger(__name__)
MAX_BATCH = 256


class IntakeWriter:
    """Commit intake records on one writer thread, many messages per transaction."""

    def __init__(self, busy_timeout_ms: int = 5000) -> None:
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix="intake-writer", initializer=_prepare_connection
        )
        self._busy_seconds = busy_timeout_ms / 1000
        self._pending: list[tuple[IntakeBatchItem, asyncio.Future]] = []
        self._draining = False
        self._task: asyncio.Task | None = None

    async def record(self, item: IntakeBatchItem) -> list[Recorded]:
        """Store one message; return once it is committed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((item, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                items = [item for item, _ in batch]
                outcomes = await loop.run_in_executor(
                    self._executor, _commit, items, self._busy_seconds
                )
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._draining = False

    async def wait_idle(self) -> None:
        """Return once nothing is waiting to be committed."""
        while self._draining or self._pending:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _prepare_connection() -> None:
    """The writer thread's SQLite connection waits for the write lock in _record, not in
    SQLite's busy handler, which sleeps in steps of up to 100 ms.

    WAL checkpoints stay on (every 1,000 pages, after a commit): with this connection the
    only steady writer, they complete and the WAL is reused, so it stays small under load.
    """
    if is_sqlite():
        database.execute_sql("PRAGMA busy_timeout = 0")


def _record(items: list[IntakeBatchItem], busy_seconds: float) -> list[list[Recorded]]:
    """record_batch, retried every millisecond while another process holds the write lock."""
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            return record_batch(items)
        except OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline or not is_sqlite():
                raise
            time.sleep(0.001)


def _commit(
    items: list[IntakeBatchItem], busy_seconds: float
) -> list[list[Recorded] | BaseException]:
    """Store a batch; if the batch fails, store each message on its own."""
    try:
        return list(_record(items, busy_seconds))
    except Exception as error:  # noqa: BLE001 - handed to the waiting sessions as 4xx
        if len(items) == 1 or isinstance(error, OperationalError):
            return [error] * len(items)
        log.warning("batch of %d failed (%s); storing one by one", len(items), error)
    outcomes: list[list[Recorded] | BaseException] = []
    for item in items:
        try:
            outcomes.append(_record([item], busy_seconds)[0])
        except Exception as error:  # noqa: BLE001 - handed to the waiting session as 4xx
            outcomes.append(error)
    return outcomes
