"""account.previous_inbox_token(_until), project.previous_reply_token(_until): replaced addresses.

An owner can replace the account's inbox address (its token) and an admin a project's reply
address (domain.address_tokens). The token replaced is kept with the time until which mail to
it is still accepted (the grace period); after that, mail to it is refused with 550. NULL: the
token was never replaced.
"""

from peewee import SqliteDatabase

COLUMNS = {
    "account": ("previous_inbox_token", "previous_inbox_token_until"),
    "project": ("previous_reply_token", "previous_reply_token_until"),
}


def up(migrator, db):
    stamp = "DATETIME" if isinstance(db, SqliteDatabase) else "TIMESTAMP"
    for table, (token, until) in COLUMNS.items():
        present = {c.name for c in db.get_columns(table)}
        if token not in present:
            db.execute_sql(f'ALTER TABLE {table} ADD COLUMN "{token}" VARCHAR(255)')
        if until not in present:
            db.execute_sql(f'ALTER TABLE {table} ADD COLUMN "{until}" {stamp}')


def down(migrator, db):
    for table, columns in reversed(COLUMNS.items()):
        for name in reversed(columns):
            db.execute_sql(f'ALTER TABLE {table} DROP COLUMN "{name}"')
