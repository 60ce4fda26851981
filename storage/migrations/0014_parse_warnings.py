"""entry.parse_warnings: the items of a mail that could not be read as written.

A JSON list of {"item", "code", "detail"} (smtpd_ingest.headers.ParseWarning): a header the
email package's registry could not read (read by the simple reader instead), a MIME part
whose content could not be decoded (kept as it came), parts beyond the walking limits. The
rest of such a mail is read as usual; the entry page lists them. NULL: none, or filed before.
"""

COLUMN = '"parse_warnings" TEXT'


def up(migrator, db):
    if "parse_warnings" not in {c.name for c in db.get_columns("entry")}:
        db.execute_sql(f"ALTER TABLE entry ADD COLUMN {COLUMN}")


def down(migrator, db):
    db.execute_sql('ALTER TABLE entry DROP COLUMN "parse_warnings"')
