"""Tables of postroom: accounts, projects, entries and the intake records behind them."""

from __future__ import annotations

import datetime as dt
import json

from peewee import (
    SQL,
    BlobField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()

# The largest id: ids are 32-bit integers on PostgreSQL (serial), and SQLite's never get
# that far first. A larger id from a URL, a body or a cursor names nothing; checked before a
# query, it cannot overflow the column (PostgreSQL would refuse the query).
MAX_ID = 2**31 - 1

ENTRY_KINDS = ("inbound", "outbound", "note", "call", "system")
ENTRY_STATUSES = ("open", "done")


def utcnow() -> dt.datetime:
    """Return the current UTC time as a naive datetime, the form stored everywhere."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Account(BaseModel):
    name = CharField()
    inbox_token = CharField()
    created_at = DateTimeField(default=utcnow)
    signature = TextField(default="")  # appended to mail to customers; a template variable
    # the inbox token replaced last, and until when mail to it is still accepted (0016)
    previous_inbox_token = CharField(null=True)
    previous_inbox_token_until = DateTimeField(null=True)
    time_zone = CharField(default="UTC")  # IANA name; dates are shown and filtered in it
    language = CharField(default="en")  # the UI's language for the account (domain.languages)
    # which new entries start open (domain.open_rules; Settings): a note's "needs action"
    # default, auto-replies, system entries, bounces
    open_notes = BooleanField(default=False)
    open_auto_replies = BooleanField(default=False)
    open_system = BooleanField(default=False)
    open_bounces = BooleanField(default=True)


class User(BaseModel):
    account = ForeignKeyField(Account, backref="users", on_delete="CASCADE")
    email = CharField()
    name = CharField(default="")
    role = CharField(default="member")
    password_hash = CharField(null=True)
    created_at = DateTimeField(default=utcnow)
    is_active = BooleanField(default=True)
    last_login_at = DateTimeField(null=True)
    # Raised by password change, (de)activation and "sign out everywhere": every session made
    # under an older value ends (domain.users.end_sessions). Never saved from a stale copy.
    auth_generation = IntegerField(default=0)
    time_zone = CharField(null=True)  # IANA name overriding the account's; None: the account's
    language = CharField(null=True)  # "en", "de" overriding the account's; None: the account's

    class Meta:
        indexes = ((("account", "email"), True),)


class Project(BaseModel):
    account = ForeignKeyField(Account, backref="projects", on_delete="CASCADE")
    name = CharField()
    domain = CharField(default="")
    status = CharField(default="lead")
    contact_name = CharField(default="")
    reply_token = CharField()
    created_at = DateTimeField(default=utcnow)
    invitation_link = CharField(default="")  # a template variable, e.g. the customer's login
    # the reply token replaced last, and until when mail to it is still accepted (0016)
    previous_reply_token = CharField(null=True)
    previous_reply_token_until = DateTimeField(null=True)


class CustomerAddress(BaseModel):
    account = ForeignKeyField(Account, on_delete="CASCADE")
    project = ForeignKeyField(Project, backref="customer_addresses", on_delete="CASCADE")
    address = CharField()  # lower-cased
    kind = CharField(default="customer")  # customer or partner

    class Meta:
        indexes = ((("project", "address"), True), (("account", "address"), False))


class RawMessage(BaseModel):
    """The bytes of one received message, compressed, keyed by their SHA-256."""

    sha256 = CharField(primary_key=True, max_length=64)
    size = IntegerField()
    compression = CharField(default="zlib")
    data = BlobField()
    created_at = DateTimeField(default=utcnow)


class Entry(BaseModel):
    account = ForeignKeyField(Account, backref="entries", on_delete="CASCADE")
    project = ForeignKeyField(Project, null=True, backref="entries", on_delete="SET NULL")
    kind = CharField(default="inbound")
    status = CharField(default="open")
    route_reason = CharField(default="")  # before 0011; nothing reads it (see route_detail)
    # why it is where it is: a domain.routing.Rule and the one fact it names; no default here
    # (so that writers that predate them, and older schemas in tests, still insert): the
    # database's is "legacy" and "" (0011)
    route_rule = CharField()
    route_detail = CharField()
    candidates = TextField(default="[]")  # JSON list of project ids
    auto_submitted = BooleanField(default=False)
    is_bounce = BooleanField(default=False)
    is_list = BooleanField(default=False)
    parse_error = TextField(null=True)
    # JSON list of {"item", "code", "detail"}: what could not be read as written (0014)
    parse_warnings = TextField(null=True)
    subject = TextField(default="")
    from_address = CharField(default="")  # lower-cased
    from_name = CharField(default="")
    to_addresses = TextField(default="[]")  # JSON list of {"name", "address"}
    cc_addresses = TextField(default="[]")
    text = TextField(default="")
    html = TextField(default="")
    html_safe = TextField(null=True)  # html sanitised at filing; None: filed before (0008)
    html_note = CharField(null=True)  # why html_safe differs from html (postroom.safe_html)
    has_attachments = BooleanField(default=False)
    occurred_at = DateTimeField(default=utcnow)  # the mail's Date, or when a call happened
    received_at = DateTimeField(default=utcnow)
    message_id = CharField(max_length=1000, null=True)
    in_reply_to = TextField(default="")  # space-separated ids without <>
    references = TextField(default="")
    raw_sha256 = CharField(max_length=64, null=True)
    author = ForeignKeyField(User, null=True, on_delete="SET NULL")
    project_status = CharField(null=True)
    done_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    done_at = DateTimeField(null=True)
    category = CharField(default="external")  # customer, partner, internal, external
    spam = BooleanField(default=False)
    # of an outbound entry: "failed" (sending given up) or "bounced" (a bounce came back);
    # "" when neither, the database's default (0017; none here, as for route_rule, so that
    # writers of older schemas in tests still insert). Shown as a badge where it is listed.
    send_problem = CharField(null=True)
    # of a system entry postroom wrote: what happened and its parameters (JSON), rendered in
    # the reader's language by admin_ui.event_text; NULL before 0021 (subject/text as stored)
    event_kind = CharField(null=True)
    event_params = TextField(null=True)

    class Meta:
        indexes = (
            (("account", "raw_sha256"), True),
            (("account", "message_id"), False),
            (("account", "project", "occurred_at"), False),
            (("account", "status", "occurred_at"), False),
        )

    @property
    def candidate_ids(self) -> list[int]:
        return json.loads(self.candidates or "[]")

    @property
    def to_list(self) -> list[dict]:
        return json.loads(self.to_addresses or "[]")


class Participant(BaseModel):
    entry = ForeignKeyField(Entry, backref="participants", on_delete="CASCADE")
    role = CharField()  # from, to, cc, reply_to
    address = CharField()  # lower-cased
    name = CharField(default="")

    class Meta:
        indexes = ((("address",), False),)


class Correspondent(BaseModel):
    """Each distinct (address, name) that an account's entries name in any role.

    from: and to: look a text up here first: a few thousand rows per account, not one per
    participant, so a search whose sender matches nobody ends before it reads any entry.
    """

    account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
    address = CharField()  # lower-cased, as in Participant
    name = CharField(default="")

    class Meta:
        indexes = ((("account", "address", "name"), True),)


class Attachment(BaseModel):
    entry = ForeignKeyField(Entry, backref="attachments", on_delete="CASCADE")
    filename = CharField()  # safe for a download header and a file system
    original_filename = TextField(default="")
    content_type = CharField(default="application/octet-stream")
    size = IntegerField(default=0)
    content_id = CharField(max_length=1000, null=True)
    inline = BooleanField(default=False)
    sha256 = CharField(max_length=64)
    data = BlobField()


class Intake(BaseModel):
    """One accepted delivery: the envelope of a message to one recipient."""

    queue_id = CharField(index=True)
    raw = ForeignKeyField(
        RawMessage,
        column_name="sha256",
        field="sha256",
        object_id_name="raw_id",
        on_delete="CASCADE",
    )
    account = ForeignKeyField(Account, on_delete="CASCADE")
    recipient = CharField()
    project_hint = IntegerField(null=True)  # project named by the recipient's plus-detail
    mail_from = CharField(default="")
    peer = CharField(default="")
    helo = CharField(default="")
    protocol = CharField(default="smtp")
    received_at = DateTimeField(default=utcnow)
    state = CharField(default="pending", index=True)  # pending, done, failed
    entry = ForeignKeyField(Entry, null=True, on_delete="SET NULL")
    error = TextField(null=True)
    # tries of filing begun, quarantined after a few; the default is the database's (0008)
    attempts = IntegerField(constraints=[SQL("DEFAULT 0")])
    # the ingest process that files it, while pending (storage/intake.py: claims; 0012)
    claimed_by = CharField(null=True)

    class Meta:
        indexes = ((("raw", "recipient"), True),)


class Event(BaseModel):
    """Outbox row: something happened that the worker may notify about."""

    account = ForeignKeyField(Account, on_delete="CASCADE")
    kind = CharField()
    entry = ForeignKeyField(Entry, null=True, on_delete="CASCADE")
    project = ForeignKeyField(Project, null=True, on_delete="CASCADE")
    payload = TextField(default="{}")
    created_at = DateTimeField(default=utcnow)
    processed_at = DateTimeField(null=True, index=True)


class WebSession(BaseModel):
    """A signed-in browser: the cookie holds a random token, the table its hash."""

    token_hash = CharField(primary_key=True, max_length=64)
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    data = TextField(default="{}")
    created_at = DateTimeField(default=utcnow)  # [web] session_max_hours counts from here
    last_seen_at = DateTimeField(default=utcnow, index=True)
    auth_generation = IntegerField(default=0)  # the user's at login; another value ends it


class LoginAttempt(BaseModel):
    """Login attempts counted per key (an email with a client address, or an address alone);
    a key whose budget is spent is refused until blocked_until (postroom/login_throttle.py)."""

    key = CharField(primary_key=True, max_length=100)
    failures = IntegerField(default=0)  # attempts that did not succeed (reserved ones too)
    last_failure_at = DateTimeField(default=utcnow)
    blocked_until = DateTimeField(null=True)


class ApiToken(BaseModel):
    user = ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    name = CharField(default="")
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)  # to the minute: written at most once a minute
    expires_at = DateTimeField(null=True)  # None: until revoked


class AppSetting(BaseModel):
    """Installation-wide values every process must share (secret key, setup token)."""

    key = CharField(primary_key=True)
    value = TextField()


class Activity(BaseModel):
    """Who did what and when: done/undone, assigned, discarded, status changes."""

    account = ForeignKeyField(Account, on_delete="CASCADE")
    entry = ForeignKeyField(Entry, null=True, on_delete="CASCADE")
    project = ForeignKeyField(Project, null=True, on_delete="CASCADE")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    action = CharField()
    detail = TextField(default="")
    params = TextField(null=True)  # JSON, rendered by admin_ui.event_text; NULL before 0021
    created_at = DateTimeField(default=utcnow)


class BlockRule(BaseModel):
    """Mail from this address (or @domain) goes straight to spam."""

    account = ForeignKeyField(Account, on_delete="CASCADE")
    pattern = CharField()  # lower-cased address, or @domain
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "pattern"), True),)


class AccountSmtp(BaseModel):
    """The account's own outgoing mail server; without it the [outbound] default is used."""

    account = ForeignKeyField(Account, primary_key=True, on_delete="CASCADE")
    host = CharField()
    port = IntegerField(default=587)
    security = CharField(default="starttls")  # none, starttls, tls
    username = CharField(default="")
    password = CharField(default="")  # never shown again in the UI
    from_address = CharField()
    from_name = CharField(default="")


class OutboundMessage(BaseModel):
    """A mail to a customer: its outbound entry, and the worker's sending state."""

    entry = ForeignKeyField(Entry, unique=True, on_delete="CASCADE")
    account = ForeignKeyField(Account, on_delete="CASCADE")
    to_address = CharField()
    cc = TextField(default="")
    from_address = CharField()
    from_name = CharField(default="")
    reply_to = CharField(default="")
    body_text = TextField(default="")
    body_html = TextField(default="")
    state = CharField(default="queued", index=True)  # queued, sent, failed
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow, index=True)
    last_error = TextField(default="")
    sent_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    # the newest bounce of this mail (0017): when, its status code (5.1.1), the remote
    # server's words, the recipient that failed, and the entry the bounce was filed as
    bounced_at = DateTimeField(null=True)
    bounce_status = CharField(default="")
    bounce_detail = TextField(default="")
    bounce_recipient = CharField(default="")
    bounce_entry = IntegerField(null=True)


