"""SQLite: received mail (raw_message, intake) moves to its own file, <name>-mail.db.

The listener commits every message there, so it no longer waits for the write lock of the
main file while the filing process files (storage/db.py). The intake table there names
accounts and entries by id without a foreign key: SQLite keeps no key across files, so the
code that deletes entries clears their intakes itself. PostgreSQL keeps one database: nothing
changes there.

Two transactions, since SQLite commits each file of a transaction on its own: the rows are
copied into the mail file and committed (on disk: synchronous=FULL) before the old tables
are dropped. Run again after a crash, it copies what is missing and drops what is left;
until the second step, the main file still holds everything. It needs free disk space for
a second copy of the raw mail while it runs.
"""

from peewee import SqliteDatabase

atomic = False  # the two steps below commit on their own

MAIL = "mail"
TABLES = (
    'CREATE TABLE IF NOT EXISTS {s}."raw_message" ("sha256" VARCHAR(64) NOT NULL PRIMARY KEY,'
    ' "size" INTEGER NOT NULL, "compression" VARCHAR(255) NOT NULL, "data" BLOB NOT NULL,'
    ' "created_at" DATETIME NOT NULL)',
    'CREATE TABLE IF NOT EXISTS {s}."intake" ("id" INTEGER NOT NULL PRIMARY KEY,'
    ' "queue_id" VARCHAR(255) NOT NULL, "sha256" VARCHAR(64) NOT NULL,'
    ' "account_id" INTEGER NOT NULL, "recipient" VARCHAR(255) NOT NULL,'
    ' "project_hint" INTEGER, "mail_from" VARCHAR(255) NOT NULL, "peer" VARCHAR(255) NOT NULL,'
    ' "helo" VARCHAR(255) NOT NULL, "protocol" VARCHAR(255) NOT NULL,'
    ' "received_at" DATETIME NOT NULL, "state" VARCHAR(255) NOT NULL, "entry_id" INTEGER,'
    ' "error" TEXT,'
    ' FOREIGN KEY ("sha256") REFERENCES "raw_message" ("sha256") ON DELETE CASCADE)',
)
# Every index costs the listener a b-tree insert and a WAL page per commit (which it syncs
# before each 250). Left out of the main file's set: intake_sha256 (the unique index on
# sha256, recipient serves its lookups), intake_account_id (it served the foreign key to
# accounts, which this file has not) and intake_queue_id (nothing looks intakes up by it).
# intake_entry_id leaves out the intakes not filed yet: the listener inserts none into it.
INDEXES = (
    'CREATE INDEX IF NOT EXISTS {s}."intake_state" ON "intake" ("state")',
    'CREATE INDEX IF NOT EXISTS {s}."intake_entry_id" ON "intake" ("entry_id")'
    ' WHERE "entry_id" IS NOT NULL',
    'CREATE UNIQUE INDEX IF NOT EXISTS {s}."intake_sha256_recipient"'
    ' ON "intake" ("sha256", "recipient")',
)
COLUMNS = {
    "raw_message": "sha256, size, compression, data, created_at",
    "intake": "id, queue_id, sha256, account_id, recipient, project_hint, mail_from, peer, helo,"
    " protocol, received_at, state, entry_id, error",
}


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    _move(db, "main", MAIL)


def _move(db, source: str, target: str) -> None:
    """Copy raw_message and intake from one attached file to the other, then drop them."""
    left = {
        name
        for (name,) in db.execute_sql(f"SELECT name FROM {source}.sqlite_master")  # noqa: S608
    }
    with db.atomic():
        for statement in TABLES:
            db.execute_sql(statement.format(s=target))
        for table, columns in COLUMNS.items():
            if table in left:
                db.execute_sql(
                    f"INSERT OR IGNORE INTO {target}.{table} ({columns})"  # noqa: S608
                    f" SELECT {columns} FROM {source}.{table}"
                )
        for statement in INDEXES:
            db.execute_sql(statement.format(s=target))
    with db.atomic():
        for table in ("intake", "raw_message"):  # intake names raw_message
            if table in left:
                db.execute_sql(f"DROP TABLE {source}.{table}")


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    _move(db, MAIL, "main")
    db.execute_sql('CREATE INDEX IF NOT EXISTS main."intake_queue_id" ON "intake" ("queue_id")')
    db.execute_sql('CREATE INDEX IF NOT EXISTS main."intake_sha256" ON "intake" ("sha256")')
    db.execute_sql('CREATE INDEX IF NOT EXISTS main."intake_account_id" ON "intake" ("account_id")')
