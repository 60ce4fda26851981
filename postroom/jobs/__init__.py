"""The worker's jobs, one module each; postroom.worker schedules them under leases.

A job is a plain function `run(settings) -> str | None`: it does its work and returns a short
summary for the log (None when there was nothing to do). It raises to fail (the worker logs
it and tries again later) or raises JobDeferred when now is a bad moment.
"""

from __future__ import annotations


class JobDeferred(Exception):
    """Not now (the database is busy, say): try again after `retry_seconds`, no error."""

    def __init__(self, reason: str, retry_seconds: float = 60.0) -> None:
        super().__init__(reason)
        self.retry_seconds = retry_seconds
