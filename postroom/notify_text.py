"""The line a notification says about what happened: for the bell and for the email.

Each notification stores its line in English when the event is turned into notifications. The
bell and the mail show it in their reader's language (postroom.mail_language), said anew from
the event, its entry and its project; when the event is gone (retention), the stored line.
Each wording is one whole sentence with named placeholders (N_: extracted for the catalog).
"""

from __future__ import annotations

from domain.translatable import N_
from domain.users import shown_name
from postroom.mail_language import ENGLISH, MailWords
from storage import notifications as store
from storage.models import Entry, Event, Notification, Project, User

NO_PROJECT = "postroom"  # news that belongs to no project
NO_SUBJECT = N_("(no subject)")
SOMEONE = N_("Someone")
THE_CUSTOMER = N_("the customer")
CUSTOMER_MAIL = N_("Mail from %(sender)s in %(where)s: %(subject)s")
UNASSIGNED_MAIL = N_("Unassigned mail from %(sender)s: %(subject)s")
MENTION = N_("%(who)s mentioned you in %(where)s: %(snippet)s")
BOUNCED = N_("Your mail to %(to)s bounced: %(subject)s")
BOUNCED_BECAUSE = N_("Your mail to %(to)s bounced: %(subject)s (%(reason)s)")
FAILED = N_("Your mail to %(to)s could not be sent: %(subject)s")
FAILED_BECAUSE = N_("Your mail to %(to)s could not be sent: %(subject)s (%(reason)s)")
# event type -> its line about a project's news
PROJECT_NEWS = {
    "status_change": N_("Status change in %(where)s: %(subject)s"),
    "change_request": N_("Change request in %(where)s: %(subject)s"),
    "requirements_submitted": N_("Requirements submitted in %(where)s: %(subject)s"),
    "file_upload": N_("File upload in %(where)s: %(subject)s"),
}
NEWS = N_("News in %(where)s: %(subject)s")  # an event type without a wording of its own


def describe(
    event: Event,
    payload: dict,
    entry: Entry | None,
    project: Project | None,
    users: list[User],
    words: MailWords = ENGLISH,
) -> str:
    """One line saying what happened, in the words' language."""
    where = project.name if project else NO_PROJECT
    subject = (entry.subject if entry else "") or words(NO_SUBJECT)
    sender = (entry.from_name or entry.from_address) if entry else ""
    kind = event.kind
    if kind == "customer_mail":
        return words(CUSTOMER_MAIL, sender=sender, where=where, subject=subject)
    if kind == "unassigned_mail":
        return words(UNASSIGNED_MAIL, sender=sender, subject=subject)
    if kind == "mention":
        author = next((u for u in users if entry and u.id == entry.author_id), None)
        who = shown_name(author) if author else words(SOMEONE)
        snippet = " ".join((entry.text if entry else "").split())[:140]
        return words(MENTION, who=who, where=where, snippet=snippet)
    if kind == "outbound_bounced":
        to = payload.get("to") or words(THE_CUSTOMER)
        reason = " ".join(f"{payload.get('status') or ''} {payload.get('error') or ''}".split())
        if reason:
            return words(BOUNCED_BECAUSE, to=to, subject=subject, reason=reason[:200])
        return words(BOUNCED, to=to, subject=subject)
    if kind == "outbound_failed":
        to = payload.get("to") or payload.get("to_address") or words(THE_CUSTOMER)
        reason = " ".join(str(payload.get("error") or "").split())
        if reason:
            return words(FAILED_BECAUSE, to=to, subject=subject, reason=reason[:200])
        return words(FAILED, to=to, subject=subject)
    return words(PROJECT_NEWS.get(kind, NEWS), where=where, subject=subject)


def texts_for(notifications: list[Notification], words: MailWords) -> list[str]:
    """What each notification says, in the words' language (the stored line in English, or
    once its event is gone). Reads the events, entries, projects and authors in one query each."""
    if words.language == ENGLISH.language:
        return [notification.text for notification in notifications]  # as stored
    events = _by_id(Event, {n.event_id for n in notifications})
    entries = _by_id(Entry, {e.entry_id for e in events.values()})
    projects = _by_id(
        Project,
        {
            n.project_id or getattr(events.get(n.event_id), "project_id", None)
            for n in notifications
        },
    )
    authors = _by_id(User, {entry.author_id for entry in entries.values()})
    texts = []
    for notification in notifications:
        event = events.get(notification.event_id)
        if event is None:  # removed by retention: the stored line
            texts.append(notification.text)
            continue
        entry = entries.get(event.entry_id)
        project = projects.get(notification.project_id or event.project_id)
        author = authors.get(entry.author_id) if entry is not None else None
        users = [author] if author is not None else []
        payload = store.event_payload(event)
        texts.append(describe(event, payload, entry, project, users, words))
    return texts


def _by_id(model, ids: set) -> dict:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return {row.id: row for row in model.select().where(model.id.in_(wanted))}
