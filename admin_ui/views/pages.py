"""Pages of the admin UI: Tickets first; the other areas register here too."""

from __future__ import annotations

from flask import Blueprint, Flask, g, render_template

from storage import protocol

bp = Blueprint("pages", __name__)


@bp.get("/")
def tickets():
    entries = protocol.tickets(g.user.account_id)
    return render_template("tickets.html", entries=entries)


@bp.app_context_processor
def navigation_counts():
    user = g.get("user")
    if user is None:
        return {}
    return {
        "open_count": protocol.open_ticket_count(user.account_id),
        "unassigned_count": protocol.unassigned_count(user.account_id),
    }


def register(app: Flask) -> None:
    from admin_ui.views import entries, projects, team, unassigned

    app.register_blueprint(bp)
    for area in (unassigned, projects, entries, team):
        app.register_blueprint(area.bp)
