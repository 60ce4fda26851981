"""Group commit: messages that arrive while a transaction runs are stored in the next one.

On SQLite a batch of small messages is committed right on the event loop, as one step of the
loop turn that received them: the hand-off to a thread and back cost more than the commit
(a few inserts), and the sessions waited for both. The loop never waits for the write lock
there: if another process holds it, or the batch carries a big message (spooled, or more than
INLINE_BYTES), the batch goes to the writer thread, which retries the lock every 0.2 ms.
PostgreSQL always commits on the thread (a network round trip per statement).

Durability on SQLite is that of synchronous=FULL, with the fsync moved off the loop and out of
the write lock: the listener's connections commit with synchronous=NORMAL, which writes the WAL
frames and releases the lock, and WalSync then runs fdatasync() on the WAL file on the writer
thread; only after that are the batch's sessions answered. FULL does the same fdatasync on the
same file, but inside COMMIT, holding the write lock (so the filing process waited for it too)
and, on the loop, holding up every session.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from peewee import OperationalError

from storage.db import MAIL_SCHEMA, is_sqlite
from storage.intake import IntakeBatchItem, Recorded, record_batch
from storage.models import database

log = logging.getLogger(__name__)
MAX_BATCH = 256
INLINE_BYTES = 1 << 20  # a batch committed on the loop holds at most this many raw bytes
LOCK_POLL_SECONDS = 0.0002  # how often the writer thread asks again for a held lock
OWN_CHECKPOINT_PAGES = 65_536  # 256 MB; the filing process checkpoints at 10,000 pages


class IntakeWriter:
    """Commit intake records on one writer thread, many messages per transaction; the new
    intakes are claimed by `holder` (this ingest: storage.intake, claims)."""

    def __init__(self, busy_timeout_ms: int = 5000, holder: str | None = None) -> None:
        self._holder = holder
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix="intake-writer", initializer=_prepare_connection
        )
        self._busy_seconds = busy_timeout_ms / 1000
        self._pending: list[tuple[IntakeBatchItem, asyncio.Future]] = []
        self._draining = False
        self._task: asyncio.Task | None = None
        self._inline = is_sqlite()
        self._wal: WalSync | None = None
        if self._inline:
            _prepare_connection()  # the loop's own connection: never waits for the lock
            self._wal = WalSync(str(database.obj.mail_path))

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
            if self._inline:
                await asyncio.sleep(0)  # let the messages of this loop turn join the batch
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                items = [item for item, _ in batch]
                outcomes = self._commit_inline(items) if self._inline else None
                if outcomes is None:
                    outcomes = await loop.run_in_executor(
                        self._executor, _commit, items, self._busy_seconds, self._holder
                    )
                if self._wal is not None:
                    outcomes = await self._synced(outcomes)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._draining = False

    def _commit_inline(self, items: list[IntakeBatchItem]) -> list[list[Recorded]] | None:
        """Commit small messages on the loop; None: leave the batch to the writer thread."""
        if any(item.spool is not None for item in items):
            return None
        if sum(item.size for item in items) > INLINE_BYTES:
            return None
        try:
            return list(record_batch(items, self._holder))
        except Exception as error:  # noqa: BLE001 - the thread retries, and answers 4xx
            if not (isinstance(error, OperationalError) and "locked" in str(error)):
                log.warning("committing on the loop failed (%s); retrying on the thread", error)
            return None

    async def _synced(self, outcomes: list) -> list[list[Recorded] | BaseException]:
        """The outcomes of a batch committed with synchronous=NORMAL, once it is on disk.

        The sync runs on the writer thread, idle meanwhile: one batch is in flight at a time.
        """
        if all(isinstance(outcome, BaseException) for outcome in outcomes):
            return outcomes  # nothing was committed
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._wal.sync)
        except OSError as error:  # answered 4xx: the MTA sends it again; stored once
            log.error("syncing the write-ahead log %s failed: %s", self._wal.path, error)
            return [error] * len(outcomes)
        return outcomes

    async def wait_idle(self) -> None:
        """Return once nothing is waiting to be committed."""
        while self._draining or self._pending:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._wal is not None:
            self._wal.close()


class WalSync:
    """Put the listener's commits on disk: fdatasync() the write-ahead log.

    fdatasync flushes the file, not the descriptor, so this one sees the frames SQLite wrote
    through its own. The file is opened again whenever the path names another file (a new WAL
    after every connection had closed it); if the path names none, the sync fails: an unlinked
    WAL is gone at the next close, and what it holds must not be acknowledged.
    """

    def __init__(self, db_path: str) -> None:
        self.path = db_path + "-wal"
        self._fd: int | None = None
        self._inode = 0

    def sync(self) -> None:
        inode = os.stat(self.path).st_ino
        if self._fd is None or inode != self._inode:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self._inode = os.fstat(self._fd).st_ino
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _prepare_connection() -> None:
    """Ready a connection of the listener (the loop's or the writer thread's) for SQLite.

    It waits for the write lock in _record, not in SQLite's busy handler, which sleeps in
    steps of up to 100 ms. It leaves WAL checkpoints to the filing process, which commits as
    often: a checkpoint writes and syncs the database file, which on the event loop would
    hold up every session. Only if the WAL grew far past the filing process's threshold (no
    filing process runs) does it checkpoint itself. It commits without an fsync: the writer
    syncs the WAL (WalSync) before it answers.
    """
    if is_sqlite():
        database.execute_sql(f"PRAGMA {MAIL_SCHEMA}.synchronous = NORMAL")
        database.execute_sql("PRAGMA busy_timeout = 0")
        database.execute_sql(f"PRAGMA wal_autocheckpoint = {OWN_CHECKPOINT_PAGES}")


def _record(
    items: list[IntakeBatchItem], busy_seconds: float, holder: str | None
) -> list[list[Recorded]]:
    """record_batch, retried every LOCK_POLL_SECONDS while another process holds the lock."""
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            return record_batch(items, holder)
        except OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline or not is_sqlite():
                raise
            time.sleep(LOCK_POLL_SECONDS)


def _commit(
    items: list[IntakeBatchItem], busy_seconds: float, holder: str | None = None
) -> list[list[Recorded] | BaseException]:
    """Store a batch; if the batch fails, store each message on its own."""
    try:
        return list(_record(items, busy_seconds, holder))
    except Exception as error:  # noqa: BLE001 - handed to the waiting sessions as 4xx
        if len(items) == 1 or isinstance(error, OperationalError):
            return [error] * len(items)
        log.warning("batch of %d failed (%s); storing one by one", len(items), error)
    outcomes: list[list[Recorded] | BaseException] = []
    for item in items:
        try:
            outcomes.append(_record([item], busy_seconds, holder)[0])
        except Exception as error:  # noqa: BLE001 - handed to the waiting session as 4xx
            outcomes.append(error)
    return outcomes
