"""Run parse_message in worker processes, so a big or hostile mail never holds the listener."""

from __future__ import annotations

import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from smtpd_ingest.parse import ParsedMail, ParseError, parse_message

log = logging.getLogger(__name__)


CHUNK = 8  # messages per task
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
INLINE_SECONDS = 1.0  # a message parsed in the calling process longer than this goes to a worker
TIMED_OUT = "parsing took longer than {timeout:g} s"
CPU_TIMED_OUT = "parsing took more than {timeout:g} s of processor time"
WALL_FACTOR = 10  # a worker parse is killed after this many times its processor-time bound
DIED = "the parser process died (out of memory?)"


class _Overtime(BaseException):
    """Parsing in the calling process ran past INLINE_SECONDS (a BaseException, so that no
    `except Exception` on the way turns it into a parse result)."""


class _CpuOvertime(BaseException):
    """A parse in a worker used up its processor time (SIGPROF; a BaseException, so that no
    `except Exception` on the way turns it into a parse result)."""


def _on_cpu_overtime(signum, frame) -> None:
    raise _CpuOvertime


_timing = False  # True while an inline parse runs against the clock


def _on_alarm(signum, frame) -> None:
    if _timing:
        raise _Overtime


def _init_worker(parent: int, nice: int) -> None:
    """Set up a parse worker: it dies with the process that started it, even by kill -9
    (Linux), it runs at a lower priority, and it has at most 2 GB of address space."""
    import resource  # only here: a worker's own limit, set in the worker

    # A 25 MB mail parses in a few hundred MB; past 2 GB an allocation fails (MemoryError, a
    # stored parse failure) or the worker dies (DIED) instead of the machine running out.
    memory = 2 << 30
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(0)
    if nice:
        os.nice(nice)


def _parse_one(raw: bytes) -> ParsedMail | ParseError:
    try:
        return parse_message(raw)
    except ParseError as error:
        return error


def _parse_in_worker(raw: bytes, cpu_seconds: float) -> ParsedMail | ParseError:
    """Parse within `cpu_seconds` of this worker's processor time: a worker at low priority on
    a busy machine waits for the CPU, which must not count against the mail."""
    signal.signal(signal.SIGPROF, _on_cpu_overtime)
    try:
        try:
            signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
            return _parse_one(raw)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except _CpuOvertime:
        return ParseError(CPU_TIMED_OUT.format(timeout=cpu_seconds))


def _parse_chunk(raws: list[bytes]) -> list[ParsedMail | ParseError]:
    results: list[ParsedMail | ParseError] = []
    for raw in raws:
        try:
            results.append(parse_message(raw))
        except ParseError as error:
            results.append(error)
    return results


