"""The models of /api/v1 (marshmallow): the bodies and query parameters it accepts, the shapes
it answers with.

They are the one source: flask-smorest (admin_ui/api_request.api) loads and checks every request
with them before the view runs, dumps every JSON answer through them, and apispec writes them
into the OpenAPI document. The fields check shape and type only; what a value means (is it an
address, is the name blank, may the status change) is the domain's rule.

A field's error message is written without its name ("is required", "must be a string");
api_request.validation_message puts the field's path in front ("attachments[0].filename is
required"), so the API says what it always said.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from flask import current_app, g
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load
from marshmallow.validate import Length, OneOf, Range

from domain.addresses import MAX_ADDRESS_CHARS as MAX_ADDRESS
from domain.entries import PROJECT_EVENTS
from domain.routing import Rule
from storage.models import ENTRY_KINDS, ENTRY_STATUSES, MAX_ID

MAX_PAGE = 200
MAX_TEXT = 200_000  # the full-text index keeps this much of a body
MAX_DATA_CHARS = 10_000  # an event's "data", as JSON text
MAX_ATTACHMENTS = 20  # per mail to a customer, as postroom.outbound
NOT_STORABLE = "must not contain NUL characters or lone surrogates"


def storable(text: str) -> bool:
    """Tell whether both databases can store the text (no NUL, valid UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- fields: JSON types taken as they are (no "5" for 5, no 1 for true), messages without names
_COMMON = {"required": "is required", "null": "must not be null"}


class Text(fields.String):
    default_error_messages: ClassVar[dict] = {
        **_COMMON,
        "invalid": "must be a string",
        "storable": NOT_STORABLE,
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if not storable(value):
            raise self.make_error("storable")
        return value


class Whole(fields.Integer):
    default_error_messages: ClassVar[dict] = {**_COMMON, "invalid": "must be an integer"}

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class Flag(fields.Boolean):
    default_error_messages: ClassVar[dict] = {**_COMMON, "invalid": "must be a boolean"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Moment(fields.DateTime):
    """An ISO 8601 date and time: read as naive UTC (no offset means UTC), written with Z."""

    default_error_messages: ClassVar[dict] = {
        **_COMMON,
        "invalid": "must be an ISO 8601 date and time, e.g. 2026-11-27T14:30:00Z",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not storable(value):
            raise self.make_error("invalid")
        moment = parse_datetime(value)
        if moment is None:
            raise self.make_error("invalid")
        return moment

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.replace(tzinfo=None).isoformat() + "Z"


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 date-time as naive UTC (no offset means UTC), or None if it is not one."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return value


class Items(fields.List):
    default_error_messages: ClassVar[dict] = {**_COMMON, "invalid": "must be an array"}


class Object(fields.Dict):
    default_error_messages: ClassVar[dict] = {**_COMMON, "invalid": "must be an object"}


class One(fields.Nested):
    default_error_messages: ClassVar[dict] = {**_COMMON, "type": "must be an object"}


class ProjectStatus(Text):
    """A project status: one configured in [ui] project_statuses, or the project's own.

    The document lists the configured ones as its enum (admin_ui.api adds them per app)."""

    default_error_messages: ClassVar[dict] = {"choice": "must be one of {choices}"}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        project = g.get("project")
        allowed = project_statuses(project.status if project is not None else None)
        if value not in allowed:
            raise self.make_error("choice", choices=", ".join(allowed))
        return value


def project_statuses(current: str | None = None) -> tuple[str, ...]:
    """The configured project statuses, plus a project's current one if no longer listed."""
    statuses = current_app.config["POSTROOM_SETTINGS"].ui.project_statuses
    return statuses if current in (None, *statuses) else (*statuses, current)


def string(max_length: int, min_length: int = 0, **kwargs) -> Text:
    checks = [Length(max=max_length, error="may have at most {max} characters")]
    if min_length:
        checks.insert(0, Length(min=min_length, error="must not be empty"))
    return Text(validate=checks, **kwargs)


def choice(values, **kwargs) -> Text:
    shown = ", ".join("null" if value is None else str(value) for value in values)
    return Text(validate=OneOf(list(values), error=f"must be one of {shown}"), **kwargs)


def an_id(**kwargs) -> Whole:
    return Whole(validate=Range(1, MAX_ID, error="must be from {min} to {max}"), **kwargs)


def described(description: str, **metadata) -> dict:
    return {"metadata": {"description": description, **metadata}}


class Closed(Schema):
    """A JSON object with these fields and no others; its keys must be storable text."""

    class Meta:
        unknown = RAISE
        ordered = True

    error_messages: ClassVar[dict] = {"type": "must be an object"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        known = ", ".join(field.data_key or name for name, field in self.fields.items())
        self.error_messages = {
            **self.error_messages,
            "unknown": f"is not a known field (known: {known or 'none'})",
        }

    @pre_load
    def _storable_keys(self, data, **kwargs):
        if isinstance(data, dict) and not all(storable(key) for key in data):
            raise ValidationError(f"keys {NOT_STORABLE}")
        return data


# --- answers ---------------------------------------------------------------------------------
class Error(Closed):
    error = Text(required=True)
    status = Whole(required=True)


class MailAddress(Closed):
    name = Text(required=True)
    address = Text(required=True)


class Attachment(Closed):
    id = Whole(required=True)
    filename = Text(required=True)
    content_type = Text(required=True)
    size = Whole(required=True)


class ParseWarning(Closed):
    item = Text(required=True, **described("the header (To) or part (part 3 (image/png))"))
    code = Text(required=True, **described("what went wrong: a stable code"))
    detail = Text(required=True)


class Route(Closed):
    rule = choice(
        [r.value for r in Rule], required=True, **described("why: the rule that placed the entry")
    )
    detail = Text(required=True, **described("the one fact the rule names"))
    project_id = Whole(required=True, allow_none=True)
    candidates = Items(Whole(), required=True)
    category = Text(required=True)


class Entry(Closed):
    id = Whole(required=True)
    project_id = Whole(required=True, allow_none=True)
    kind = choice(ENTRY_KINDS, required=True)
    status = choice(ENTRY_STATUSES, required=True)
    category = Text(required=True, **described("customer, partner, internal or external"))
    subject = Text(required=True)
    from_ = Text(
        required=True, data_key="from", attribute="from", **described("the sender's address")
    )
    from_name = Text(required=True)
    to = Items(One(MailAddress), required=True)
    cc = Items(One(MailAddress), required=True)
    text = Text(required=True)
    has_attachments = Flag(required=True)
    attachments = Items(One(Attachment), required=True)
    route_reason = Text(required=True, **described("why the entry was filed where it is"))
    route = One(Route, required=True, **described("route_reason as data: rule and detail"))
    candidates = Items(Whole(), required=True)
    parse_error = Text(required=True, allow_none=True)
    parse_warnings = Items(
        One(ParseWarning), required=True, **described("items of the mail not read as written")
    )
    message_id = Text(required=True, allow_none=True)
    occurred_at = Moment(required=True)
    received_at = Moment(required=True)
    done_at = Moment(required=True, allow_none=True)
    spam = Flag(required=True)
    auto_submitted = Flag(required=True)
    bounce = Flag(required=True)
    send_problem = choice(
        ["bounced", "failed"],
        required=True,
        allow_none=True,
        **described("mail to a customer that came back (bounced) or was given up (failed)"),
    )
    has_raw = Flag(required=True, **described("GET /entries/{entry_id}/raw has the message"))


class EntryAssigned(Entry):
    also_filed = Whole(
        required=True,
        **described(
            "how many more waiting unassigned mails from the same sender were filed under the"
            " project with it (remember_sender); 0 without remember_sender"
        ),
    )


class EntryPage(Closed):
    entries = Items(One(Entry), required=True)
    next_cursor = Text(
        required=True,
        allow_none=True,
        **described("pass as cursor for the next page; null on the last page"),
    )


class CustomerAddress(Closed):
    address = Text(required=True)
    kind = choice(("customer", "partner"), required=True)


class AddressList(Closed):
    addresses = Items(One(CustomerAddress), required=True)


class Project(Closed):
    id = Whole(required=True)
    name = Text(required=True)
    domain = Text(required=True)
    status = Text(required=True)
    contact_name = Text(required=True)
    created_at = Moment(required=True)
    customer_addresses = Items(One(CustomerAddress), required=True)


class ProjectList(Closed):
    projects = Items(One(Project), required=True)


# --- bodies ----------------------------------------------------------------------------------
class EntryAssign(Closed):
    project_id = an_id(required=True)
    remember_sender = Flag(
        load_default=False,
        **described("also store the sender as a customer address of the project"),
    )


class EntryDiscard(Closed):
    may_be_empty = True  # no body at all is {} (api_request.Parser)

    block = choice(
        ("sender", "domain", None),
        allow_none=True,
        **described("send later mail from this sender or its domain to spam"),
    )


def _status(description: str = "one of the statuses configured in [ui] project_statuses"):
    return ProjectStatus(**described(description))


class ProjectUpdate(Closed):
    name = string(200, 1)
    domain = string(253, **described("the website's host name, e.g. bakery.example"))
    status = _status()
    contact_name = string(200)


class ProjectCreate(ProjectUpdate):
    name = string(200, 1, required=True)
    customer_addresses = Items(
        string(MAX_ADDRESS, 1, metadata={"format": "email"}),
        validate=Length(max=50, error="may have at most {max} items"),
    )


class AddressCreate(Closed):
    address = string(MAX_ADDRESS, 1, required=True, metadata={"format": "email"})
    kind = choice(("customer", "partner"), load_default="customer")


class NoteCreate(Closed):
    kind = choice(
        ("note", "call"),
        required=True,
        **described("note: internal; call: a message from the customer (call, SMS)"),
    )
    text = string(MAX_TEXT, 1, required=True)
    subject = string(500)
    occurred_at = Moment(**described("default now; without offset: UTC"))
    needs_action = Flag(
        **described(
            "a note starts open (listed under Tickets) only with needs_action true; left out:"
            " the account's default (Settings, normally false); a call always starts open"
        )
    )


class EventCreate(Closed):
    type = choice(PROJECT_EVENTS, required=True)
    subject = string(500, 1, required=True)
    text = string(MAX_TEXT)
    status = _status("status_change only: the project's new status")
    data = Object(
        **described(f"stored with the event; at most {MAX_DATA_CHARS} characters as JSON")
    )


class Upload(Closed):
    filename = string(255, 1, required=True)
    content_type = string(255, load_default="application/octet-stream")
    content_base64 = Text(
        required=True,
        **described("the file's bytes, base64; each file at most [outbound] max_attachment_bytes"),
    )


class MessageCreate(Closed):
    to = string(
        MAX_ADDRESS,
        1,
        required=True,
        **described("the recipient: a customer address of the project or another", format="email"),
    )
    subject = string(500, **described("one line; required without template"))
    body = string(
        MAX_TEXT,
        **described(
            "Markdown; sent as HTML with a plain-text alternative. Required without"
            " template_id. The signature is not added by itself."
        ),
    )
    template_id = an_id(
        allow_none=True,
        **described(
            "a mail template of the account: rendered for this project and recipient, it"
            " fills in subject and body where those are empty"
        ),
    )
    answer_entry_id = an_id(
        allow_none=True,
        **described("an entry of this project that the mail answers (threading)"),
    )
    attachments = Items(
        One(Upload), validate=Length(max=MAX_ATTACHMENTS, error="may have at most {max} items")
    )


# --- query parameters: text as it comes in a URL --------------------------------------------
class QueryWhole(fields.Integer):
    """A whole number in a query: ASCII digits only (no sign, no blank, no spaces)."""

    default_error_messages: ClassVar[dict] = {
        "invalid": "must be a whole number from {min} to {max}"
    }

    def __init__(self, low: int, high: int, **kwargs):
        self.low, self.high = low, high
        super().__init__(
            validate=Range(low, high, error=self.default_error_messages["invalid"]), **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs):
        if not (
            isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12
        ):
            raise self.make_error("invalid", min=self.low, max=self.high)
        return int(value)


class QueryFlag(fields.Boolean):
    """true or false in a query (1, 0 and empty too; any case); absent is false."""

    default_error_messages: ClassVar[dict] = {"invalid": "must be true or false"}

    def __init__(self, **kwargs):
        super().__init__(load_default=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = str(value).lower()
        if value not in ("true", "false", "1", "0", ""):
            raise self.make_error("invalid")
        return value in ("true", "1")


class Query(Schema):
    class Meta:
        ordered = True


class EntryQuery(Query):
    q = string(
        2000,
        **described(
            'search syntax: words, "phrases", from:, to:, subject:, has:attachment, is:open,'
            " is:done, kind:, project:, after:, before:, -negation; after:/before: are days"
            " of the token user's time zone (their own, else the account's)"
        ),
    )
    project_id = QueryWhole(1, MAX_ID, **described("only this project's entries"))
    unassigned = QueryFlag(**described("only entries without a project"))
    include_spam = QueryFlag(**described("also entries discarded as spam"))
    limit = QueryWhole(1, MAX_PAGE, load_default=50, **described("entries per page"))
    cursor = string(200, **described("next_cursor of the previous page"))


class ProjectQuery(Query):
    q = string(200, **described("words in the name or domain"))
    limit = QueryWhole(
        1, MAX_PAGE, load_default=MAX_PAGE, **described("at most this many projects")
    )
