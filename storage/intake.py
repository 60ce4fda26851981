"""Record accepted deliveries durably: the raw message and one intake row per recipient;
and claims, which say which ingest process files a pending intake.

Claims: several ingest processes may share one database (PostgreSQL). Each is a holder,
named `host:pid:random`, and keeps a lease row in ingest_lease alive by a heartbeat (beat).
An intake it records is claimed by it from the start (intake.claimed_by); only the holder
files it. An intake whose holder has no lease, or one that ran out (the process died, or
stopped and gave its lease back), is free: another ingest claims it (claim_waiting) with a
conditional update, so of two that try, one wins. Filing locks the intakes it files and
keeps only those still claimed by it (hold), so a slow ingest that lost its claims files
nothing twice.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

from storage.db import MAIL_SCHEMA, is_postgres, native_sql, select_in, write_transaction
from storage.models import RawMessage, database, utcnow


@dataclass(frozen=True)
class Delivery:
    """The envelope of a message for one recipient, as the listener saw it."""

    queue_id: str
    account_id: int
    recipient: str
    project_hint: int | None
    mail_from: str
    peer: str
    helo: str
    protocol: str
    received_at: dt.datetime


@dataclass(frozen=True)
class IntakeBatchItem:
    """One message of a group commit: its bytes and its deliveries."""

    sha256: str
    size: int
    raw: bytes | None  # None when the message waits in `spool`
    deliveries: tuple[Delivery, ...]
    spool: Path | None = None  # a file holding the message as one zlib stream


@dataclass(frozen=True)
class Recorded:
    intake_id: int
    is_new: bool


COMPRESS_LEVEL = 3  # fast, and most mail shrinks well


def compress_raw(raw: bytes) -> bytes:
    """Compress a raw message for storage (zlib releases the GIL on large input)."""
    return zlib.compress(raw, COMPRESS_LEVEL)


def load_raw(sha256: str) -> bytes:
    """Return the raw bytes of a stored message."""
    found = load_raws([sha256])
    if sha256 not in found:
        raise RawMessage.DoesNotExist(sha256)
    return found[sha256]


def load_raws(digests: list[str]) -> dict[str, bytes]:
    """Return the raw bytes of several stored messages by SHA-256."""
    found = {}
    for sha256, compression, data in select_in(_LOAD_RAWS, sorted(set(digests))):
        found[sha256] = zlib.decompress(data) if compression == "zlib" else bytes(data)
    return found


def load_raw_head(sha256: str, limit: int = 64 << 10) -> bytes | None:
    """The first `limit` bytes of a stored message (its header, as a rule), or None.

    Reads no more of the stored blob than that takes, however big the message.
    """
    row = database.execute_sql(
        native_sql("SELECT compression, substr(data, 1, ?) FROM raw_message WHERE sha256 = ?"),
        (limit + 1024, sha256),  # zlib adds a few bytes to what does not compress
    ).fetchone()
    if row is None:
        return None
    compression, data = row
    if compression != "zlib":
        return bytes(data)[:limit]
    return zlib.decompressobj().decompress(bytes(data), limit)


@dataclass(frozen=True)
class Waiting:
    """An intake to parse and file, with what the filing process needs of its message."""

    id: int
    queue_id: str
    account_id: int
    project_hint: int | None
    sha256: str
    size: int
    attempts: int  # tries begun so far (see count_attempts)


def waiting_intakes(intake_ids: list[int], holder: str | None = None) -> list[Waiting]:
    """The intakes among intake_ids not filed yet, in the order they were received; with a
    holder, only those it claims."""
    if holder is None:
        rows = select_in(_WAITING, intake_ids)
    else:
        rows = select_in(_WAITING_HELD, intake_ids, holder)
    return sorted((Waiting(*row) for row in rows), key=lambda intake: intake.id)


_LOAD_RAWS = "SELECT sha256, compression, data FROM raw_message WHERE sha256 IN"
_WAITING = (
    "SELECT intake.id, intake.queue_id, intake.account_id, intake.project_hint, raw.sha256,"
    " raw.size, intake.attempts FROM intake JOIN raw_message AS raw"
    " ON raw.sha256 = intake.sha256 WHERE intake.state != 'done' AND intake.id IN"
)
_WAITING_HELD = _WAITING.replace("WHERE", "WHERE intake.claimed_by = ? AND")


_COUNT_ATTEMPT = "UPDATE intake SET attempts = attempts + 1 WHERE id = ?"


def count_attempts(intake_ids: list[int]) -> None:
    """Count one more try of each intake, committed before the try begins, so that a crash
    during it is counted too and a restart sees how often the intake was tried."""
    update = native_sql(_COUNT_ATTEMPT)
    with write_transaction(MAIL_SCHEMA):
        database.cursor().executemany(update, [(i,) for i in intake_ids])


_UNCOUNT_ATTEMPT = (
    "UPDATE intake SET attempts = attempts - 1 WHERE id = ? AND attempts > 0 AND state != 'done'"
)


def uncount_attempts(intake_ids: list[int]) -> None:
    """Take back the try counted last of each intake (it ended because the database was
    away or busy, which says nothing about the message)."""
    update = native_sql(_UNCOUNT_ATTEMPT)
    with write_transaction(MAIL_SCHEMA):
        database.cursor().executemany(update, [(i,) for i in intake_ids])


def record_batch(items: list[IntakeBatchItem], holder: str | None = None) -> list[list[Recorded]]:
    """Store a batch of messages in one transaction; repeated deliveries are kept once. New
    intakes are claimed by `holder` (None: unclaimed, for the ingest that takes them up).

    This runs for every accepted message, so it speaks plain SQL through the connection's
    cursor: peewee's statement building cost more than the inserts themselves.
    """
    postgres = is_postgres()
    in_memory = [i for i in items if i.spool is None]
    compressed = [compress_raw(i.raw) for i in in_memory]  # outside the write lock
    now = utcnow()
    stamp = now if postgres else str(now)
    insert_intake = native_sql(_INTAKE)
    with write_transaction(MAIL_SCHEMA):
        cursor = database.cursor()
        cursor.executemany(
            native_sql(_RAW),
            [
                (item.sha256, item.size, "zlib", data, stamp)
                for item, data in zip(in_memory, compressed, strict=True)
            ],
        )
        for item in items:
            if item.spool is not None:
                _store_spooled(cursor, item, stamp, postgres)
        results = []
        for item in items:
            recorded = []
            for d in item.deliveries:
                received = d.received_at if postgres else str(d.received_at)
                values = (
                    d.queue_id,
                    item.sha256,
                    d.account_id,
                    d.recipient,
                    d.project_hint,
                    d.mail_from,
                    d.peer,
                    d.helo,
                    d.protocol,
                    received,
                    holder,
                )
                cursor.execute(insert_intake, values)
                row = cursor.fetchone()
                if row is None:  # delivered before: the MTA retried after a lost reply
                    cursor.execute(native_sql(_EXISTING), (item.sha256, d.recipient))
                    recorded.append(Recorded(cursor.fetchone()[0], False))
                else:
                    recorded.append(Recorded(row[0], True))
            results.append(recorded)
    return results


def _store_spooled(cursor, item: IntakeBatchItem, stamp, postgres: bool) -> None:
    """Store a message received to a spool file; on SQLite in pieces, never whole in memory."""
    if postgres:  # bytea takes the value whole: one compressed copy
        cursor.execute(
            native_sql(_RAW), (item.sha256, item.size, "zlib", item.spool.read_bytes(), stamp)
        )
        return
    length = item.spool.stat().st_size
    cursor.execute(_RAW_ZEROBLOB, (item.sha256, item.size, "zlib", length, stamp))
    if cursor.rowcount != 1:  # stored before
        return
    with (
        item.spool.open("rb") as source,
        database.connection().blobopen(
            "raw_message", "data", cursor.lastrowid, name=MAIL_SCHEMA
        ) as blob,
    ):
        while piece := source.read(SPOOL_PIECE):
            blob.write(piece)


SPOOL_PIECE = 1 << 20
_RAW_ZEROBLOB = (
    "INSERT INTO raw_message (sha256, size, compression, data, created_at)"
    " VALUES (?, ?, ?, zeroblob(?), ?) ON CONFLICT DO NOTHING"
)
_RAW = (
    "INSERT INTO raw_message (sha256, size, compression, data, created_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INTAKE = (
    "INSERT INTO intake (queue_id, sha256, account_id, recipient, project_hint, mail_from, peer,"
    " helo, protocol, received_at, claimed_by, state)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')"
    " ON CONFLICT DO NOTHING RETURNING id"
)
_EXISTING = "SELECT id FROM intake WHERE sha256 = ? AND recipient = ?"


# --- claims -------------------------------------------------------------------------------


def new_holder() -> str:
    """A name for this ingest process: host, process id and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def database_now() -> dt.datetime:
    """The current UTC time by the database's clock (PostgreSQL's now(); SQLite lives on one
    host), naive like every stored time: ingests on hosts with different clocks agree."""
    if is_postgres():
        return database.execute_sql("SELECT now() AT TIME ZONE 'UTC'").fetchone()[0]
    return utcnow()


