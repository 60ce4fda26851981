"""Bounded filing: entries keep their HTML sanitised at filing, intakes count their tries.

entry.html_safe stays NULL for the entries filed before: the entry page sanitises those when
shown, up to a size (admin_ui/mail_html.py), and `postroom reprocess --all` fills it in.
On SQLite the intake table lives in the received-mail file (0007), so it is altered there;
SQLite commits each file on its own, so a column that is there already is left (run again
after a crash between the two).
"""

from peewee import SqliteDatabase

MAIL = "mail"
ENTRY_COLUMNS = ('"html_safe" TEXT', '"html_note" VARCHAR(255)')
INTAKE_COLUMN = '"attempts" INTEGER NOT NULL DEFAULT 0'


def _intake(db) -> str:
    return f"{MAIL}.intake" if isinstance(db, SqliteDatabase) else "intake"


def _add(db, table: str, column: str) -> None:
    schema = MAIL if table.startswith(f"{MAIL}.") else None
    name = table.split(".")[-1]
    if column.split('"')[1] not in {c.name for c in db.get_columns(name, schema)}:
        db.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column}")


def up(migrator, db):
    for column in ENTRY_COLUMNS:
        _add(db, "entry", column)
    _add(db, _intake(db), INTAKE_COLUMN)


def down(migrator, db):
    db.execute_sql(f'ALTER TABLE {_intake(db)} DROP COLUMN "attempts"')
    for column in ("html_note", "html_safe"):
        db.execute_sql(f'ALTER TABLE entry DROP COLUMN "{column}"')