class ParserPool:
    """A process pool for parsing with a per-message timeout; a stuck worker is killed.

    With inline_bytes, messages up to that size are parsed in the calling process instead:
    for small mail, the trip to a worker and back (pickling the bytes and the result) cost
    a third as much again as parsing it. The timeout guards what size can make slow; an
    inline parse that takes longer than INLINE_SECONDS (a timer signal stops it; only in
    the main thread) is done again in a worker, under the timeout.
    """

    def __init__(
        self, workers: int = 0, timeout: float = 60.0, nice: int = 0, inline_bytes: int = 0
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.nice = nice
        self.inline_bytes = inline_bytes
        # spawn: the workers are children of this process, so they die with it (a fork
        # server would outlive a kill -9 of this process, and its workers with it)
        self._context = multiprocessing.get_context("spawn")
        self._pool = self._new_pool()
        self._clock = inline_bytes > 0 and threading.current_thread() is threading.main_thread()
        self._alarm = signal.signal(signal.SIGALRM, _on_alarm) if self._clock else None

    def _new_pool(self) -> ProcessPoolExecutor:
        initializer = functools.partial(_init_worker, os.getpid(), self.nice)
        return ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=initializer)

    @property
    def capacity(self) -> int:
        """How many parses can run at once, each in a worker of its own."""
        return self.workers

    def parse(self, raw: bytes) -> ParsedMail:
        """Parse in a worker; raise ParseError on a parse failure, timeout or crash."""
        future = self._pool.submit(parse_message, raw)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            self.restart()
            raise ParseError(TIMED_OUT.format(timeout=self.timeout)) from None
        except BrokenProcessPool:
            self.restart()
            raise ParseError(DIED) from None

    def start(self, raw: bytes) -> Future:
        """Start parsing one message in a worker; the future's result is a ParsedMail or a
        ParseError (it raises BrokenProcessPool if the worker died). The caller keeps the
        time: at most `capacity` started at once, each runs at once in a worker of its own.
        The worker ends a parse past `timeout` seconds of processor time itself; the caller's
        wall-clock deadline (`wall_timeout`) is for a worker stuck where no signal reaches."""
        return self._pool.submit(_parse_in_worker, raw, self.timeout)

    @property
    def wall_timeout(self) -> float:
        """How long a parse started in a worker may run by the clock before it is killed."""
        return self.timeout * WALL_FACTOR

    def parse_here(self, raw: bytes) -> ParsedMail | ParseError | None:
        """Parse in this process within INLINE_SECONDS; None when it took longer (it was
        stopped: parse it in a worker)."""
        global _timing
        if not self._clock:
            return _parse_one(raw)
        try:
            try:
                _timing = True
                signal.setitimer(signal.ITIMER_REAL, INLINE_SECONDS)
                return _parse_one(raw)
            finally:
                _timing = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Overtime:
            log.warning(
                "parsing a message of %d bytes took over %g s here; in a worker",
                len(raw),
                INLINE_SECONDS,
            )
            return None

    def parse_many(self, raws: list[bytes]) -> list[ParsedMail | ParseError]:
        """Parse several messages in parallel; each result is a ParsedMail or a ParseError."""
        return self.collect(self.submit_many(raws))

    def submit_many(self, raws: list[bytes]) -> list[tuple[list[bytes], Future | None]]:
        """Start parsing several messages; collect() waits for them (work can go on between).

        Messages travel in chunks: one task per message cost more in hand-offs than parsing.
        Runs of small messages (inline_bytes) wait for collect() to parse them here.
        """
        runs: list[tuple[list[bytes], bool]] = []  # (messages, parsed here)
        for raw in raws:
            here = len(raw) <= self.inline_bytes
            if runs and runs[-1][1] == here and len(runs[-1][0]) < CHUNK:
                runs[-1][0].append(raw)
            else:
                runs.append(([raw], here))
        return [
            (chunk, None if here else self._pool.submit(_parse_chunk, chunk))
            for chunk, here in runs
        ]

    def collect(
        self, pending: list[tuple[list[bytes], Future | None]]
    ) -> list[ParsedMail | ParseError]:
        """Wait for submitted parses. A chunk that timed out or killed its worker is parsed
        again message by message, so only the message at fault fails."""
        results: list[ParsedMail | ParseError] = []
        broken = False
        for chunk, future in pending:
            if future is None:
                results += [self._parse_here(raw) for raw in chunk]
                continue
            if not broken:
                try:
                    results += future.result(timeout=self.timeout * len(chunk))
                    continue
                except (FutureTimeout, BrokenProcessPool):
                    broken = True
                    self.restart()
            for raw in chunk:
                try:
                    results.append(self.parse(raw))
                except ParseError as error:
                    results.append(error)
        return results

    def _parse_here(self, raw: bytes) -> ParsedMail | ParseError:
        """Parse in this process, within INLINE_SECONDS; past them, in a worker."""
        result = self.parse_here(raw)
        if result is not None:
            return result
        try:
            return self.parse(raw)
        except ParseError as error:
            return error

    def restart(self) -> None:
        """Kill the workers (and what they parse) and start new ones."""
        log.warning("restarting the parser pool")
        self._kill()
        self._pool = self._new_pool()

    def _kill(self) -> None:
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self, *, kill: bool = False) -> None:
        """Stop the workers: let them finish what they parse, or with kill, not."""
        if kill:
            self._kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._clock:
            signal.signal(signal.SIGALRM, self._alarm)


class InlineParser:
    """Parse in the calling thread; for tools and tests that file one message at a time."""

    capacity = 1
    inline_bytes = sys.maxsize
    timeout = wall_timeout = float("inf")

    def parse(self, raw: bytes) -> ParsedMail:
        return parse_message(raw)

    def parse_here(self, raw: bytes) -> ParsedMail | ParseError:
        try:
            return self.parse(raw)
        except ParseError as error:
            return error

    def start(self, raw: bytes) -> Future:
        """Parse now; a future that is already done."""
        future: Future = Future()
        future.set_result(self.parse_here(raw))
        return future

    def restart(self) -> None:
        pass

    def submit_many(self, raws: list[bytes]) -> list[bytes]:
        return raws

    def collect(self, raws: list[bytes]) -> list[ParsedMail | ParseError]:
        return self.parse_many(raws)

    def parse_many(self, raws: list[bytes]) -> list[ParsedMail | ParseError]:
        return [self.parse_here(raw) for raw in raws]

    def close(self, *, kill: bool = False) -> None:
        pass
