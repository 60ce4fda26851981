"""The activity log: who did what to an entry or a project, and when."""

from __future__ import annotations

from peewee import JOIN

from storage.models import Activity, User


def log(account_id, action, *, entry=None, project=None, user=None, detail="") -> Activity:
    """Write one row of the log (in the caller's transaction)."""
    return Activity.create(
        account=account_id, entry=entry, project=project, user=user, action=action, detail=detail
    )


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
