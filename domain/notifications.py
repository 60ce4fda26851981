"""A member's own notification settings: what to hear of and how, projects followed, read marks.

Each change touches only the member's own rows, so read-only members may make them too.
Event types are storage.notifications.EVENT_TYPES; a type not named keeps its stored choice
(or the default, storage.notifications.DEFAULT_PREFERENCES); unknown types are refused.
Only projects of the member's own account can be followed, only their own notifications marked.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import Invalid, NotFound
from storage import notifications as store
from storage.models import Notification, User
from storage.notifications import EVENT_TYPES, Preference
from storage.projects import project_of_account

UNKNOWN_EVENT = "no such event type: {event_type!r} (known: {known})"
NO_PROJECT = "no project {project_id} in this account"
NO_NOTIFICATION = "no notification {notification_id} of yours"


def save_preferences(user: User, chosen: Mapping[str, Preference]) -> None:
    """Store the member's choice for each event type named in `chosen`."""
    for event_type in chosen:
        if event_type not in EVENT_TYPES:
            raise Invalid(UNKNOWN_EVENT.format(event_type=event_type, known=", ".join(EVENT_TYPES)))
    store.save_preferences(user.id, dict(chosen))


def set_following(user: User, project_id: int, follow: bool) -> None:
    """Follow or unfollow a project of the member's account (twice changes nothing)."""
    project = project_of_account(user.account_id, project_id)
    if project is None:
        raise NotFound(NO_PROJECT.format(project_id=project_id))
    store.set_following(project.id, user.id, follow)


def mark_read(user: User, notification_id: int | None = None) -> int:
    """Mark one of the member's notifications read (None: every unread one); how many changed."""
    if notification_id is not None:
        found: Notification | None = store.notification_of_user(user.id, notification_id)
        if found is None:
            raise NotFound(NO_NOTIFICATION.format(notification_id=notification_id))
    return store.mark_read(user.id, notification_id)
