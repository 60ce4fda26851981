"""Team and UI: sessions, login throttling, API tokens, activity, block rules, entry category.

Frozen model copies as of this migration, like 0001.
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)


def up(migrator, db):
    class Account(Model):
        class Meta:
            database = db
            table_name = "account"

    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class Project(Model):
        class Meta:
            database = db
            table_name = "project"

    class Entry(Model):
        class Meta:
            database = db
            table_name = "entry"

    migrator.migrate(
        migrator.add_column("user", "is_active", BooleanField(default=True)),
        migrator.add_column("user", "last_login_at", DateTimeField(null=True)),
        migrator.add_column("customer_address", "kind", CharField(default="customer")),
        migrator.add_column("entry", "category", CharField(default="external")),
        migrator.add_column("entry", "spam", BooleanField(default=False)),
    )

    class WebSession(Model):
        token_hash = CharField(primary_key=True, max_length=64)
        user = ForeignKeyField(User, null=True, on_delete="CASCADE")
        data = TextField(default="{}")
        created_at = DateTimeField()
        last_seen_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "web_session"

    class LoginAttempt(Model):
        key = CharField(primary_key=True)
        failures = IntegerField(default=0)
        window_start = DateTimeField()

        class Meta:
            database = db
            table_name = "login_attempt"

    class ApiToken(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        token_hash = CharField(max_length=64, unique=True)
        name = CharField(default="")
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_token"

    class AppSetting(Model):
        key = CharField(primary_key=True)
        value = TextField()

        class Meta:
            database = db
            table_name = "app_setting"

    class Activity(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        entry = ForeignKeyField(Entry, null=True, on_delete="CASCADE")
        project = ForeignKeyField(Project, null=True, on_delete="CASCADE")
        user = ForeignKeyField(User, null=True, on_delete="SET NULL")
        action = CharField()
        detail = TextField(default="")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "activity"

    class BlockRule(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        pattern = CharField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "block_rule"
            indexes = ((("account", "pattern"), True),)

    db.create_tables([WebSession, LoginAttempt, ApiToken, AppSetting, Activity, BlockRule])
    db.execute_sql(
        "CREATE INDEX entry_account_project_status"
        " ON entry (account_id, project_id, status, occurred_at)"
    )
    db.execute_sql("CREATE INDEX entry_account_occurred_id ON entry (account_id, occurred_at, id)")


def down(migrator, db):
    for table in (
        "block_rule",
        "activity",
        "app_setting",
        "api_token",
        "login_attempt",
        "web_session",
    ):
        migrator.migrate(migrator.drop_table(table))
    migrator.migrate(
        migrator.drop_column("entry", "spam"),
        migrator.drop_column("entry", "category"),
        migrator.drop_column("customer_address", "kind"),
        migrator.drop_column("user", "last_login_at"),
        migrator.drop_column("user", "is_active"),
    )
