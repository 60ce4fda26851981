"""The activity log: who did what to an entry or a project, and when.

A record is an action and its parameters (params: JSON of ids, names, statuses, moments as
ISO UTC; admin_ui.event_text makes the reader's sentence of them). `detail` keeps the English
words as well, for rows and readers from before structured events (migration 0021).
"""

from __future__ import annotations

import json

from peewee import JOIN

from storage.models import Activity, User


def log(
    account_id, action, *, entry=None, project=None, user=None, detail="", params=None
) -> Activity:
    """Write one row of the log (in the caller's transaction)."""
    return Activity.create(
        account=account_id,
        entry=entry,
        project=project,
        user=user,
        action=action,
        detail=detail,
        params=as_params(params),
    )


def as_params(params: dict | None) -> str | None:
    """The stored form of an event's parameters (activity.params, entry.event_params)."""
    return None if params is None else json.dumps(params, sort_keys=True, default=str)


def activity_of_entry(entry_id: int) -> list[Activity]:
    return list(Activity.select().where(Activity.entry == entry_id).order_by(Activity.id))


def activity_with_users(entry_id: int) -> list[Activity]:
    """An entry's activity, oldest first, with each user loaded in the same query."""
    query = (
        Activity.select(Activity, User)
        .join(User, JOIN.LEFT_OUTER)
        .where(Activity.entry == entry_id)
        .order_by(Activity.id)
    )
    return list(query)


def keep_entry_history(project_id: int) -> None:
    """Detach the rows about the project's entries from it, so they outlive the project."""
    Activity.update(project=None).where(
        (Activity.project == project_id) & Activity.entry.is_null(False)
    ).execute()