class MailTemplate(BaseModel):
    account = ForeignKeyField(Account, backref="templates", on_delete="CASCADE")
    name = CharField()
    subject = TextField(default="")
    body = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class ProjectFollower(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")

    class Meta:
        indexes = ((("project", "user"), True),)


class NotificationPreference(BaseModel):
    user = ForeignKeyField(User, on_delete="CASCADE")
    event_type = CharField()
    in_app = BooleanField(default=True)
    email = BooleanField(default=False)
    digest = BooleanField(default=False)  # email once a day instead of at once

    class Meta:
        indexes = ((("user", "event_type"), True),)


class Notification(BaseModel):
    user = ForeignKeyField(User, backref="notifications", on_delete="CASCADE")
    event = ForeignKeyField(Event, null=True, on_delete="CASCADE")
    event_type = CharField()
    project = ForeignKeyField(Project, null=True, on_delete="CASCADE")
    entry = ForeignKeyField(Entry, null=True, on_delete="CASCADE")
    text = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    in_app = BooleanField(default=True)
    read_at = DateTimeField(null=True)
    email_due = CharField(default="")  # "", immediate or digest
    emailed_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "read_at"), False), (("email_due", "emailed_at"), False))


class JobLease(BaseModel):
    """Which worker runs a singleton job, until when; another takes over after expiry."""

    name = CharField(primary_key=True)
    holder = CharField(default="")
    expires_at = DateTimeField(default=utcnow)
    last_run_at = DateTimeField(null=True)


ALL_MODELS = (
    Account,
    User,
    Project,
    CustomerAddress,
    RawMessage,
    Entry,
    Participant,
    Correspondent,
    Attachment,
    Intake,
    Event,
    WebSession,
    LoginAttempt,
    ApiToken,
    AppSetting,
    Activity,
    BlockRule,
    AccountSmtp,
    OutboundMessage,
    MailTemplate,
    ProjectFollower,
    NotificationPreference,
    Notification,
    JobLease,
)
