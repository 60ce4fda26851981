"""The subject of a notification mail: which project, and what happened.

One notification: "Bakery Miller: new mail from Anna Miller", "Unassigned: new mail from
anna@example.org", "Bakery Miller: note by Eva". Several: how many, and where ("3 updates in
Bakery Miller, Unassigned"), the places left out when they would make the subject long ("12
updates in 7 projects"); the digest says the same after its own words.

Every subject is one line of at most MAX_SUBJECT_CHARS: each name in it (a project's, a
stranger's display name) is made one line and cut to MAX_NAME_CHARS first (through
postroom.mail_headers, so an encoded word cannot hide a line break either); set_header checks
the whole once more. Each wording is one whole sentence with named placeholders, in the
recipient's language (postroom.mail_language; the German is in the UI's catalog).
"""

from __future__ import annotations

from domain.translatable import N_
from domain.users import shown_name
from postroom.mail_headers import HeaderError, header_text
from postroom.mail_language import ENGLISH, MailWords
from storage import notifications as store
from storage.models import Entry, Event, Notification, Project, User

MAX_SUBJECT_CHARS = 150
MAX_NAME_CHARS = 60

# event type -> the subject of a mail about one such notification
HEADLINES = {
    "customer_mail": N_("%(project)s: new mail from %(sender)s"),
    "unassigned_mail": N_("Unassigned: new mail from %(sender)s"),
    "mention": N_("%(project)s: note by %(author)s"),
    "status_change": N_("%(project)s: status changed to %(status)s"),
    "change_request": N_("%(project)s: change request: %(subject)s"),
    "requirements_submitted": N_("%(project)s: requirements submitted: %(subject)s"),
    "file_upload": N_("%(project)s: file uploaded: %(subject)s"),
    "outbound_failed": N_("%(project)s: your mail to %(recipient)s could not be sent"),
    "outbound_bounced": N_("%(project)s: your mail to %(recipient)s bounced"),
}
NEWS = N_("%(project)s: news")  # an event type without a wording of its own
STATUS_CHANGE = N_("%(project)s: status changed")  # a status_change that names no status
UNASSIGNED = N_("Unassigned")  # where unassigned mail is, as the Unassigned page is called
NO_PROJECT = "postroom"  # news that belongs to no project
SOMEONE = N_("someone")
NO_SUBJECT = N_("(no subject)")
# the project statuses postroom ships ([ui] project_statuses' default); the UI has their words
SHIPPED_STATUSES = ("lead", "in progress", "review", "live", "archived")

UPDATES_IN = N_("%(count)d updates in %(places)s")
UPDATES_IN_PROJECTS = N_("%(count)d updates in %(projects)d projects")
DIGEST_ONE_IN = N_("Your daily postroom digest: 1 update in %(places)s")
DIGEST_IN = N_("Your daily postroom digest: %(count)d updates in %(places)s")
DIGEST_IN_PROJECTS = N_("Your daily postroom digest: %(count)d updates in %(projects)d projects")


def subject_of(
    notifications: list[Notification], *, digest: bool = False, words: MailWords = ENGLISH
) -> str:
    """The subject of a mail listing these notifications (one or more), in the words' language."""
    if len(notifications) == 1 and not digest:
        return _bounded(headline(notifications[0], words))
    count = len(notifications)
    places = _places(notifications, words)
    listed = ", ".join(places)
    if digest:
        wording = DIGEST_ONE_IN if count == 1 else DIGEST_IN
        text = words(wording, count=count, places=listed)
        if len(text) > MAX_SUBJECT_CHARS:
            text = words(DIGEST_IN_PROJECTS, count=count, projects=len(places))
    else:
        text = words(UPDATES_IN, count=count, places=listed)
        if len(text) > MAX_SUBJECT_CHARS:
            text = words(UPDATES_IN_PROJECTS, count=count, projects=len(places))
    return _bounded(text)


def headline(notification: Notification, words: MailWords = ENGLISH) -> str:
    """What one notification says happened, with the project's name first."""
    kind = notification.event_type
    entry = Entry.get_or_none(Entry.id == notification.entry_id) if notification.entry_id else None
    project = (
        Project.get_or_none(Project.id == notification.project_id)
        if notification.project_id
        else None
    )
    payload = _payload(notification)
    values = {
        "project": _name(project.name) if project else NO_PROJECT,
        "sender": _sender(entry) or words(SOMEONE),
        "author": _author(entry) or words(SOMEONE),
        "subject": _name((entry.subject if entry else "") or words(NO_SUBJECT)),
        "status": _name(_status(str(payload.get("to") or ""), words)),
        "recipient": _name(str(payload.get("to") or payload.get("to_address") or ""))
        or words(SOMEONE),
    }
    if kind == "status_change" and not values["status"]:
        return words(STATUS_CHANGE, **values)
    return words(HEADLINES.get(kind, NEWS), **values)


def _status(status: str, words: MailWords) -> str:
    """A project status in the reader's words: those postroom ships are in the catalog (the
    UI's words for them); one an owner configured stays as written."""
    return words(status) if status in SHIPPED_STATUSES else status


def _places(notifications: list[Notification], words: MailWords = ENGLISH) -> list[str]:
    """Where the news is, in the order first met: project names, Unassigned, postroom."""
    ids = {n.project_id for n in notifications if n.project_id}
    names = {p.id: _name(p.name) for p in Project.select().where(Project.id.in_(list(ids)))}
    places: dict[str, None] = {}
    for notification in notifications:
        if notification.project_id in names:
            places[names[notification.project_id]] = None
        elif notification.event_type == "unassigned_mail":
            places[words(UNASSIGNED)] = None
        else:
            places[NO_PROJECT] = None
    return list(places)


def _payload(notification: Notification) -> dict:
    event = Event.get_or_none(Event.id == notification.event_id) if notification.event_id else None
    return store.event_payload(event) if event is not None else {}


def _sender(entry: Entry | None) -> str:
    """The sender's name or address; "" when there is none (the caller says "someone")."""
    if entry is None:
        return ""
    return _name(entry.from_name) or _name(entry.from_address)


def _author(entry: Entry | None) -> str:
    author = User.get_or_none(User.id == entry.author_id) if entry and entry.author_id else None
    return _name(shown_name(author)) if author else ""


def _name(text: str) -> str:
    """A name or subject as it can stand in a subject: one line, at most MAX_NAME_CHARS."""
    try:
        line = " ".join(header_text(" ".join(str(text)[: MAX_NAME_CHARS * 4].split())).split())
    except HeaderError:
        return ""
    return line if len(line) <= MAX_NAME_CHARS else line[: MAX_NAME_CHARS - 1].rstrip() + "…"


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 1] + "…"
