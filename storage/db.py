"""Open the database named by one URL and keep its schema current.

On SQLite the received mail (tables raw_message and intake) lives in a file of its own next
to the database, <name>-mail.db, attached to every connection as the schema "mail": the
listener commits each message there, so it never waits for the write lock of the main file,
which the filing process holds while it files. Statements name the tables without a schema
and SQLite finds them in whichever file holds them. PostgreSQL keeps every table in one
database.
"""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, PeeweeException, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect as connect_url
from playhouse.migrations import Runner

from storage.files import private_dir, private_file, tighten
from storage.models import ALL_MODELS, database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MAIL_SCHEMA = "mail"  # the name the received-mail file is attached under
MAIL_MIGRATION = "0007_mail_store"  # from this one on, the mail file holds intake, raw_message


def mail_store_path(main_path: str | Path) -> Path:
    """The file that holds the received mail of the SQLite database at `main_path`."""
    main = Path(main_path)
    return main.with_name(f"{main.stem}-mail{main.suffix or '.db'}")


class SqliteWithMail(SqliteDatabase):
    """SQLite with the received-mail file attached to every connection, set up like the main
    file (WAL, the same synchronous level and page limit)."""

    def __init__(self, path: str, *, mail_pragmas: dict, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.mail_path = mail_store_path(path)
        self._mail_pragmas = mail_pragmas

    def mail_pragma(self, name: str, value: object) -> None:
        """Set a pragma of the received-mail file, now and on every later connection."""
        self._mail_pragmas[name] = value
        self.execute_sql(f"PRAGMA {MAIL_SCHEMA}.{name} = {value}")

    def _add_conn_hooks(self, conn) -> None:
        super()._add_conn_hooks(conn)
        conn.execute(f"ATTACH DATABASE ? AS {MAIL_SCHEMA}", (str(self.mail_path),))
        for name, value in self._mail_pragmas.items():
            conn.execute(f"PRAGMA {MAIL_SCHEMA}.{name} = {value}")


class SchemaError(Exception):
    """The database schema does not match this version of postroom."""


class DriverMissing(Exception):
    """The URL names a database whose driver is not installed (an extra left out)."""


POSTGRESQL_DRIVER = "psycopg2"
POSTGRESQL_DRIVER_MISSING = (
    "a postgresql:// database needs the PostgreSQL driver (psycopg2), which is not installed:"
    " pip install 'postroom[postgresql]'"
)


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
        _private_sqlite_files(path)
        per_file = {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL: a commit is on disk when it returns
            "cache_size": -16000,
        }
        if max_page_count:
            per_file["max_page_count"] = max_page_count
        pragmas = {**per_file, "foreign_keys": 1, "busy_timeout": busy_timeout_ms}
        db: Database = SqliteWithMail(
            str(path), pragmas=pragmas, mail_pragmas=per_file, timeout=busy_timeout_ms / 1000
        )
    else:
        parsed = urlparse(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"unsupported database URL scheme {parsed.scheme!r}")
        try:
            importlib.import_module(POSTGRESQL_DRIVER)
        except ImportError:
            raise DriverMissing(POSTGRESQL_DRIVER_MISSING) from None
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


def _private_sqlite_files(path: Path) -> None:
    """Create the folder (0700) and both database files (0600) before SQLite does (its
    journal files take their file's mode); tighten those of an earlier version."""
    private_dir(path.parent)
    for file in (path, mail_store_path(path)):
        private_file(file)
        for suffix in ("-wal", "-shm", "-journal"):
            tighten(file.with_name(file.name + suffix))


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


def write_transaction(files: str = "main"):
    """Begin a transaction that takes the write lock at once.

    A deferred SQLite transaction that reads first and writes later fails with "database is
    locked" without waiting when another connection committed in between; busy_timeout only
    helps a transaction that asks for the lock up front.

    On SQLite, `files` names the file the transaction writes to: "main" (everything but the
    received mail) or "mail" (raw_message and intake). It takes that file's lock alone (BEGIN
    IMMEDIATE would lock every attached file), so the listener (mail) never waits for the
    filing process, the web or the worker (main). The lock is taken by a write that changes
    nothing, as the transaction's first statement. Changes to both files are two
    transactions, each committed on its own: order them so that a crash between the two
    leaves nothing that points at what is gone.
    """
    if not is_sqlite():
        return database.atomic()
    return _one_file_transaction(_TAKE_LOCK[files])


_TAKE_LOCK = {
    "main": "DELETE FROM main.app_setting WHERE 0",
    MAIL_SCHEMA: "DELETE FROM mail.intake WHERE 0",
}


@contextlib.contextmanager
def _one_file_transaction(take_lock: str):
    with database.atomic(lock_type="DEFERRED") as transaction:
        database.execute_sql(take_lock)
        yield transaction


# The database's state, not the statement's: the same work, unchanged, may succeed later.
# PostgreSQL by SQLSTATE: connection exceptions (class 08), out of resources (53), the
# server's own system errors (58), shutdown, crash and "cannot connect now" (57P), and what
# concurrency or a failover causes: serialization failure, deadlock, a lock not granted in
# lock_timeout, a write on a read-only standby.
_PG_AWAY_CLASSES = ("08", "53", "58", "57P")
_PG_AWAY_CODES = {"40001", "40P01", "55P03", "25006"}
# SQLite by primary result code: busy, locked, out of memory, read-only, I/O error, corrupt,
# full (sqlite_max_page_count too: mail waits until the operator makes room), cannot open,
# lock protocol, not a database.
_SQLITE_AWAY_CODES = {5, 6, 7, 8, 10, 11, 13, 14, 15, 26}
_SQLITE_AWAY_TEXT = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "disk i/o error",
    "database or disk is full",
    "unable to open database",
    "readonly database",
    "disk image is malformed",
    "file is not a database",
)


