"""Notifications: who follows which project, what each user wants to hear, and the bell's rows.

A missing NotificationPreference row means the default of DEFAULT_PREFERENCES: every event
type shows in the app; mentions, failed and bounced mail to customers and customer mail on followed
projects are emailed at once, unassigned mail once a day in the digest.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from peewee import JOIN

from storage.db import write_transaction
from storage.models import (
    MAX_ID,
    Entry,
    Event,
    Notification,
    NotificationPreference,
    Project,
    ProjectFollower,
    User,
    utcnow,
)

EVENT_TYPES = (
    "customer_mail",
    "unassigned_mail",
    "mention",
    "outbound_failed",
    "outbound_bounced",
    "status_change",
    "change_request",
    "requirements_submitted",
    "file_upload",
)
EMAIL_DUE = ("", "immediate", "digest")
EMAIL_FAILED = "failed"  # email_due of a notification whose mail cannot be sent: set aside


@dataclass(frozen=True)
class Preference:
    """One user's choice for one event type: in the app, by email, at once or in the digest."""

    in_app: bool = True
    email: bool = False
    digest: bool = False

    @property
    def email_due(self) -> str:
        if not self.email:
            return ""
        return "digest" if self.digest else "immediate"


DEFAULT_PREFERENCES = {
    "customer_mail": Preference(email=True),
    "unassigned_mail": Preference(email=True, digest=True),
    "mention": Preference(email=True),
    "outbound_failed": Preference(email=True),
    "outbound_bounced": Preference(email=True),
    "status_change": Preference(),
    "change_request": Preference(),
    "requirements_submitted": Preference(),
    "file_upload": Preference(),
}


# --- followers -----------------------------------------------------------------------------
def follower_ids(project_id: int) -> list[int]:
    """Active users following a project."""
    query = (
        ProjectFollower.select(ProjectFollower.user)
        .join(User)
        .where((ProjectFollower.project == project_id) & (User.is_active == True))  # noqa: E712
        .order_by(ProjectFollower.user)
    )
    return [row.user_id for row in query]


def is_following(project_id: int, user_id: int) -> bool:
    return (
        ProjectFollower.select()
        .where((ProjectFollower.project == project_id) & (ProjectFollower.user == user_id))
        .exists()
    )


def set_following(project_id: int, user_id: int, follow: bool) -> None:
    """Follow or unfollow a project (doing it twice changes nothing)."""
    if follow:
        ProjectFollower.insert(project=project_id, user=user_id).on_conflict_ignore().execute()
    else:
        ProjectFollower.delete().where(
            (ProjectFollower.project == project_id) & (ProjectFollower.user == user_id)
        ).execute()


def followed_projects(user_id: int) -> list[Project]:
    return list(
        Project.select()
        .join(ProjectFollower)
        .where(ProjectFollower.user == user_id)
        .order_by(Project.name)
    )


# --- preferences ---------------------------------------------------------------------------
def preferences_of(user_ids: list[int]) -> dict[int, dict[str, Preference]]:
    """Every event type's preference per user, defaults filled in."""
    chosen: dict[int, dict[str, Preference]] = {
        user_id: dict(DEFAULT_PREFERENCES) for user_id in user_ids
    }
    if not user_ids:
        return chosen
    rows = NotificationPreference.select().where(NotificationPreference.user.in_(user_ids))
    for row in rows:
        if row.event_type in DEFAULT_PREFERENCES:
            chosen[row.user_id][row.event_type] = Preference(row.in_app, row.email, row.digest)
    return chosen


def save_preferences(user_id: int, preferences: dict[str, Preference]) -> None:
    """Store a user's choices for the given event types (unknown types are ignored)."""
    rows = [
        {
            "user": user_id,
            "event_type": event_type,
            "in_app": pref.in_app,
            "email": pref.email,
            "digest": pref.digest,
        }
        for event_type, pref in preferences.items()
        if event_type in DEFAULT_PREFERENCES
    ]
    with write_transaction():
        NotificationPreference.delete().where(
            (NotificationPreference.user == user_id)
            & NotificationPreference.event_type.in_([row["event_type"] for row in rows])
        ).execute()
        if rows:
            NotificationPreference.insert_many(rows).execute()


