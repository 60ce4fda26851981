"""Initial schema: accounts, projects, entries, intake records and the full-text index.

The models here are a frozen copy of storage/models.py as of this migration, so later changes to the
models never change what this migration creates.
"""

from peewee import (
    BlobField,
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
        name = CharField()
        inbox_token = CharField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "account"

    db.create_tables([Account])

    class Project(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        name = CharField()
        domain = CharField(default="")
        status = CharField(default="lead")
        contact_name = CharField(default="")
        reply_token = CharField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "project"

    db.create_tables([Project])

    class User(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        email = CharField()
        name = CharField(default="")
        role = CharField(default="member")
        password_hash = CharField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "user"
            indexes = ((("account", "email"), True),)

    db.create_tables([User])

    class Entry(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        project = ForeignKeyField(Project, null=True, on_delete="SET NULL")
        kind = CharField(default="inbound")
        status = CharField(default="open")
        route_reason = CharField(default="")
        candidates = TextField(default="[]")
        auto_submitted = BooleanField(default=False)
        is_bounce = BooleanField(default=False)
        is_list = BooleanField(default=False)
        parse_error = TextField(null=True)
        subject = TextField(default="")
        from_address = CharField(default="")
        from_name = CharField(default="")
        to_addresses = TextField(default="[]")
        cc_addresses = TextField(default="[]")
        text = TextField(default="")
        html = TextField(default="")
        has_attachments = BooleanField(default=False)
        occurred_at = DateTimeField()
        received_at = DateTimeField()
        message_id = CharField(null=True, max_length=1000)
        in_reply_to = TextField(default="")
        references = TextField(default="")
        raw_sha256 = CharField(null=True, max_length=64)
        author = ForeignKeyField(User, null=True, on_delete="SET NULL")
        project_status = CharField(null=True)
        done_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        done_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "entry"
            indexes = (
                (("account", "raw_sha256"), True),
                (("account", "message_id"), False),
                (("account", "project", "occurred_at"), False),
                (("account", "status", "occurred_at"), False),
            )

    db.create_tables([Entry])

    class Attachment(Model):
        entry = ForeignKeyField(Entry, on_delete="CASCADE")
        filename = CharField()
        original_filename = TextField(default="")
        content_type = CharField(default="application/octet-stream")
        size = IntegerField(default=0)
        content_id = CharField(null=True, max_length=1000)
        inline = BooleanField(default=False)
        sha256 = CharField(max_length=64)
        data = BlobField()

        class Meta:
            database = db
            table_name = "attachment"

    db.create_tables([Attachment])

    class CustomerAddress(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        project = ForeignKeyField(Project, on_delete="CASCADE")
        address = CharField()

        class Meta:
            database = db
            table_name = "customer_address"
            indexes = ((("project", "address"), True), (("account", "address"), False))

    db.create_tables([CustomerAddress])

    class Event(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        kind = CharField()
        entry = ForeignKeyField(Entry, null=True, on_delete="CASCADE")
        project = ForeignKeyField(Project, null=True, on_delete="CASCADE")
        payload = TextField(default="{}")
        created_at = DateTimeField()
        processed_at = DateTimeField(index=True, null=True)

        class Meta:
            database = db
            table_name = "event"

    db.create_tables([Event])

    class RawMessage(Model):
        sha256 = CharField(primary_key=True, max_length=64)
        size = IntegerField()
        compression = CharField(default="zlib")
        data = BlobField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "raw_message"

    db.create_tables([RawMessage])

    class Intake(Model):
        queue_id = CharField(index=True)
        raw = ForeignKeyField(RawMessage, column_name="sha256", on_delete="CASCADE")
        account = ForeignKeyField(Account, on_delete="CASCADE")
        recipient = CharField()
        project_hint = IntegerField(null=True)
        mail_from = CharField(default="")
        peer = CharField(default="")
        helo = CharField(default="")
        protocol = CharField(default="smtp")
        received_at = DateTimeField()
        state = CharField(index=True, default="pending")
        entry = ForeignKeyField(Entry, null=True, on_delete="SET NULL")
        error = TextField(null=True)

        class Meta:
            database = db
            table_name = "intake"
            indexes = ((("raw", "recipient"), True),)

    db.create_tables([Intake])

    class Participant(Model):
        entry = ForeignKeyField(Entry, on_delete="CASCADE")
        role = CharField()
        address = CharField()
        name = CharField(default="")

        class Meta:
            database = db
            table_name = "participant"
            indexes = ((("address",), False),)

    db.create_tables([Participant])
    _create_fulltext_index(db)


def down(migrator, db):
    db.execute_sql("DROP TABLE IF EXISTS entry_fts")
    migrator.migrate(migrator.drop_table("participant"))
    migrator.migrate(migrator.drop_table("intake"))
    migrator.migrate(migrator.drop_table("raw_message"))
    migrator.migrate(migrator.drop_table("event"))
    migrator.migrate(migrator.drop_table("customer_address"))
    migrator.migrate(migrator.drop_table("attachment"))
    migrator.migrate(migrator.drop_table("entry"))
    migrator.migrate(migrator.drop_table("user"))
    migrator.migrate(migrator.drop_table("project"))
    migrator.migrate(migrator.drop_table("account"))


def _create_fulltext_index(db):
    if db.__class__.__name__.startswith("Sqlite"):
        db.execute_sql(
            "CREATE VIRTUAL TABLE entry_fts USING fts5("
            "subject, body, addresses, attachments, "
            "tokenize = 'unicode61 remove_diacritics 2')"
        )
    else:
        db.execute_sql(
            "CREATE TABLE entry_fts ("
            "entry_id INTEGER PRIMARY KEY REFERENCES entry (id) ON DELETE CASCADE, "
            "document TSVECTOR NOT NULL)"
        )
        db.execute_sql("CREATE INDEX entry_fts_document ON entry_fts USING GIN (document)")
