"""Login throttling by exponential back-off: login_attempt gets last_failure_at, blocked_until.

The rows are short-lived counters, so the table is made anew rather than altered.
"""

from peewee import CharField, DateTimeField, IntegerField, Model


def _tables(db):
    class Before(Model):
        key = CharField(primary_key=True)
        failures = IntegerField(default=0)
        window_start = DateTimeField()

        class Meta:
            database = db
            table_name = "login_attempt"

    class After(Model):
        key = CharField(primary_key=True, max_length=100)
        failures = IntegerField(default=0)
        last_failure_at = DateTimeField()
        blocked_until = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "login_attempt"

    return Before, After


def up(migrator, db):
    before, after = _tables(db)
    db.drop_tables([before])
    db.create_tables([after])


def down(migrator, db):
    before, after = _tables(db)
    db.drop_tables([after])
    db.create_tables([before])
