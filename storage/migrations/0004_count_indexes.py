"""Partial indexes for the two counts on every page: open filed entries, unassigned mail."""


def up(migrator, db):
    db.execute_sql(
        "CREATE INDEX entry_open_filed ON entry (account_id)"
        " WHERE status = 'open' AND project_id IS NOT NULL AND NOT spam"
    )
    db.execute_sql(
        "CREATE INDEX entry_unassigned ON entry (account_id) WHERE project_id IS NULL AND NOT spam"
    )


def down(migrator, db):
    db.execute_sql("DROP INDEX entry_open_filed")
    db.execute_sql("DROP INDEX entry_unassigned")
