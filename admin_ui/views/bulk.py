"""Bulk actions on the Tickets and Unassigned lists: done, open, assign, spam, delete for the
entries ticked, or for every entry of the list ("select all N matching")."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, url_for
from peewee import fn

from admin_ui.forms import BulkForm
from domain import entries as domain_entries
from domain.errors import Forbidden, Invalid, NotFound
from storage.models import Entry
from storage.projects import project_of_account

bp = Blueprint("bulk", __name__)

# What each list offers (the buttons its template shows) and where its page is.
LISTS = {
    "tickets": (("done", "spam", "delete"), "pages.tickets"),
    "unassigned": (("done", "open", "assign", "spam", "delete"), "unassigned.index"),
}
# What the flash message says afterwards; {entries} is "1 entry" or "N entries".
WORDS = {
    "done": "Marked {entries} done.",
    "open": "Marked {entries} open.",
    "assign": "Filed {entries} under {project}.",
    "spam": "Discarded {entries} as spam.",
    "delete": "Deleted {entries} for good.",
    "none_chosen": "Choose entries first.",
    "no_project": "Choose a project first.",
    "unknown_action": "That action is not offered here.",
}


@bp.app_template_global()
def bulk_upto() -> int:
    """The newest entry id now: "select all" takes the list's entries up to it, so mail that
    arrives after the page was shown is not changed unseen."""
    return Entry.select(fn.MAX(Entry.id)).scalar() or 0


def _matching_ids(list_name: str, upto: int) -> list[int]:
    """Every entry of the list (as storage.timeline lists it) up to id `upto`, at most one
    more than domain_entries.BULK_LIMIT (which the domain then refuses)."""
    query = Entry.select(Entry.id).where(
        (Entry.account == g.user.account_id)
        & (Entry.spam == False)  # noqa: E712
        & (Entry.id <= upto)
    )
    if list_name == "tickets":
        query = query.where((Entry.status == "open") & Entry.project.is_null(False))
    else:
        query = query.where(Entry.project.is_null())
    return [row[0] for row in query.limit(domain_entries.BULK_LIMIT + 1).tuples()]


@bp.post("/tickets/bulk", defaults={"list_name": "tickets"}, endpoint="tickets")
@bp.post("/unassigned/bulk", defaults={"list_name": "unassigned"}, endpoint="unassigned")
def bulk(list_name: str):
    """Do one action to the chosen entries of a list, then show the list again."""
    form = BulkForm()
    actions, page = LISTS[list_name]
    back = redirect(url_for(page, q=form.q.data or None))
    action = form.action.data
    if action not in actions:
        flash(WORDS["unknown_action"], "error")
        return back
    upto = form.upto.data
    chosen = (
        _matching_ids(list_name, upto) if form.all.data and upto is not None else form.entry_ids()
    )
    if not chosen:
        flash(WORDS["none_chosen"], "error")
        return back
    project = None
    if action == "assign":
        project = project_of_account(g.user.account_id, form.project_id.data or 0)
        if project is None:
            flash(WORDS["no_project"], "error")
            return back
    try:
        if action in ("done", "open"):
            count = domain_entries.set_done_many(g.user, chosen, action == "done")
        elif action == "assign":
            count = domain_entries.assign_many(g.user, chosen, project)
        elif action == "spam":
            count = domain_entries.discard_spam_many(g.user, chosen)
        else:
            count = domain_entries.delete_many(g.user, chosen)
    except Forbidden:
        abort(403)
    except NotFound:
        abort(404)
    except Invalid as error:
        flash(str(error), "error")
        return back
    entries = "1 entry" if count == 1 else f"{count} entries"
    flash(WORDS[action].format(entries=entries, project=project.name if project else ""))
    return back