def driver_error(error: BaseException) -> BaseException:
    """The driver's exception that peewee wrapped (or the error itself)."""
    while isinstance(error, PeeweeException) and isinstance(
        getattr(error, "orig", None), BaseException
    ):
        error = error.orig
    return error


def database_unavailable(error: BaseException) -> bool:
    """Tell whether an error says the database is away, busy or full (try the same again
    later) rather than that it refused this statement's data (the data's fault)."""
    cause = driver_error(error)
    code = getattr(cause, "pgcode", None)
    if code is not None:
        return code.startswith(_PG_AWAY_CLASSES) or code in _PG_AWAY_CODES
    if type(cause).__module__.partition(".")[0] == "psycopg2":
        # no SQLSTATE: no answer from the server (connection lost, refused or closed)
        return type(cause).__name__ in ("OperationalError", "InterfaceError")
    if isinstance(cause, sqlite3.Error):
        primary = getattr(cause, "sqlite_errorcode", None)
        if primary is not None:
            return primary & 0xFF in _SQLITE_AWAY_CODES
        text = str(cause).lower()
        return any(part in text for part in _SQLITE_AWAY_TEXT)
    return False


def drop_broken_connection() -> None:
    """Close this thread's connection if the server closed it (a restart, a failover), so
    that the next statement connects again; a connection that works is kept."""
    connection = getattr(database.obj, "_state", None) and database.obj._state.conn
    if connection is not None and getattr(connection, "closed", 0):
        with contextlib.suppress(Exception):
            database.close()


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
    if is_sqlite(db) and MAIL_MIGRATION in {m.name for m in applied}:
        found = db.execute_sql(
            "SELECT count(*) FROM mail.sqlite_master WHERE name = 'intake'"
        ).fetchone()[0]
        if not found:
            raise SchemaError(
                f"the received mail, {db.mail_path}, is missing or empty: put it back beside"
                f" {db.database} (a backup holds both, postroom-…-mail.db beside postroom-….db)"
            )
    pending = [m.name for m in status if m.applied is None]
    if pending:
        raise SchemaError(
            f"the database schema is behind ({len(pending)} pending: {', '.join(pending)}):"
            " run `postroom migrate`"
        )


__all__ = ["ALL_MODELS", "DriverMissing", "SchemaError", "check_schema", "migrate", "open_database"]
