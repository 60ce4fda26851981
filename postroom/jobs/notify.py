"""Turn outbox events into notifications, and mail the ones due at once.

Who hears of what:
- customer mail, status changes, change requests, requirements, file uploads: the project's
  followers (a project nobody follows: every active member who is not read-only);
- unassigned mail: every active member of the account except read-only ones (they cannot
  assign or discard it, so the news is not theirs to act on);
- a mention (`@anna` in a note): users whose email local part or name matches;
- failed or bounced mail to a customer: its author (payload `user_id`, else the entry's author).
Nobody is told of what they did themselves. Mail that is auto-submitted or a bounce is shown
in the app only, whatever the preferences say: it never causes an email.
"""

from __future__ import annotations

import logging

from peewee import DatabaseError

from domain.users import may_change_anything, shown_name
from postroom import notify_mail
from postroom.config import Settings
from postroom.mail_headers import HeaderError
from storage import notifications as store
from storage.models import Entry, Event, Project, User

log = logging.getLogger("postroom.notify")

FOLLOWER_KINDS = {
    "customer_mail",
    "status_change",
    "change_request",
    "requirements_submitted",
    "file_upload",
}
BATCH = 100


def process_events(settings: Settings) -> str | None:
    """Job: notify about every unprocessed event, oldest first.

    An event that cannot be turned into notifications (a fault in its data) is logged and
    set aside as processed, so it never stops the events after it; a database error stops
    the run, which the worker tries again.
    """
    events = rows = set_aside = 0
    while True:
        batch = store.unprocessed_events(BATCH)
        users_by_account: dict[int, list[User]] = {}
        for event in batch:
            users = users_by_account.setdefault(
                event.account_id, store.active_users(event.account_id)
            )
            try:
                made = notifications_for(settings, event, users)
            except DatabaseError:
                raise
            except Exception:  # one event's bad data never stops the others
                log.exception(
                    "notify: event %s (%s, account %s) set aside: it cannot be "
                    "turned into notifications",
                    event.id,
                    event.kind,
                    event.account_id,
                )
                made, set_aside = [], set_aside + 1
            if store.record_notifications(event.id, made):
                events += 1
                rows += len(made)
        if len(batch) < BATCH:
            break
    summary = f"{events} events, {rows} notifications" if events else None
    return f"{summary}, {set_aside} set aside" if set_aside else summary


def notifications_for(settings: Settings, event: Event, users: list[User]) -> list[dict]:
    """The Notification rows one event makes, following each recipient's preferences."""
    payload = store.event_payload(event)
    entry = Entry.get_or_none(Entry.id == event.entry_id) if event.entry_id else None
    project_id = event.project_id or (entry.project_id if entry else None)
    project = Project.get_or_none(Project.id == project_id) if project_id else None
    if entry is not None and entry.spam:
        return []  # discarded before we got to it
    recipients = recipients_of(event, payload, entry, users)
    automatic = bool(
        payload.get("auto_submitted")
        or payload.get("bounce")
        or (entry is not None and (entry.auto_submitted or entry.is_bounce))
    )
    mail_possible = bool(settings.outbound.smtp_url) and not automatic
    preferences = store.preferences_of([user.id for user in recipients])
    text = describe(event, payload, entry, project, users)
    rows = []
    for user in recipients:
        preference = preferences[user.id].get(event.kind, store.Preference())
        email_due = preference.email_due if mail_possible else ""
        if not preference.in_app and not email_due:
            continue
        rows.append(
            {
                "user": user.id,
                "event": event.id,
                "event_type": event.kind,
                "project": project.id if project else None,
                "entry": entry.id if entry else None,
                "text": text,
                "created_at": event.created_at,
                "in_app": preference.in_app,
                "email_due": email_due,
            }
        )
    return rows


def recipients_of(event: Event, payload: dict, entry: Entry | None, users: list[User]):
    """The users to tell of an event (active members of its account)."""
    kind = event.kind
    if kind in ("outbound_failed", "outbound_bounced"):
        author_id = payload.get("user_id") or (entry.author_id if entry else None)
        return [user for user in users if user.id == author_id]
    if kind == "unassigned_mail":
        chosen = [user for user in users if may_change_anything(user)]
    elif kind in FOLLOWER_KINDS:
        project_id = event.project_id or (entry.project_id if entry else None)
        followers = set(store.follower_ids(project_id)) if project_id else set()
        if followers:
            chosen = [user for user in users if user.id in followers]
        else:  # a project nobody follows yet: its news goes to everyone who can act on it
            chosen = [user for user in users if may_change_anything(user)]
    elif kind == "mention":
        chosen = mentioned(users, payload.get("names") or [])
    else:
        return []
    actor_id = payload.get("user_id") or (entry.author_id if entry else None)
    sender = entry.from_address.lower() if entry and entry.from_address else None
    return [user for user in chosen if user.id != actor_id and user.email.lower() != sender]


