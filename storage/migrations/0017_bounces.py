"""Bounces tied to the mail they answer (issue 17).

entry.send_problem: "failed" (postroom gave up sending it) or "bounced" (a bounce came back)
on an outbound entry, "" otherwise; lists show it as a badge without reading the queue row.
outbound_message.bounced_at, bounce_status, bounce_detail, bounce_recipient, bounce_entry:
the newest bounce of the mail (its status code, the remote server's words, the recipient that
failed, and the entry the bounce itself was filed as). Mail sent before has none of them.
outbound_message_recipient (account_id, lower(to_address)): a bounce that names only the
recipient that failed is matched to the account's mail to it (storage.bounces) without
reading every outbound mail the account ever sent.
"""

from peewee import SqliteDatabase

ENTRY_COLUMN = "\"send_problem\" VARCHAR(255) NOT NULL DEFAULT ''"
OUTBOUND_COLUMNS = {
    "bounced_at": "{stamp}",
    "bounce_status": "VARCHAR(255) NOT NULL DEFAULT ''",
    "bounce_detail": "TEXT NOT NULL DEFAULT ''",
    "bounce_recipient": "VARCHAR(255) NOT NULL DEFAULT ''",
    "bounce_entry": "INTEGER",
}

RECIPIENT_INDEX = "outbound_message_recipient ON outbound_message (account_id, lower(to_address))"


def up(migrator, db):
    if "send_problem" not in {c.name for c in db.get_columns("entry")}:
        db.execute_sql(f"ALTER TABLE entry ADD COLUMN {ENTRY_COLUMN}")
        # mail given up before stands out too, and is open: someone has to act on it
        db.execute_sql(
            "UPDATE entry SET send_problem = 'failed', status = 'open', done_by_id = NULL,"
            " done_at = NULL WHERE id IN"
            " (SELECT entry_id FROM outbound_message WHERE state = 'failed')"
        )
    stamp = "DATETIME" if isinstance(db, SqliteDatabase) else "TIMESTAMP"
    present = {c.name for c in db.get_columns("outbound_message")}
    for name, kind in OUTBOUND_COLUMNS.items():
        if name not in present:
            column = f'"{name}" {kind.format(stamp=stamp)}'
            db.execute_sql(f"ALTER TABLE outbound_message ADD COLUMN {column}")
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {RECIPIENT_INDEX}")


def down(migrator, db):
    db.execute_sql(f"DROP INDEX IF EXISTS {RECIPIENT_INDEX.partition(' ')[0]}")
    for name in reversed(OUTBOUND_COLUMNS):
        db.execute_sql(f'ALTER TABLE outbound_message DROP COLUMN "{name}"')
    db.execute_sql('ALTER TABLE entry DROP COLUMN "send_problem"')
