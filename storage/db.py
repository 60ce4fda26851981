"""Open the database named by one URL and keep its schema current."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect as connect_url
from playhouse.migrations import Runner

from storage.models import ALL_MODELS, database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaError(Exception):
    """The database schema does not match this version of postroom."""


def open_database(
    url: str, *, busy_timeout_ms: int = 5000, max_page_count: int = 0, pool_size: int = 0
) -> Database:
    """Connect the models to the database at `url` (sqlite:///path or postgresql://…)."""
    db = make_database(
        url, busy_timeout_ms=busy_timeout_ms, max_page_count=max_page_count, pool_size=pool_size
    )
    database.initialize(db)
    return db


def make_database(
    url: str, *, busy_timeout_ms: int = 5000, max_page_count: int = 0, pool_size: int = 0
) -> Database:
    """Return a database object for `url` without binding the models to it.

    With `pool_size` (PostgreSQL only), threads share at most that many connections.
    """
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        pragmas = {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL: a commit is on disk when it returns
            "foreign_keys": 1,
            "busy_timeout": busy_timeout_ms,
            "cache_size": -16000,
        }
        if max_page_count:
            pragmas["max_page_count"] = max_page_count
        db: Database = SqliteDatabase(str(path), pragmas=pragmas, timeout=busy_timeout_ms / 1000)
    else:
        parsed = urlparse(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"unsupported database URL scheme {parsed.scheme!r}")
        options = f"-c lock_timeout={busy_timeout_ms} -c idle_in_transaction_session_timeout=60000"
        if pool_size:
            db = connect_url(
                url.replace("postgresql://", "postgresql+pool://", 1).replace(
                    "postgres://", "postgresql+pool://", 1
                ),
                options=options,
                max_connections=pool_size,
                stale_timeout=300,
                timeout=busy_timeout_ms / 1000,
            )
        else:
            db = connect_url(url, options=options)
    return db


def is_sqlite(db: Database | None = None) -> bool:
    """Tell whether the bound database is SQLite (else PostgreSQL)."""
    target = db or database.obj
    return isinstance(target, SqliteDatabase)


def is_postgres(db: Database | None = None) -> bool:
    target = db or database.obj
    return isinstance(target, PostgresqlDatabase)


def native_sql(statement: str) -> str:
    """Write a statement with ? placeholders in the bound driver's style (it holds no other ?)."""
    return statement.replace("?", "%s") if is_postgres() else statement


def select_in(select: str, keys: list, *first, cursor=None) -> list[tuple]:
    """Rows of a plain-SQL `select ... IN`, for keys in chunks the drivers accept; `first`
    fills the ?s before the list. For the hot paths of ingest and filing, where building the
    statement with peewee cost more than running it."""
    cursor = cursor or database.cursor()
    rows: list[tuple] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        cursor.execute(native_sql(f"{select} ({', '.join('?' * len(chunk))})"), [*first, *chunk])
        rows += cursor.fetchall()
    return rows


def write_transaction():
    """Begin a transaction that takes the write lock at once (SQLite: BEGIN IMMEDIATE).

    A deferred SQLite transaction that reads first and writes later fails with "database is
    locked" without waiting when another connection committed in between; busy_timeout only
    helps a transaction that asks for the lock up front.
    """
    if is_sqlite():
        return database.atomic(lock_type="IMMEDIATE")
    return database.atomic()


def _runner(db: Database) -> Runner:
    return Runner(db, str(MIGRATIONS_DIR))


def migrate(db: Database) -> list[str]:
    """Apply every pending migration in order; return the names applied."""
    return _runner(db).up()


def pending_migrations(db: Database) -> list[str]:
    """Return the names of migrations not yet applied to `db`."""
    return [m.name for m in _runner(db).status() if m.applied is None and m.path]


def check_schema(db: Database) -> None:
    """Raise SchemaError naming the fixing command unless the schema is current."""
    runner = _runner(db)
    status = runner.status()
    applied = [m for m in status if m.applied is not None]
    if not applied:
        raise SchemaError("the database is empty: run `postroom init` to create it")
    unknown = [m.name for m in applied if m.path is None]
    if unknown:
        raise SchemaError(
            f"the database has migrations this postroom does not know ({', '.join(unknown)}):"
            " upgrade postroom"
        )
    pending = [m.name for m in status if m.applied is None]
    if pending:
        raise SchemaError(
            f"the database schema is behind ({len(pending)} pending: {', '.join(pending)}):"
            " run `postroom migrate`"
        )


__all__ = ["ALL_MODELS", "SchemaError", "check_schema", "migrate", "open_database"]
