"""Intake claims: each pending intake names the ingest process that files it (claimed_by), and
ingest_lease says until when each ingest process is alive (its heartbeat). A claim whose
holder has no lease, or one run out, is taken over by another ingest (storage/intake.py).

On SQLite both live in the received-mail file (0007), beside the intakes they are about; the
listener's commits go there already, and the filing process beats its heart there. SQLite
commits each file on its own, so what is there already is left (run again after a crash).
Intakes stored before keep claimed_by NULL: unclaimed, taken up like those of a dead ingest.
"""

from peewee import SqliteDatabase

MAIL = "mail"
INTAKE_COLUMN = '"claimed_by" VARCHAR(255)'
LEASE = (
    'CREATE TABLE IF NOT EXISTS {table} ("holder" VARCHAR(255) NOT NULL PRIMARY KEY,'
    ' "expires_at" {stamp} NOT NULL)'
)


def _table(db, name: str) -> str:
    return f"{MAIL}.{name}" if isinstance(db, SqliteDatabase) else name


def up(migrator, db):
    sqlite = isinstance(db, SqliteDatabase)
    columns = {c.name for c in db.get_columns("intake", MAIL if sqlite else None)}
    if "claimed_by" not in columns:
        db.execute_sql(f"ALTER TABLE {_table(db, 'intake')} ADD COLUMN {INTAKE_COLUMN}")
    stamp = "DATETIME" if sqlite else "TIMESTAMP"
    db.execute_sql(LEASE.format(table=_table(db, "ingest_lease"), stamp=stamp))


def down(migrator, db):
    db.execute_sql(f"DROP TABLE IF EXISTS {_table(db, 'ingest_lease')}")
    db.execute_sql(f'ALTER TABLE {_table(db, "intake")} DROP COLUMN "claimed_by"')
