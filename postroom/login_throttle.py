"""Login throttling: a budget of attempts per key, then exponential back-off, kept in the database.

Keys: an email together with a client address (guesses at one account from one place), and
a client address alone (many accounts tried from one place); an IPv6 client counts by its
/64, which one subscriber usually holds whole. No key is an email alone, so failures from
elsewhere never refuse a correct login from a fresh address.

An attempt is reserved before the password is checked and the reservation counts as a
failure until a success takes it back. Reserving reads and writes a key's row inside one
write transaction (SQLite runs one at a time; PostgreSQL locks the rows, in key order), so
parallel guesses and several web processes share one count and exactly a key's budget of
guesses is checked. Once the budget is spent the key is refused until `blocked_until`,
which doubles with every further attempt (up to LONGEST_WAIT); a refused attempt is not
counted. A key starts afresh only after QUIET with neither a failure nor a block: the quiet
is measured from the end of the last block, so a guesser who waits out every block gets one
guess per LONGEST_WAIT, never a fresh budget.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from postroom.clients import client_network
from storage.db import is_postgres, write_transaction
from storage.models import LoginAttempt, utcnow

QUIET = dt.timedelta(minutes=15)  # no failure and no block for this long: the key resets
FIRST_WAIT = dt.timedelta(seconds=15)  # the back-off after a budget is spent; doubles each time
LONGEST_WAIT = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Budget:
    """How many attempts a kind of key has before the back-off starts."""

    prefix: str
    free: int


ACCOUNT_FROM_ADDRESS = Budget("p:", 5)  # one email from one client address
ADDRESS = Budget("a:", 20)  # any emails from one client address
API_ADDRESS = Budget("t:", 20)  # API requests with a wrong token from one client address


def login_keys(email: str, address: str | None) -> list[tuple[str, int]]:
    """The keys (with their budgets) one login attempt counts against."""
    client = client_network(address)
    pair = hashlib.sha256(f"{email.strip().lower()}\n{client}".encode()).hexdigest()[:40]
    return [
        (ACCOUNT_FROM_ADDRESS.prefix + pair, ACCOUNT_FROM_ADDRESS.free),
        (ADDRESS.prefix + client, ADDRESS.free),
    ]


def api_keys(address: str | None) -> list[tuple[str, int]]:
    """The key a failed API authentication counts against."""
    return [(API_ADDRESS.prefix + client_network(address), API_ADDRESS.free)]


def _backoff(failures: int, free: int) -> dt.timedelta:
    doublings = min(max(failures - free, 0), 20)
    return min(FIRST_WAIT * 2**doublings, LONGEST_WAIT)


def _seconds(delta: dt.timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _locked_rows(keys: list[str], now: dt.datetime) -> dict[str, LoginAttempt]:
    """The rows of `keys`, created if missing and locked until the transaction ends."""
    rows = {}
    for key in sorted(keys):  # one order everywhere: no deadlock between two reservations
        LoginAttempt.insert(key=key, failures=0, last_failure_at=now).on_conflict_ignore().execute()
        query = LoginAttempt.select().where(LoginAttempt.key == key)
        if is_postgres():
            query = query.for_update()
        rows[key] = query.get()
    return rows


def _quiet_since(row: LoginAttempt) -> dt.datetime:
    """The last failure, or the end of the block it caused when that is later."""
    if row.blocked_until is not None and row.blocked_until > row.last_failure_at:
        return row.blocked_until
    return row.last_failure_at


def _reset_if_quiet(row: LoginAttempt, now: dt.datetime) -> None:
    if now - _quiet_since(row) > QUIET:
        row.failures = 0
        row.blocked_until = None


def reserve(keys: list[tuple[str, int]], now: dt.datetime | None = None) -> int:
    """Count one attempt against every key: 0 if it may go on, else seconds to wait (uncounted)."""
    now = now or utcnow()
    with write_transaction():
        rows = _locked_rows([key for key, _free in keys], now)
        for row in rows.values():
            _reset_if_quiet(row, now)
        waits = [
            row.blocked_until - now
            for row in rows.values()
            if row.blocked_until is not None and row.blocked_until > now
        ]
        if waits:
            return _seconds(max(waits))
        for key, free in keys:
            row = rows[key]
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= free:
                row.blocked_until = now + _backoff(row.failures, free)
            row.save()
    return 0


def succeeded(keys: list[tuple[str, int]]) -> None:
    """Take back a reserved attempt that succeeded: the email's key starts afresh, the
    address's key gives the one attempt back (a login of one's own does not buy guesses)."""
    (pair, _free), *others = keys
    with write_transaction():
        rows = _locked_rows([key for key, _free in keys], utcnow())  # the order reserve locks in
        LoginAttempt.delete().where(LoginAttempt.key == pair).execute()
        for key, free in others:
            row = rows[key]
            row.failures = max(row.failures - 1, 0)
            if row.failures < free:
                row.blocked_until = None
            row.save()


def waiting(keys: list[tuple[str, int]], now: dt.datetime | None = None) -> int:
    """Seconds until these keys may try again (0: now), without counting anything."""
    now = now or utcnow()
    query = LoginAttempt.select(LoginAttempt.blocked_until).where(
        LoginAttempt.key.in_([key for key, _free in keys]) & (LoginAttempt.blocked_until > now)
    )
    waits = [row.blocked_until - now for row in query]
    return _seconds(max(waits)) if waits else 0


def purge(now: dt.datetime | None = None) -> int:
    """Delete the rows that would reset anyway (_reset_if_quiet); return how many went."""
    now = now or utcnow()
    return (
        LoginAttempt.delete()
        .where(
            (LoginAttempt.last_failure_at < now - QUIET)
            & (LoginAttempt.blocked_until.is_null() | (LoginAttempt.blocked_until < now - QUIET))
        )
        .execute()
    )
