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

import datetime as dt
import logging

from peewee import DatabaseError

from domain.translatable import N_
from domain.users import may_change_anything
from postroom import notify_mail
from postroom.config import Settings
from postroom.mail_headers import HeaderError
from postroom.mail_language import words_for
from postroom.notify_subjects import subject_of
from postroom.notify_text import describe
from postroom.outbound import mail_can_go_out
from postroom.outbound_checks import OutboundError
from postroom.outbound_send import (
    Route,
    account_route,
    pause_route,
    resume_route,
    route_paused,
)
from postroom.smtp_client import failure_words
from storage import notifications as store
from storage.models import Entry, Event, Notification, Project, User, utcnow

log = logging.getLogger("postroom.notify")

FOLLOWER_KINDS = {
    "customer_mail",
    "status_change",
    "change_request",
    "requirements_submitted",
    "file_upload",
}
BATCH = 100
NEWS_INTRO = N_("There is news in postroom:")  # the first line of a mail sent at once


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
    mail_possible = not automatic and mail_can_go_out(event.account_id, settings)
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


def send_immediate(settings: Settings) -> str | None:
    """Job: one mail per user with every notification due at once since the last run."""
    sent = mail_due(settings, "immediate", intro=NEWS_INTRO)
    return f"{sent} notification mails sent" if sent else None


def mail_due(
    settings: Settings,
    due: str,
    *,
    intro: str,
    digest: bool = False,
    now: dt.datetime | None = None,
) -> int:
    """Mail each user's notifications waiting for `due` in one message; return mails sent.

    Each mail is in its recipient's language and time zone (postroom.mail_language); `intro`
    is a message id (marked with N_), said in that language as the mail's first line.

    Each account's mail goes through its own server (Settings), else through [outbound]
    smtp_url (postroom.notify_mail). Each user's rows are marked emailed as soon as their mail
    is accepted, so a fault half way through sends nobody the same news twice when the run is
    tried again. A mail that cannot be written or is refused for good (5xx) sets that user's
    rows aside (logged, not tried again); one refused for now (4xx, at MAIL, RCPT or DATA)
    waits for the next run. Either way the others' mail goes on. A fault of an account's own
    server or of the connection to it (cannot connect, not allowed, 421, the session's time
    limit, or any other fault of its session, such as a login smtplib cannot write) leaves
    that account's mail for a later run, once the account's back-off is over
    (the same as its mail to customers); one of the [outbound] server ends the run after the
    others' mail, as a failed job, which the worker tries again (so does an smtp_url that
    cannot be read). An account without any server has its rows set aside (they stay in the
    app).
    """
    groups = store.due_emails(due)
    if not groups:
        return 0
    by_account: dict[int, list[tuple[User, list[Notification]]]] = {}
    for user, rows in groups.items():
        by_account.setdefault(user.account_id, []).append((user, rows))
    now = now or utcnow()
    sent = 0
    default_fault: BaseException | None = None
    shared: notify_mail.Mailer | None = None  # one session with [outbound] for all accounts
    try:
        for account_id, users in by_account.items():
            route = account_route(account_id, settings)
            if route is None and settings.outbound.smtp_url:  # set, yet unreadable (logged)
                default_fault = default_fault or OutboundError("[outbound] smtp_url is not valid")
                continue  # the mail waits for the operator's fix; the job fails meanwhile
            if route is None:
                _set_aside_without_server(account_id, users)
                continue
            if (route.own and route_paused(route, now)) or (
                not route.own and default_fault is not None
            ):
                continue  # a later run
            if route.own:
                mailer = notify_mail.Mailer(route, settings)
            else:
                shared = shared or notify_mail.Mailer(route, settings)
                mailer = shared
            try:
                sent += _mail_users(settings, mailer, route, users, intro=intro, digest=digest)
            except DatabaseError:
                raise
            except Exception as error:  # noqa: BLE001 - one account's fault never stops others
                # a server or connection fault (OSError, SMTPException, OutboundError), or
                # one the client meets before it sends (a non-ASCII login: UnicodeError)
                mailer.close()
                if not route.own:
                    default_fault = error
                    continue
                log.warning(
                    "notify: account %s: its mail server %s:%s failed (%s); its notification "
                    "mail waits",
                    account_id,
                    route.server.host,
                    route.server.port,
                    failure_words(error),
                )
                pause_route(route, now)
            else:
                if route.own:
                    resume_route(route)
            finally:
                if route.own:
                    mailer.close()
    finally:
        if shared is not None:
            shared.close()
    if default_fault is not None:
        raise default_fault
    return sent


def _mail_users(
    settings: Settings,
    mailer: notify_mail.Mailer,
    route: Route,
    users: list[tuple[User, list[Notification]]],
    *,
    intro: str,
    digest: bool,
) -> int:
    """Send one account's users their mail, from the route's sender; return mails sent."""
    sent = 0
    sender = (route.name, route.address)
    for user, rows in users:
        ids = [row.id for row in rows]
        count = len(rows)
        try:
            words = words_for(user)  # the recipient's language and time zone
            message = notify_mail.compose(
                settings,
                user,
                rows,
                sender=sender,
                subject=subject_of(rows, digest=digest, words=words),
                intro=intro,
                words=words,
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


def _set_aside_without_server(
    account_id: int, users: list[tuple[User, list[Notification]]]
) -> None:
    ids = [row.id for _user, rows in users for row in rows]
    log.warning(
        "notify: account %s has no outgoing mail server (Settings or [outbound] smtp_url); "
        "%d notification mails set aside (they stay in the app)",
        account_id,
        len(ids),
    )
    store.mark_email_failed(ids)
