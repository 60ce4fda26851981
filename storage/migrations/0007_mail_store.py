"""SQLite: received mail (raw_message, intake) moves to its own file, <name>-mail.db.

The listener commits every message there, so it no longer waits for the write lock of the
main file while the filing process files (storage/db.py). The rows are copied, then the old
tables dropped, in one transaction. The intake table there names accounts and entries by id
without a foreign key: SQLite keeps no key across files, so the code that deletes entries
clears their intakes itself. PostgreSQL keeps one database: nothing changes there.
"""

from peewee import SqliteDatabase

MAIL = "mail"
TABLES = (
    'CREATE TABLE {s}."raw_message" ("sha256" VARCHAR(64) NOT NULL PRIMARY KEY,'
    ' "size" INTEGER NOT NULL, "compression" VARCHAR(255) NOT NULL, "data" BLOB NOT NULL,'
    ' "created_at" DATETIME NOT NULL)',
    'CREATE TABLE {s}."intake" ("id" INTEGER NOT NULL PRIMARY KEY,'
    ' "queue_id" VARCHAR(255) NOT NULL, "sha256" VARCHAR(64) NOT NULL,'
    ' "account_id" INTEGER NOT NULL, "recipient" VARCHAR(255) NOT NULL,'
    ' "project_hint" INTEGER, "mail_from" VARCHAR(255) NOT NULL, "peer" VARCHAR(255) NOT NULL,'
    ' "helo" VARCHAR(255) NOT NULL, "protocol" VARCHAR(255) NOT NULL,'
    ' "received_at" DATETIME NOT NULL, "state" VARCHAR(255) NOT NULL, "entry_id" INTEGER,'
    ' "error" TEXT,'
    ' FOREIGN KEY ("sha256") REFERENCES "raw_message" ("sha256") ON DELETE CASCADE)',
)
INDEXES = (
    'CREATE INDEX {s}."intake_queue_id" ON "intake" ("queue_id")',
    'CREATE INDEX {s}."intake_sha256" ON "intake" ("sha256")',
    'CREATE INDEX {s}."intake_account_id" ON "intake" ("account_id")',
    'CREATE INDEX {s}."intake_state" ON "intake" ("state")',
    'CREATE INDEX {s}."intake_entry_id" ON "intake" ("entry_id")',
    'CREATE UNIQUE INDEX {s}."intake_sha256_recipient" ON "intake" ("sha256", "recipient")',
)
COLUMNS = {
    "raw_message": "sha256, size, compression, data, created_at",
    "intake": "id, queue_id, sha256, account_id, recipient, project_hint, mail_from, peer, helo,"
    " protocol, received_at, state, entry_id, error",
}


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    for statement in TABLES:
        db.execute_sql(statement.format(s=MAIL))
    for table, columns in COLUMNS.items():
        db.execute_sql(
            f"INSERT INTO {MAIL}.{table} ({columns}) SELECT {columns} FROM main.{table}"  # noqa: S608
        )
    db.execute_sql("DROP TABLE main.intake")
    db.execute_sql("DROP TABLE main.raw_message")
    for statement in INDEXES:
        db.execute_sql(statement.format(s=MAIL))


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    for statement in TABLES:
        db.execute_sql(statement.format(s="main"))
    for table, columns in COLUMNS.items():
        db.execute_sql(
            f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM {MAIL}.{table}"  # noqa: S608
        )
    db.execute_sql(f"DROP TABLE {MAIL}.intake")
    db.execute_sql(f"DROP TABLE {MAIL}.raw_message")
    for statement in INDEXES:
        db.execute_sql(statement.format(s="main"))
