"""The admin UI's forms as WTForms classes (Flask-WTF): one class per form the pages send.

A form class checks the shape of what was sent: which fields, trimmed how, required, how
long, which choices, whole numbers. What a value means (is it an address, may this user give
that role) is the domain's and the views' business; a form's messages are the words or codes
the templates already show, so the pages look as before.

Two kinds:
- `PostForm` (FlaskForm, CSRF on) for every form that changes something. CSRFProtect in
  admin_ui.app checks the token of every POST before a view runs; the form checks it again
  (Flask-WTF skips a second check once CSRFProtect has passed it). Build one only while
  handling a POST: building a CSRF form puts a token into the session.
- `QueryForm` (CSRF off) for what a GET link or search box puts into the query string
  (`?q=`, `?before=`, filters); it reads `request.args` and never touches the session.

HTML field names are the attribute names, or `name=` where HTML uses a name Python cannot
(`delivery-<event type>`).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import IntegerField, SelectMultipleField, StringField
from wtforms.validators import Length, ValidationError

from domain import accounts, languages, time_zones, users
from domain.addresses import INVALID as NOT_AN_ADDRESS
from domain.addresses import MAX_ADDRESS_CHARS
from domain.errors import DomainError, Invalid
from domain.projects import MAX_FIELD_CHARS as MAX_PROJECT_FIELD_CHARS
from domain.projects import MAX_LINK_CHARS as MAX_PROJECT_LINK_CHARS
from domain.projects import check_fields as check_project_fields
from domain.projects import normalise_domain, normalise_link
from domain.time_zones import to_utc
from domain.users import MAX_NAME_CHARS
from storage import notifications as notification_store


# --- base classes and small parts ----------------------------------------------------------
class PostForm(FlaskForm):
    """A form sent by POST: request.form (and the files of `file_fields`), CSRF token checked.

    Only the form body is read (Flask-WTF alone would read a JSON body too; the views never did).
    A file sent under any other name is not read: a text field sent as a file is not sent.
    """

    file_fields: tuple[str, ...] = ()  # the names of the form's file fields

    def __init__(self, formdata=None, **kwargs):
        if formdata is None:
            formdata = request.form
            files = [(name, f) for name in self.file_fields for f in request.files.getlist(name)]
            if files:
                formdata = CombinedMultiDict((MultiDict(files), request.form))
        super().__init__(formdata=formdata, **kwargs)


class QueryForm(FlaskForm):
    """A form sent by GET: the query string, no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    def __init__(self, formdata=None, **kwargs):
        super().__init__(formdata=request.args if formdata is None else formdata, **kwargs)


def text_field(*validators, filters=(), **kwargs) -> StringField:
    """A text field that is "" when it was not sent (as `request.form.get(name, "")` was)."""
    return StringField(validators=list(validators), filters=list(filters), default="", **kwargs)


def strip(value: str) -> str:
    return value.strip()


def lower(value: str) -> str:
    return value.lower()


def one_newline(value: str) -> str:
    """Browsers send line breaks in text areas as CRLF; keep LF."""
    return value.replace("\r\n", "\n")


def no_nul(value: str) -> str:
    """Search words without NUL characters, which PostgreSQL refuses in a query."""
    return value.replace("\x00", "")


def switch(value: str) -> bool:
    """A "1" switch (a checkbox or a button value): on only for "1", as the views always read it."""
    return value == "1"


class MaxLength(Length):
    """At most `limit` characters (of the filtered value); the message is the page's own."""

    def __init__(self, limit: int, message: str):
        super().__init__(max=limit, message=message)


class OneOf:
    """The value must be one of `choices` (a tuple, or a callable giving one for this form)."""

    def __init__(self, choices, message: str):
        self.choices = choices
        self.message = message

    def __call__(self, form, field) -> None:
        choices = self.choices(form) if callable(self.choices) else self.choices
        if field.data not in choices:
            raise ValidationError(self.message)


def listed(choices: tuple[str, ...]):
    """A filter for a list field: only the known choices, in the order sent (unknown dropped)."""
    return lambda values: [value for value in values or () if value in choices]


class WholeNumber(IntegerField):
    """A whole number, or None when it is missing or not one (as `get(name, type=int)` was)."""

    def process_formdata(self, valuelist) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None


def values_list(**kwargs) -> SelectMultipleField:
    """Every value of a repeated field (`getlist`), as sent; choices are the caller's filter."""
    return SelectMultipleField(validate_choice=False, coerce=str, default=(), **kwargs)


