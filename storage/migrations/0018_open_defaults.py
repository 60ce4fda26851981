"""account.open_notes, open_auto_replies, open_system, open_bounces: which new entries start
open (domain.open_rules). Customer mail and calls always start open, mail to customers done.

open_notes is the default of a new note's "needs action" box (off: a note starts done unless
its author ticks it); auto-replies (Auto-Submitted, out-of-office) and system entries start
done, bounces open. Accounts made before get these defaults too; entries filed before keep
their status.
"""

COLUMNS = (
    ("open_notes", "FALSE"),
    ("open_auto_replies", "FALSE"),
    ("open_system", "FALSE"),
    ("open_bounces", "TRUE"),
)


def up(migrator, db):
    present = {c.name for c in db.get_columns("account")}
    for name, default in COLUMNS:
        if name not in present:
            db.execute_sql(
                f'ALTER TABLE account ADD COLUMN "{name}" BOOLEAN NOT NULL DEFAULT {default}'
            )


def down(migrator, db):
    for name, _ in reversed(COLUMNS):
        db.execute_sql(f'ALTER TABLE account DROP COLUMN "{name}"')