def _stamp(value: dt.datetime):
    return value if is_postgres() else str(value)


_BEAT = (
    "INSERT INTO ingest_lease (holder, expires_at) VALUES (?, ?)"
    " ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at"
)


def beat(holder: str, ttl_seconds: float) -> None:
    """Keep the lease of `holder` for `ttl_seconds` from now: its claims stay its own."""
    until = database_now() + dt.timedelta(seconds=ttl_seconds)
    with write_transaction(MAIL_SCHEMA):
        database.execute_sql(native_sql(_BEAT), (holder, _stamp(until)))


def release(holder: str) -> None:
    """Give the lease back (a clean stop): the intakes still claimed by `holder` are free for
    the next ingest that looks, at once."""
    with write_transaction(MAIL_SCHEMA):
        database.execute_sql(native_sql("DELETE FROM ingest_lease WHERE holder = ?"), (holder,))


def forget_dead_here(holder: str) -> list[str]:
    """Give back the leases of ingest processes of this host that are gone (a crash, kill -9,
    power loss), so that a restarted ingest takes up their intakes at once rather than after
    their lease runs out; return their names. A process is told by its id: one that is
    running under that id keeps its lease (another ingest may have got the id: its lease
    then runs out). Host names must differ between hosts sharing a database."""
    here = socket.gethostname() + ":"
    rows = database.execute_sql("SELECT holder FROM ingest_lease").fetchall()
    ours = {os.getpid(), os.getppid()}  # we are alive; one of us has an old holder's pid
    dead = []
    for (name,) in rows:
        pid = name.removeprefix(here).partition(":")[0]
        if name == holder or not name.startswith(here) or not (pid.isascii() and pid.isdigit()):
            continue
        if int(pid) in ours or not _running(int(pid)):
            dead.append(name)
    if dead:
        with write_transaction(MAIL_SCHEMA):
            database.cursor().executemany(
                native_sql("DELETE FROM ingest_lease WHERE holder = ?"), [(n,) for n in dead]
            )
    return dead


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