# --- which field a refusal is about --------------------------------------------------------
# A domain refusal's message id -> the form field it is about, so the page can mark that
# field invalid and tie the message to it (aria-describedby). The field names are the forms'
# (a form whose field has another name renames it: refused_field(error, {"password": "new"})).
REFUSED_FIELDS = {
    NOT_AN_ADDRESS: "email",
    users.ALREADY_MEMBER: "email",
    users.NAME_TOO_LONG.message_id: "name",
    users.NOT_ONE_LINE: "name",
    users.BAD_ROLE: "role",
    users.OWNER_ONLY: "role",
    users.TOO_SHORT: "password",
    users.TOO_COMMON: "password",
    users.WRONG_PASSWORD: "current_password",
    accounts.NAME_AGENCY: "agency",
    accounts.NAME_TOO_LONG.message_id: "agency",
    accounts.SIGNATURE_TOO_LONG: "signature",
    time_zones.UNKNOWN_ZONE: "time_zone",
    languages.UNKNOWN_LANGUAGE: "language",
}


def refused_field(error: DomainError, renamed: dict[str, str] | None = None) -> str | None:
    """The field of the form a refusal is about (None: the form as a whole)."""
    for message in error.args:
        name = REFUSED_FIELDS.get(getattr(message, "message_id", message))
        if name is not None:
            return (renamed or {}).get(name, name)
    return None


# --- paging and search boxes (GET) ---------------------------------------------------------
class PageForm(QueryForm):
    """`?before=<id of the last entry seen>` of a keyset page; not a number: the newest page."""

    before = WholeNumber()


class ProtocolPlaceForm(QueryForm):
    """Where in a protocol: `?entry=<id>` opens the page that holds that entry, `?page=<n>`
    is the page's number as its links carry it (a label only); not a number: None."""

    entry = WholeNumber()
    page = WholeNumber()


class SearchForm(QueryForm):
    """A search box `?q=` as typed (a page trims or cuts it as it did)."""

    q = text_field(filters=(no_nul,))


# --- auth ----------------------------------------------------------------------------------
class LoginForm(PostForm):
    email = text_field(filters=(strip, lower))
    password = text_field()


class SetupTokenForm(QueryForm):
    """The setup token, from the link (GET) or the form's hidden field (POST), and the
    language chosen on the setup page (admin_ui.views.auth)."""

    token = text_field()
    language = text_field(filters=(strip,))

    def __init__(self, **kwargs):
        super().__init__(formdata=request.values, **kwargs)


class SetupForm(PostForm):
    """The agency's name and its owner (the account's and the user's rules check the values)."""

    agency = text_field(filters=(strip,))
    email = text_field(filters=(strip,))
    password = text_field()


class TimeZoneForm(PostForm):
    """An IANA time zone name (domain.time_zones.check_time_zone judges it)."""

    time_zone = text_field(filters=(strip,))


# --- the own credentials (profile) ---------------------------------------------------------
MAX_PASSWORD_CHARS = 1000  # hashing a longer one is only work for nothing


class ChangePasswordForm(PostForm):
    """Error codes as profile.html words them: too_long, mismatch."""

    current_password = text_field(MaxLength(MAX_PASSWORD_CHARS, "too_long"))
    new_password = text_field(MaxLength(MAX_PASSWORD_CHARS, "too_long"))
    new_password_repeat = text_field()

    def error_code(self) -> str | None:
        """Call after validate(): what the page says first, or None when the form is fine."""
        if self.current_password.errors or self.new_password.errors:
            return "too_long"
        if self.new_password.data != self.new_password_repeat.data:
            return "mismatch"
        return None

    def refused_field(self) -> str | None:
        """The field error_code() is about: the first too long one, or the repetition."""
        code = self.error_code()
        if code == "mismatch":
            return "new_password_repeat"
        if code == "too_long":
            return "current_password" if self.current_password.errors else "new_password"
        return None


# --- notifications and profile -------------------------------------------------------------
class NextForm(PostForm):
    """A button whose form says where to go back to (`next`, checked by safe_next)."""

    next = StringField()


class FollowForm(NextForm):
    follow = text_field(filters=(switch,))


def _preferences_form() -> type[PostForm]:
    """The preferences table: in_app and email checkboxes, `delivery-<event type>` selects."""
    fields = {
        "in_app": values_list(),
        "email": values_list(),
    }
    for event_type in notification_store.EVENT_TYPES:
        fields[f"delivery_{event_type}"] = text_field(name=f"delivery-{event_type}")
    return type("PreferencesForm", (PostForm,), fields)