# --- events to notifications ---------------------------------------------------------------
def unprocessed_events(limit: int = 100) -> list[Event]:
    """New outbox rows in the order they were written."""
    return list(Event.select().where(Event.processed_at.is_null()).order_by(Event.id).limit(limit))


def event_payload(event: Event) -> dict:
    try:
        value = json.loads(event.payload or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def active_users(account_id: int) -> list[User]:
    return list(
        User.select()
        .where((User.account == account_id) & (User.is_active == True))  # noqa: E712
        .order_by(User.id)
    )


def record_notifications(event_id: int, rows: list[dict], now: dt.datetime | None = None) -> bool:
    """Claim an event and write its notifications in one transaction.

    Returns False (and writes nothing) when the event was already processed: claiming is the
    guard that keeps a second worker, or a worker whose lease ran out, from notifying twice.
    """
    with write_transaction():
        claimed = (
            Event.update(processed_at=now or utcnow())
            .where((Event.id == event_id) & Event.processed_at.is_null())
            .execute()
        )
        if claimed != 1:
            return False
        if rows:
            Notification.insert_many(rows).execute()
    return True


# --- the bell ------------------------------------------------------------------------------
def _shown_to(user_id: int):
    return (Notification.user == user_id) & (Notification.in_app == True)  # noqa: E712


def unread_count(user_id: int) -> int:
    return Notification.select().where(_shown_to(user_id) & Notification.read_at.is_null()).count()


def notifications_of(user_id: int, limit: int = 100) -> list[Notification]:
    """A user's in-app notifications, newest first, with their project and entry loaded."""
    return list(
        Notification.select(Notification, Project, Entry)
        .join(Project, JOIN.LEFT_OUTER, on=(Notification.project == Project.id))
        .switch(Notification)
        .join(Entry, JOIN.LEFT_OUTER, on=(Notification.entry == Entry.id))
        .where(_shown_to(user_id))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )


def notification_of_user(user_id: int, notification_id: int) -> Notification | None:
    if not 0 < notification_id <= MAX_ID:
        return None
    return Notification.get_or_none(
        (Notification.id == notification_id) & (Notification.user == user_id)
    )


def mark_read(user_id: int, notification_id: int | None = None) -> int:
    """Mark one (or every) unread notification of a user read; return how many changed."""
    query = Notification.update(read_at=utcnow()).where(
        (Notification.user == user_id) & Notification.read_at.is_null()
    )
    if notification_id is not None:
        query = query.where(Notification.id == notification_id)
    return query.execute()


# --- email ---------------------------------------------------------------------------------
def due_emails(due: str, limit: int = 5000) -> dict[User, list[Notification]]:
    """Notifications waiting for their email ("immediate" or "digest"), grouped per user."""
    query = (
        Notification.select(Notification, User)
        .join(User)
        .where(
            (Notification.email_due == due)
            & Notification.emailed_at.is_null()
            & (User.is_active == True)  # noqa: E712
        )
        .order_by(Notification.user, Notification.id)
        .limit(limit)
    )
    grouped: dict[int, tuple[User, list[Notification]]] = {}
    for row in query:
        grouped.setdefault(row.user_id, (row.user, []))[1].append(row)
    return dict(grouped.values())


def mark_emailed(notification_ids: list[int], now: dt.datetime | None = None) -> None:
    if notification_ids:
        Notification.update(emailed_at=now or utcnow()).where(
            Notification.id.in_(notification_ids)
        ).execute()


def mark_email_failed(notification_ids: list[int]) -> None:
    """Set notifications aside whose mail cannot be sent (no more tries; the bell keeps them)."""
    if notification_ids:
        Notification.update(email_due=EMAIL_FAILED).where(
            Notification.id.in_(notification_ids) & Notification.emailed_at.is_null()
        ).execute()
