"""Job leases: one worker at a time runs each singleton job; a dead worker's lease runs out.

A lease is a row of job_lease: who holds it (`host:pid:random`) and until when. Taking it is
one conditional UPDATE (free, expired, or already ours), so of several workers exactly one
wins on SQLite and PostgreSQL alike. `last_run_at` remembers when the job last finished well,
which tells the other workers that this schedule slot has been done.

All times come from the database's clock (PostgreSQL's now(); SQLite lives on one host), so
workers on hosts with different clocks still agree on expiry and slots.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket

from storage.db import is_postgres, write_transaction
from storage.models import JobLease, database, utcnow

NEVER = dt.datetime(1970, 1, 1)


def new_holder() -> str:
    """A name for this worker process: host, process id and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def database_now() -> dt.datetime:
    """The current UTC time by the database's clock, naive like every stored time."""
    if is_postgres():
        return database.execute_sql("SELECT now() AT TIME ZONE 'UTC'").fetchone()[0]
    return utcnow()


def acquire(name: str, holder: str, ttl_seconds: float, *, now: dt.datetime | None = None) -> bool:
    """Take or extend the lease `name` for `ttl_seconds`; False while another worker holds it."""
    with write_transaction():
        now = now or database_now()
        JobLease.insert(name=name, holder="", expires_at=NEVER).on_conflict_ignore().execute()
        taken = (
            JobLease.update(holder=holder, expires_at=now + dt.timedelta(seconds=ttl_seconds))
            .where(
                (JobLease.name == name)
                & ((JobLease.expires_at < now) | (JobLease.holder == holder))
            )
            .execute()
        )
    return taken == 1


def renew(name: str, holder: str, ttl_seconds: float, *, now: dt.datetime | None = None) -> bool:
    """Extend a lease we hold; False when it is no longer ours."""
    now = now or database_now()
    renewed = (
        JobLease.update(expires_at=now + dt.timedelta(seconds=ttl_seconds))
        .where((JobLease.name == name) & (JobLease.holder == holder))
        .execute()
    )
    return renewed == 1


def release(name: str, holder: str) -> bool:
    """Give a lease back so another worker may take it at once (a clean shutdown)."""
    released = (
        JobLease.update(holder="", expires_at=NEVER)
        .where((JobLease.name == name) & (JobLease.holder == holder))
        .execute()
    )
    return released == 1


def release_all(holder: str) -> int:
    """Give back every lease of a worker that is shutting down."""
    return JobLease.update(holder="", expires_at=NEVER).where(JobLease.holder == holder).execute()


def lease_of(name: str) -> JobLease | None:
    return JobLease.get_or_none(JobLease.name == name)


def mark_run(name: str, holder: str, when: dt.datetime) -> bool:
    """Record a successful run that started at `when`; only the holder may."""
    marked = (
        JobLease.update(last_run_at=when)
        .where((JobLease.name == name) & (JobLease.holder == holder))
        .execute()
    )
    return marked == 1


def clear_stale(known: set[str], now: dt.datetime, forget_after: dt.timedelta) -> int:
    """Drop holders of expired leases, and rows of jobs no worker has run for a long time."""
    cleared = (
        JobLease.update(holder="")
        .where((JobLease.holder != "") & (JobLease.expires_at < now))
        .execute()
    )
    old = now - forget_after
    forgotten = (
        JobLease.delete()
        .where(
            JobLease.name.not_in(sorted(known))
            & (JobLease.expires_at < now)
            & (JobLease.last_run_at.is_null() | (JobLease.last_run_at < old))
        )
        .execute()
    )
    return cleared + forgotten
