"""Parse and file intakes as they come, so that no slow parse holds up other mail.

Small mail is parsed right here, in batches, under the pool's one-second timer. Big mail,
and mail tried before, is parsed in a worker; each such parse has a worker of its own and a
deadline of its own, and is filed when it is done, while the mail that came after it goes
on being parsed and filed around it. A parse past its deadline has its worker killed and is
filed unparsed with the reason; the other parses the restart cut short start again, their
tries not counted again.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from smtpd_ingest.parse import ParseError
from smtpd_ingest.parser_pool import DIED, TIMED_OUT
from smtpd_ingest.pipeline import (
    MAX_ATTEMPTS,
    OUT_OF_MEMORY,
    Parser,
    Result,
    Tries,
    file_parsed,
    left_pending,
    quarantine,
)
from storage.db import database_unavailable
from storage.filing import Filed
from storage.intake import Waiting, load_raws, waiting_intakes

log = logging.getLogger(__name__)
BATCH = 32  # intakes taken up and filed together: fewer commits (measured 4, 8, 32)
HERE_SECONDS = 1.0  # parsing here per step, at most; the rest of the batch goes to workers
FAIR_SCAN = 256  # waiting parses looked through for an account with none running


@dataclass
class _Parse:
    """An intake to parse in a worker: waiting for one, or running there."""

    intake: Waiting
    raw: bytes | None = None  # loaded when it starts
    counted: bool = False  # its try is counted (once, however often the pool restarts)
    suspect: bool = False  # was in the pool when a worker died: runs with nothing beside it
    future: Future | None = None
    deadline: float = 0.0


class IntakeFlow:
    """Take up intakes in arrival order; file each as soon as it is parsed.

    Each try is counted in the intake before it starts (a crash of this process counts too);
    a try that ends because the database is away or busy is given back (Tries), and its
    intakes stay pending for the sweep. An intake tried before is parsed in a worker and
    filed alone, so it cannot take a batch down with it twice; one tried MAX_ATTEMPTS times
    is quarantined: filed unparsed with the reason, for `postroom reprocess`.

    With a holder (the ingest process's name, storage.intake claims), only the intakes it
    claims are taken up, filed or marked failed; one claimed by another ingest meanwhile
    (this one was too slow to keep its lease) is dropped, the other files it.
    """

    def __init__(
        self,
        parser: Parser,
        wake: Callable[[], None] | None = None,
        holder: str | None = None,
    ) -> None:
        self.parser = parser
        self.wake = wake  # called (from another thread) when a parse in a worker ends
        self.holder = holder
        self._ids: deque[int] = deque()  # to take up
        self._waiting: deque[_Parse] = deque()  # for a worker
        self._running: list[_Parse] = []
        self._known: set[int] = set()  # every intake in the three above
        self.tries = Tries()

    def add(self, intake_ids: list[int]) -> None:
        """Queue intakes (those already queued or in progress are left as they are)."""
        for intake_id in intake_ids:
            if intake_id not in self._known:
                self._known.add(intake_id)
                self._ids.append(intake_id)

    @property
    def queued(self) -> int:
        """Intakes added and not taken up yet."""
        return len(self._ids)

    def idle(self) -> bool:
        return not self._known

    def due(self) -> float | None:
        """Seconds until step() has work, new intakes aside (None: not before one comes)."""
        if self._ids or any(p.future.done() for p in self._running):
            return 0.0
        if not self._running:
            return None
        return max(0.0, min(p.deadline for p in self._running) - time.monotonic())

    def step(self) -> list[Filed]:
        """Take up to BATCH intakes; parse the small ones here and file them, together with
        the parses that workers finished; never waits for a worker."""
        here, filed = self._take_up()
        self._start()
        ready = self._parse_here(here) + self._finished()
        self._start()
        filed += self._file(ready)
        return filed

    def drain(self) -> list[Filed]:
        """Step until every intake added is filed (or left pending)."""
        filed: list[Filed] = []
        while not self.idle():
            filed += self.step()
            due = self.due()
            if due:
                wait([p.future for p in self._running], due, FIRST_COMPLETED)
        return filed

    def reset(self, error: BaseException | None = None) -> None:
        """Drop what is in progress (a step failed): it stays pending, for the sweep or the
        next start; if the database was away, the tries in progress are given back."""
        if error is not None and database_unavailable(error):
            counted = [p.intake.id for p in [*self._waiting, *self._running] if p.counted]
            left_pending(counted, error, self.tries)
        if self._running:
            self.parser.restart()
        self._ids.clear()
        self._waiting.clear()
        self._running.clear()
        self._known.clear()

    # --- stages -------------------------------------------------------------------------
    def _take_up(self) -> tuple[list[Waiting], list[Filed]]:
        """The next intakes: small new ones for here; big or tried ones wait for a worker."""
        ids = [self._ids.popleft() for _ in range(min(BATCH, len(self._ids)))]
        if not ids:
            return [], []
        try:
            intakes = waiting_intakes(ids, self.holder)
        except Exception as error:
            if not database_unavailable(error):
                raise
            left_pending(ids, error, None)  # not counted yet
            self._known.difference_update(ids)
            return [], []
        # done meanwhile, or claimed by another ingest
        self._known.difference_update(set(ids) - {i.id for i in intakes})
        worn = [i for i in intakes if i.attempts >= MAX_ATTEMPTS]
        here = []
        for intake in intakes:
            if intake.attempts >= MAX_ATTEMPTS:
                continue
            if intake.attempts == 0 and intake.size <= self.parser.inline_bytes:
                here.append(intake)
            else:
                self._waiting.append(_Parse(intake))
        filed = quarantine(worn, self.holder)
        self._known.difference_update(i.id for i in worn)
        return here, filed

    def _parse_here(self, intakes: list[Waiting]) -> list[tuple[Waiting, bytes, Result]]:
        """Count a try of the intakes, then parse them here; one that takes too long here
        goes to a worker (its try counted already)."""
        if not intakes:
            return []
        ids = [i.id for i in intakes]
        try:
            self.tries.begin(ids)
        except Exception as error:
            if not database_unavailable(error):
                raise
            left_pending(ids, error, None)  # the count failed: nothing to give back
            self._known.difference_update(ids)
            return []
        try:
            raws = load_raws([i.sha256 for i in intakes])
        except Exception as error:
            if not database_unavailable(error):
                raise
            left_pending(ids, error, self.tries)
            self._known.difference_update(ids)
            return []
        parsed = []
        until = time.monotonic() + HERE_SECONDS
        for intake in intakes:
            raw = raws[intake.sha256]
            result = None
            if time.monotonic() < until:
                try:
                    result = self.parser.parse_here(raw)
                except Exception as error:  # a fault of ours, not the mail's
                    log.exception("intake %s: parsing failed", intake.id)
                    result = error
            if result is None:  # took too long here, or the batch did: in a worker
                self._waiting.append(_Parse(intake, raw, counted=True))
            else:
                parsed.append((intake, raw, result))
        return parsed

    def _start(self) -> None:
        """Start waiting parses while workers are free; count their tries first."""
        starting: list[_Parse] = []
        while self._waiting and len(self._running) + len(starting) < self.parser.capacity:
            busy = [*self._running, *starting]
            if busy and (self._waiting[0].suspect or any(p.suspect for p in busy)):
                break  # a suspect runs alone, so a worker that dies names its mail
            item = self._next_waiting({p.intake.account_id for p in busy})
            self._waiting.remove(item)
            starting.append(item)
        if not starting:
            return
        counted = [p.intake.id for p in starting if p.counted]
        new = [p.intake.id for p in starting if not p.counted]
        try:
            self.tries.begin(new)
            counted += new
            raws = load_raws([p.intake.sha256 for p in starting if p.raw is None])
        except Exception as error:
            if not database_unavailable(error):
                raise
            left_pending([p.intake.id for p in starting], error, None)
            self.tries.give_back(counted)
            self._known.difference_update(p.intake.id for p in starting)
            return
        for item in starting:
            item.counted = True
            if item.raw is None:
                item.raw = raws[item.intake.sha256]
            self._run(item)

    def _next_waiting(self, busy: set[int]) -> _Parse:
        """The first waiting parse of an account with none running, else the first: one
        account's slow mail holds up its own big mail, not other accounts'."""
        for item in itertools.islice(self._waiting, FAIR_SCAN):
            if item.intake.account_id not in busy:
                return item
        return self._waiting[0]

    def _run(self, item: _Parse) -> None:
        item.deadline = time.monotonic() + self.parser.wall_timeout
        item.future = self.parser.start(item.raw)
        self._running.append(item)
        if self.wake is not None:
            item.future.add_done_callback(lambda _: self.wake())

    def _finished(self) -> list[tuple[Waiting, bytes, Result]]:
        """The parses that ended; a parse past its deadline ends with a ParseError, its
        worker killed; the others that killing cut short start again."""
        results = []
        broken: list[_Parse] = []
        for item in list(self._running):
            if not item.future.done():
                continue
            try:
                result: Result = item.future.result()
            except BrokenProcessPool:
                broken.append(item)
                continue
            except MemoryError:  # the mail's doing: the worker's memory is limited
                result = ParseError(OUT_OF_MEMORY)
            except Exception as error:  # a fault of ours, or of the pool
                log.exception("intake %s: parsing failed", item.intake.id)
                result = error
            self._running.remove(item)
            results.append((item.intake, item.raw, result))
        if broken:
            results += self._worker_died(broken)
        now = time.monotonic()
        late = [p for p in self._running if p.deadline <= now and not p.future.done()]
        if late:
            results += self._restart(late, TIMED_OUT.format(timeout=self.parser.wall_timeout))
        return results

    def _worker_died(self, broken: list[_Parse]) -> list[tuple[Waiting, bytes, Result]]:
        """A worker died (out of memory, killed): if one parse ran, it fails; if several
        did, each starts again as a suspect (alone)."""
        if len(self._running) == 1:
            return self._restart(self._running[:], DIED)
        for item in self._running:
            item.suspect = True
        log.warning(
            "a parse worker died with %d parses running; each again alone", len(self._running)
        )
        return self._restart([], DIED)

    def _restart(self, failed: list[_Parse], reason: str) -> list[tuple[Waiting, bytes, Result]]:
        """Restart the pool: `failed` end with the reason, the other running ones wait again
        (first in line, in their order; their tries were counted)."""
        self.parser.restart()
        cut = [p for p in self._running if p not in failed]
        self._running.clear()
        for item in reversed(cut):
            item.future = None
            self._waiting.appendleft(item)
        for item in failed:
            log.warning("queue_id=%s intake=%s %s", item.intake.queue_id, item.intake.id, reason)
        return [(p.intake, p.raw, ParseError(reason)) for p in failed]

    def _file(self, ready: list[tuple[Waiting, bytes, Result]]) -> list[Filed]:
        """File new intakes together, in arrival order, and those tried before alone."""
        ready.sort(key=lambda item: item[0].id)
        together = [item for item in ready if item[0].attempts == 0]
        filed = file_parsed(together, self.tries, self.holder)
        for item in ready:
            if item[0].attempts > 0:
                filed += file_parsed([item], self.tries, self.holder)
        self._known.difference_update(item[0].id for item in ready)
        return filed


def process_intakes(intake_ids: list[int], parser: Parser) -> list[Filed]:
    """Parse, route and file intakes (see IntakeFlow); never raises for one message."""
    flow = IntakeFlow(parser)
    flow.add(intake_ids)
    return flow.drain()
