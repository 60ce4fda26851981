"""Group commit: messages that arrive while a transaction runs are stored in the next one."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from peewee import OperationalError

from storage.intake import IntakeBatchItem, Recorded, record_batch

log = logging.getLogger(__name__)
MAX_BATCH = 256


class IntakeWriter:
    """Commit intake records on one writer thread, many messages per transaction."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="intake-writer")
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
                outcomes = await loop.run_in_executor(self._executor, _commit, items)
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


def _commit(items: list[IntakeBatchItem]) -> list[list[Recorded] | BaseException]:
    """Store a batch; if the batch fails, store each message on its own."""
    try:
        return list(record_batch(items))
    except Exception as error:  # noqa: BLE001 - handed to the waiting sessions as 4xx
        if len(items) == 1 or isinstance(error, OperationalError):
            return [error] * len(items)
        log.warning("batch of %d failed (%s); storing one by one", len(items), error)
    outcomes: list[list[Recorded] | BaseException] = []
    for item in items:
        try:
            outcomes.append(record_batch([item])[0])
        except Exception as error:  # noqa: BLE001 - handed to the waiting session as 4xx
            outcomes.append(error)
    return outcomes
