"""Run asyncio code from a test whatever the test's thread holds."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_own_thread(function: Callable[..., T], *args, timeout: float = 600) -> T:
    """Call function(*args) on a thread of its own and return its result.

    For code that calls asyncio.run(): the browser tests' driver (playwright's sync API, one
    per test process) keeps an event loop running on the main thread, and asyncio.run()
    refuses to start on a thread where a loop runs.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(function, *args).result(timeout=timeout)