PreferencesForm = _preferences_form()


def chosen_preferences(form) -> dict:
    """The preferences the form sends, by event type (unknown types in the lists are ignored)."""
    in_app, email = set(form.in_app.data), set(form.email.data)
    return {
        event_type: notification_store.Preference(
            in_app=event_type in in_app,
            email=event_type in email,
            digest=form[f"delivery_{event_type}"].data == "digest",
        )
        for event_type in notification_store.EVENT_TYPES
    }


# --- entries -------------------------------------------------------------------------------
class ImagesForm(QueryForm):
    """`?images=1` on an entry page and its frame: load remote images."""

    images = text_field(filters=(switch,))


class InlineForm(QueryForm):
    """`?inline=1` on an attachment link: show it in the browser if its type allows."""

    inline = text_field(filters=(switch,))


class DoneForm(PostForm):
    done = text_field(filters=(switch,))


class ManualEntryKindForm(QueryForm):
    """`?kind=` preselects the kind of a new entry (the link "Log a call")."""

    kind = StringField(default="note")

    def __init__(self, **kwargs):
        super().__init__(formdata=request.values, **kwargs)


class ManualEntryForm(PostForm):
    """A note or a call; `problem` is what entry_new.html marks: occurred_at, text or kind."""

    kind = text_field()
    subject = text_field()
    text = text_field()
    occurred_at = text_field()
    needs_action = text_field(filters=(switch,))  # a note's box: it starts open when ticked

    def occurred(self, zone: dt.tzinfo) -> tuple[dt.datetime | None, str | None]:
        """When a call happened, typed as a wall-clock time of zone (the user's), in UTC."""
        if self.kind.data != "call" or not self.occurred_at.data.strip():
            return None, None
        try:
            local = dt.datetime.fromisoformat(self.occurred_at.data.strip())
        except ValueError:
            return None, "occurred_at"
        if local.tzinfo is not None:
            return None, "occurred_at"
        try:
            return to_utc(local, zone), None
        except OverflowError:  # the first or last day of the calendar moved past its end
            return None, "occurred_at"

    def values(self) -> dict:
        """The fields as the page shows them again."""
        return {name: self[name].data for name in ENTRY_FIELDS}


ENTRY_FIELDS = ("kind", "subject", "text", "occurred_at", "needs_action")


# --- mail templates ------------------------------------------------------------------------
class TemplateForm(PostForm):
    """Name, subject, text of a mail template, line breaks as LF, the name trimmed.

    What may be stored (a name, the lengths, a one-line subject, the template language) is
    the templates' rule, checked where the template is saved, with the page's sentences.
    """

    name = text_field(filters=(one_newline, strip))
    subject = text_field(filters=(one_newline,))
    body = text_field(filters=(one_newline,))

    def values(self) -> dict:
        return {name: self[name].data for name in ("name", "subject", "body")}


class TemplatePreviewForm(QueryForm):
    """`?project=<id>`: the project the template editor's preview is made for."""

    project = WholeNumber()  # not a number: the first project


class TemplateSearchForm(QueryForm):
    q = text_field(filters=(no_nul, lambda words: words[:200]))


# --- messages to the customer --------------------------------------------------------------
class AnswerForm(QueryForm):
    """`answer=<entry id>`: from the link (GET) or the form's hidden field (POST)."""

    answer = text_field()

    def __init__(self, **kwargs):
        super().__init__(formdata=request.values, **kwargs)


class MessageLinkForm(QueryForm):
    """What links and the template search put into the message form's query string."""

    to = text_field(filters=(strip, lower))
    template = WholeNumber()  # not a number: no template
    template_q = text_field(filters=(no_nul, lambda words: words[:200]))


class MessageForm(PostForm):
    file_fields = ("attachments",)

    to = text_field()
    to_other = text_field()
    subject = text_field()
    body = text_field()
    attachments = MultipleFileField()

    def values(self) -> dict:
        return {name: self[name].data for name in ("to", "to_other", "subject", "body")}

    def uploads(self) -> list[tuple[str, str, bytes]]:
        """(file name, type, content) of every file chosen; empty file inputs are skipped."""
        return [
            (f.filename or "", f.mimetype or "", f.read())
            for f in self.attachments.data or ()
            if getattr(f, "filename", None)
        ]


# --- projects ------------------------------------------------------------------------------
PROJECT_FIELDS = ("name", "domain", "status", "contact_name")
ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")


def website_host(text: str) -> str:
    """The host of what was typed: people paste https://www.example.com/ as often as not."""
    text = text.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    return text.rstrip("/")


