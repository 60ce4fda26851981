"""Pages of the admin UI: Tickets first; the other areas register here too."""

from __future__ import annotations

from flask import Blueprint, Flask, g, render_template

from admin_ui.forms import PageForm
from domain.users import may_change_anything, may_delete_entries
from storage import timeline
from storage.models import Entry

bp = Blueprint("pages", __name__)
PAGE_SIZE = 50


@bp.get("/")
def tickets():
    entries, older = page_of(timeline.tickets)
    return render_template(
        "tickets.html", entries=entries, older=older, may_delete=may_delete_entries(g.user)
    )


def page_of(listing) -> tuple[list[Entry], int | None]:
    """One keyset page of `listing(account_id, limit, before)` and the id to continue before.

    The page is named by the last entry seen (`?before=<entry id>`), so its position comes
    from the database itself; a deleted or foreign id starts from the newest entry.
    """
    before = None
    marker = PageForm().before.data
    if marker is not None:
        seen = timeline.entry_of_account(g.user.account_id, marker)
        if seen is not None:
            before = (seen.occurred_at, seen.id)
    entries = listing(g.user.account_id, limit=PAGE_SIZE + 1, before=before)
    older = entries[PAGE_SIZE - 1].id if len(entries) > PAGE_SIZE else None
    return entries[:PAGE_SIZE], older


@bp.app_context_processor
def navigation_counts():
    user = g.get("user")
    if user is None:
        return {}
    return {
        "open_count": shown_count(timeline.open_ticket_count(user.account_id)),
        "unassigned_count": shown_count(timeline.unassigned_count(user.account_id)),
        "can_edit": may_change_anything(user),
    }


def shown_count(count: int) -> str:
    """A count as the navigation shows it: counting stops at COUNT_LIMIT, shown as "999+"."""
    return f"{timeline.COUNT_LIMIT - 1}+" if count >= timeline.COUNT_LIMIT else str(count)


def register(app: Flask) -> None:
    from admin_ui.views import (
        bulk,
        credentials,
        entries,
        mail_templates,
        messages,
        notifications,
        open_defaults,
        projects,
        settings,
        team,
        unassigned,
    )

    app.register_blueprint(bp)
    for area in (
        bulk,
        unassigned,
        projects,
        entries,
        team,
        notifications,
        credentials,
        messages,
        mail_templates,
        settings,
        open_defaults,
    ):
        app.register_blueprint(area.bp)
