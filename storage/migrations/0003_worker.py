"""Worker: outbound mail, templates, notifications, job leases; signature and invitation link.

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
    def stub(name):
        class Stub(Model):
            class Meta:
                database = db
                table_name = name

        return Stub

    Account, Project, User, Entry, Event = (
        stub(n) for n in ("account", "project", "user", "entry", "event")
    )
    migrator.migrate(
        migrator.add_column("account", "signature", TextField(default="")),
        migrator.add_column("project", "invitation_link", CharField(default="")),
    )

    class AccountSmtp(Model):
        account = ForeignKeyField(Account, primary_key=True, on_delete="CASCADE")
        host = CharField()
        port = IntegerField(default=587)
        security = CharField(default="starttls")
        username = CharField(default="")
        password = CharField(default="")
        from_address = CharField()
        from_name = CharField(default="")

        class Meta:
            database = db
            table_name = "account_smtp"

    class OutboundMessage(Model):
        entry = ForeignKeyField(Entry, unique=True, on_delete="CASCADE")
        account = ForeignKeyField(Account, on_delete="CASCADE")
        to_address = CharField()
        cc = TextField(default="")
        from_address = CharField()
        from_name = CharField(default="")
        reply_to = CharField(default="")
        body_text = TextField(default="")
        body_html = TextField(default="")
        state = CharField(default="queued", index=True)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(index=True)
        last_error = TextField(default="")
        sent_at = DateTimeField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "outbound_message"

    class MailTemplate(Model):
        account = ForeignKeyField(Account, on_delete="CASCADE")
        name = CharField()
        subject = TextField(default="")
        body = TextField(default="")
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "mail_template"

    class ProjectFollower(Model):
        project = ForeignKeyField(Project, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")

        class Meta:
            database = db
            table_name = "project_follower"
            indexes = ((("project", "user"), True),)

    class NotificationPreference(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        event_type = CharField()
        in_app = BooleanField(default=True)
        email = BooleanField(default=False)
        digest = BooleanField(default=False)

        class Meta:
            database = db
            table_name = "notification_preference"
            indexes = ((("user", "event_type"), True),)

    class Notification(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        event = ForeignKeyField(Event, null=True, on_delete="CASCADE")
        event_type = CharField()
        project = ForeignKeyField(Project, null=True, on_delete="CASCADE")
        entry = ForeignKeyField(Entry, null=True, on_delete="CASCADE")
        text = TextField(default="")
        created_at = DateTimeField()
        in_app = BooleanField(default=True)
        read_at = DateTimeField(null=True)
        email_due = CharField(default="")
        emailed_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "notification"
            indexes = ((("user", "read_at"), False), (("email_due", "emailed_at"), False))

    class JobLease(Model):
        name = CharField(primary_key=True)
        holder = CharField(default="")
        expires_at = DateTimeField()
        last_run_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "job_lease"

    db.create_tables(
        [
            AccountSmtp,
            OutboundMessage,
            MailTemplate,
            ProjectFollower,
            NotificationPreference,
            Notification,
            JobLease,
        ]
    )


def down(migrator, db):
    for table in (
        "job_lease",
        "notification",
        "notification_preference",
        "project_follower",
        "mail_template",
        "outbound_message",
        "account_smtp",
    ):
        migrator.migrate(migrator.drop_table(table))
    migrator.migrate(
        migrator.drop_column("project", "invitation_link"),
        migrator.drop_column("account", "signature"),
    )