class WebsiteHost:
    """A project's domain (its website's host), if given, by the projects' rule of a host name.

    Only when it is not too long already (that is the page's other code for the field).
    """

    def __call__(self, form, field) -> None:
        if not field.data or len(field.data) > MAX_PROJECT_FIELD_CHARS:
            return
        try:
            normalise_domain(field.data)
        except Invalid:
            raise ValidationError("invalid") from None


class ProjectLine:
    """A project's name or contact person, if given, by the projects' rule of a line (no tab,
    line break or other control character); code "invalid" beside the field.

    Only when it is not too long already (that is the page's other code for the field).
    """

    def __call__(self, form, field) -> None:
        if not field.data or len(field.data) > MAX_PROJECT_FIELD_CHARS:
            return
        try:
            check_project_fields({field.name: field.data})
        except Invalid:
            raise ValidationError("invalid") from None


class ProjectForm(PostForm):
    """Project fields with error codes (projects_fields.html words them): the last one counts.

    `statuses` are the ones this project may take (the configured ones, plus its current one).
    """

    name = text_field(
        MaxLength(MAX_PROJECT_FIELD_CHARS, "too_long"), ProjectLine(), filters=(strip,)
    )
    domain = text_field(
        MaxLength(MAX_PROJECT_FIELD_CHARS, "too_long"), WebsiteHost(), filters=(website_host,)
    )
    status = text_field(
        MaxLength(MAX_PROJECT_FIELD_CHARS, "too_long"),
        OneOf(lambda form: form.statuses, "unknown"),
        filters=(strip,),
    )
    contact_name = text_field(
        MaxLength(MAX_PROJECT_FIELD_CHARS, "too_long"), ProjectLine(), filters=(strip,)
    )

    def __init__(self, statuses: tuple[str, ...], **kwargs):
        self.statuses = statuses
        super().__init__(**kwargs)

    def validate_name(self, field) -> None:
        if not field.data:
            raise ValidationError("required")

    def fields_and_errors(self) -> tuple[dict, dict]:
        """(the fields as typed, error code by field) after validation."""
        self.validate()
        fields = {name: self[name].data for name in PROJECT_FIELDS}
        errors = {name: self[name].errors[-1] for name in PROJECT_FIELDS if self[name].errors}
        return fields, errors


class NewProjectForm(ProjectForm):
    """A new project: its fields and its customers' addresses, one or more per line."""

    addresses = text_field()

    def address_list(self) -> list[tuple[str, str]]:
        return [(a, "customer") for a in ADDRESS_SEPARATORS.split(self.addresses.data) if a]


class ProjectLink:
    """An invitation link, if given, by the projects' rule (an http(s) address); code
    "invalid". Only when it is not too long already (the page's other code for the field)."""

    def __call__(self, form, field) -> None:
        if not field.data or len(field.data) > MAX_PROJECT_LINK_CHARS:
            return
        try:
            normalise_link(field.data)
        except Invalid:
            raise ValidationError("invalid") from None


class ProjectEditForm(ProjectForm):
    """A project's fields as the edit form sends them, with its invitation link (error codes
    too_long, invalid: by the projects' rule of a link)."""

    invitation_link = text_field(
        MaxLength(MAX_PROJECT_LINK_CHARS, "too_long"), ProjectLink(), filters=(strip,)
    )

    def fields_and_errors(self) -> tuple[dict, dict]:
        fields, errors = super().fields_and_errors()
        fields["invitation_link"] = self.invitation_link.data
        if self.invitation_link.errors:
            errors["invitation_link"] = self.invitation_link.errors[-1]
        return fields, errors


class AddressForm(PostForm):
    """A customer address to add (its kind: customer or partner) or to remove."""

    address = text_field(MaxLength(MAX_ADDRESS_CHARS, "too_long"))  # only when adding
    kind = StringField(default="customer")


class ProtocolFilterForm(QueryForm):
    """The protocol's search box and filter form, with unknown choices dropped.

    Dates stay text: the page says which one is not a date when the query is built.
    """

    q = text_field()
    from_date = text_field(filters=(strip,))
    to_date = text_field(filters=(strip,))
    kind = values_list()
    category = values_list()
    status = text_field()
    attachment = text_field(filters=(lambda value: "1" if value else "",))

    def __init__(self, kinds: tuple[str, ...], categories: tuple[str, ...], statuses, **kwargs):
        super().__init__(**kwargs)
        self.kind.data = listed(kinds)(self.kind.data)
        self.category.data = listed(categories)(self.category.data)
        if self.status.data not in statuses:
            self.status.data = ""

    def filters(self) -> dict:
        names = ("q", "from_date", "to_date", "kind", "category", "status", "attachment")
        return {name: self[name].data for name in names}