def mention_handles(user: User) -> set[str]:
    """The words `@…` that mean this user: email local part, full name, first name."""
    handles = {user.email.partition("@")[0].lower()}
    words = user.name.lower().split()
    if words:
        handles |= {joiner.join(words) for joiner in ("", ".", "_", "-")}
        handles.add(words[0])
    return handles


def mentioned(users: list[User], names: list[str]) -> list[User]:
    wanted = {str(name).lower().strip(".-_") for name in names}
    return [user for user in users if mention_handles(user) & wanted]


def describe(
    event: Event, payload: dict, entry: Entry | None, project: Project | None, users: list[User]
) -> str:
    """One line saying what happened, for the bell and for the email."""
    where = project.name if project else "postroom"
    subject = (entry.subject if entry else "") or "(no subject)"
    sender = (entry.from_name or entry.from_address) if entry else ""
    kind = event.kind
    if kind == "customer_mail":
        return f"Mail from {sender} in {where}: {subject}"
    if kind == "unassigned_mail":
        return f"Unassigned mail from {sender}: {subject}"
    if kind == "mention":
        author = next((u for u in users if entry and u.id == entry.author_id), None)
        who = shown_name(author) if author else "Someone"
        snippet = " ".join((entry.text if entry else "").split())[:140]
        return f"{who} mentioned you in {where}: {snippet}"
    if kind == "outbound_bounced":
        to = payload.get("to") or "the customer"
        words = " ".join(f"{payload.get('status') or ''} {payload.get('error') or ''}".split())
        reason = f" ({words[:200]})" if words else ""
        return f"Your mail to {to} bounced: {subject}{reason}"
    if kind == "outbound_failed":
        to = payload.get("to") or payload.get("to_address") or "the customer"
        error = " ".join(str(payload.get("error") or "").split())
        reason = f" ({error[:200]})" if error else ""
        return f"Your mail to {to} could not be sent: {subject}{reason}"
    labels = {
        "status_change": "Status change",
        "change_request": "Change request",
        "requirements_submitted": "Requirements submitted",
        "file_upload": "File upload",
    }
    return f"{labels.get(kind, kind)} in {where}: {subject}"


def send_immediate(settings: Settings) -> str | None:
    """Job: one mail per user with every notification due at once since the last run."""
    sent = mail_due(
        settings,
        "immediate",
        subject="{count} update{s} in postroom",
        intro="There is news in postroom:",
    )
    return f"{sent} notification mails sent" if sent else None


def mail_due(settings: Settings, due: str, *, subject: str, intro: str) -> int:
    """Mail each user's notifications waiting for `due` in one message; return mails sent.

    Each user's rows are marked emailed as soon as their mail is accepted, so a fault half way
    through sends nobody the same news twice when the run is tried again. A mail that cannot
    be written or is refused for good (5xx) sets that user's rows aside (logged, not tried
    again); one refused for now (4xx, at MAIL, RCPT or DATA) waits for the next run. Either
    way the others' mail goes on. Only a fault of the server or the connection stops the run.
    """
    groups = store.due_emails(due)
    if not groups or not settings.outbound.smtp_url:
        return 0
    sent = 0
    with notify_mail.Mailer(settings) as mailer:
        for user, rows in groups.items():
            ids = [row.id for row in rows]
            count = len(rows)
            try:
                message = notify_mail.compose(
                    settings,
                    user,
                    rows,
                    subject=subject.format(count=count, s="" if count == 1 else "s"),
                    intro=intro,
                )
                outcome = mailer.send(message, user.email)
            except HeaderError as error:
                log.error(
                    "notify: mail to user %s (%d notifications) set aside: %s",
                    user.id,
                    count,
                    error,
                )
                outcome = notify_mail.FAILED
            if outcome == notify_mail.SENT:
                store.mark_emailed(ids)
                sent += 1
            elif outcome == notify_mail.FAILED:
                store.mark_email_failed(ids)
            else:
                log.warning(
                    "notify: mail to user %s (%d notifications) deferred by the server; "
                    "the next run tries again",
                    user.id,
                    count,
                )
    return sent