# Free: unclaimed and received before `waited_since` (mail stored by a tool that files it
# itself, `postroom import`, or before claims existed), or claimed by a holder without a
# live lease. The caller's own claims count as free once they waited as long (dropped after
# an error, see IntakeFlow.reset).
_FREE = (
    "(claimed_by IS NULL OR claimed_by = ?) AND received_at < ?"
    " OR claimed_by NOT IN (SELECT holder FROM ingest_lease WHERE expires_at >= ?)"
)
_FREE_SELECT = f"SELECT id FROM intake WHERE state = 'pending' AND ({_FREE}) ORDER BY id"  # noqa: S608
_CLAIM = (
    "UPDATE intake SET claimed_by = ? WHERE state = 'pending'"
    " AND (claimed_by IS NULL OR claimed_by = ?"
    " OR claimed_by NOT IN (SELECT holder FROM ingest_lease WHERE expires_at >= ?))"
    " AND id IN ({marks}) RETURNING id"
)


def claim_waiting(holder: str, waited_since: dt.datetime | None = None) -> list[int]:
    """Claim the pending intakes that are free for `holder`: those of ingests without a live
    lease, and the unclaimed ones and its own that were received before `waited_since` (None:
    any); return their ids in the order received.

    Looked for first, then claimed by one conditional update: another ingest that claims the
    same intakes meanwhile wins them, and they are left out.
    """
    now = database_now()
    since = _stamp(waited_since or now + dt.timedelta(days=1))
    found = [
        intake_id
        for (intake_id,) in database.execute_sql(
            native_sql(_FREE_SELECT), (holder, since, _stamp(now))
        )
    ]
    if not found:  # as a rule: no write, which on SQLite would take the listener's lock
        return []
    claimed: list[int] = []
    with write_transaction(MAIL_SCHEMA):
        cursor = database.cursor()
        for start in range(0, len(found), 500):
            chunk = found[start : start + 500]
            update = _CLAIM.format(marks=", ".join("?" * len(chunk)))
            cursor.execute(native_sql(update), [holder, holder, _stamp(now), *chunk])
            claimed += [intake_id for (intake_id,) in cursor.fetchall()]
    return sorted(claimed)


def claim_failed(holder: str) -> list[int]:
    """Claim every intake that failed (quarantined: no ingest files it again by itself), for
    `postroom reprocess`; return their ids."""
    with write_transaction(MAIL_SCHEMA):
        cursor = database.cursor()
        cursor.execute(
            native_sql("UPDATE intake SET claimed_by = ? WHERE state = 'failed' RETURNING id"),
            [holder],
        )
        return sorted(intake_id for (intake_id,) in cursor.fetchall())


def hold(cursor, intake_ids: list[int], holder: str) -> set[int]:
    """Within a filing transaction: those of intake_ids still claimed by `holder`, locked
    (PostgreSQL) until the transaction ends, so that no other ingest claims them meanwhile."""
    lock = " FOR UPDATE" if is_postgres() else ""
    held: set[int] = set()
    for start in range(0, len(intake_ids), 500):
        chunk = intake_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            native_sql(f"SELECT id FROM intake WHERE claimed_by = ? AND id IN ({marks}){lock}"),  # noqa: S608
            [holder, *chunk],
        )
        held.update(intake_id for (intake_id,) in cursor.fetchall())
    return held