# --- account settings ----------------------------------------------------------------------
SMTP_FIELDS = ("host", "port", "security", "username", "from_address", "from_name")


class SmtpForm(PostForm):
    """The account's outgoing server, fields trimmed (the password never; empty keeps it).

    Its rules (host, port, the sender address, line breaks, lengths) are the account
    settings' own and are checked where the server is stored, with the page's sentences.
    """

    host = text_field(filters=(strip,))
    port = text_field(filters=(strip,))
    security = text_field(filters=(strip,))
    username = text_field(filters=(strip,))
    from_address = text_field(filters=(strip,))
    from_name = text_field(filters=(strip,))
    password = text_field()

    def values(self) -> dict:
        """The server fields as typed (trimmed), to store or to show the form again."""
        return {name: self[name].data for name in SMTP_FIELDS}


class OpenDefaultsForm(PostForm):
    """Which new entries start open (domain.open_rules): a ticked box sends "1"."""

    open_notes = text_field(filters=(switch,))
    open_auto_replies = text_field(filters=(switch,))
    open_system = text_field(filters=(switch,))
    open_bounces = text_field(filters=(switch,))


class SignatureForm(PostForm):
    """The signature as typed, line breaks as LF, trimmed (its length is the account's rule)."""

    signature = text_field(filters=(one_newline, strip))


# --- team ----------------------------------------------------------------------------------
MAX_MEMBER_FIELD_CHARS = MAX_NAME_CHARS  # a name's limit; the page holds e-mail and role to it too


class MemberForm(PostForm):
    """A new member. The role is checked by the rules (its message names the roles)."""

    email = text_field(MaxLength(MAX_MEMBER_FIELD_CHARS, "too_long"), filters=(strip,))
    name = text_field(MaxLength(MAX_MEMBER_FIELD_CHARS, "too_long"), filters=(strip,))
    role = text_field(MaxLength(MAX_MEMBER_FIELD_CHARS, "too_long"), filters=(strip,))
    password = text_field()

    def values(self) -> dict:
        """The fields shown again (never the password)."""
        return {name: self[name].data for name in ("email", "name", "role")}


class RoleForm(PostForm):
    """A member's new role (whether it is one, and may be given, is the team's rule)."""

    role = text_field()


class ActiveForm(PostForm):
    active = text_field(filters=(switch,))


# --- unassigned mail -----------------------------------------------------------------------
class UnassignedForm(PostForm):
    """Every button on the unassigned list carries the list's search words (`q`) back."""

    q = text_field()


class AssignForm(UnassignedForm):
    project_id = WholeNumber()  # not a number: no project chosen
    remember = text_field(filters=(switch,))


class DiscardForm(UnassignedForm):
    """Discard as spam; `block` (sender, domain, or not sent) says what to block as well."""

    block = StringField()


# --- bulk actions (Tickets, Unassigned) ----------------------------------------------------
BULK_ACTIONS = ("done", "open", "assign", "spam", "delete")


class BulkForm(PostForm):
    """Many entries at once: the ids ticked (`entry`, repeated), or with `all` = 1 every entry
    of the list that existed when it was shown (ids up to `upto`); the `action` (a button of
    BULK_ACTIONS) and, to assign, the project. Carries the list's search words (`q`) back."""

    entry = values_list()
    all = text_field(filters=(switch,))
    upto = WholeNumber()
    action = text_field(OneOf(BULK_ACTIONS, "action"))
    project_id = WholeNumber()
    q = text_field()

    def entry_ids(self) -> list[int]:
        """The ticked ids that are whole numbers (anything else sent is left out)."""
        return [
            int(value)
            for value in self.entry.data
            if value.isascii() and value.isdigit() and len(value) <= 10
        ]


class ProtocolBulkForm(BulkForm):
    """The protocol's bulk form: also the page it was sent from (`before`, `page`) and the
    protocol's search and filters (protocol_filters), which "select all N matching" keeps to."""

    before = WholeNumber()
    page = WholeNumber()

    def filter_form(self, kinds, categories, statuses) -> ProtocolFilterForm:
        """The search and filters the form carries, as ProtocolFilterForm reads them."""
        return ProtocolFilterForm(kinds, categories, statuses, formdata=request.form)
