"""An index of each account's entries by sender: `from:` counts its matches in a project."""


def up(migrator, db):
    db.execute_sql(
        "CREATE INDEX entry_account_sender ON entry (account_id, from_address, project_id)"
    )


def down(migrator, db):
    db.execute_sql("DROP INDEX entry_account_sender")
