"""Bulk actions on the Tickets and Unassigned lists and on a project's protocol: done, open,
assign, spam, delete for the entries ticked, or for every entry of the list ("select all N
matching"; on the protocol: matching its search and filters)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, url_for
from flask_babel import lazy_gettext, ngettext
from peewee import fn

from admin_ui.forms import BulkForm, ProtocolBulkForm
from admin_ui.i18n import translate
from admin_ui.local_time import viewer_zone
from admin_ui.views.projects import DateError, protocol_filters, protocol_query
from domain import entries as domain_entries
from domain.errors import Forbidden, Invalid, NotFound
from storage.models import MAX_ID, Entry
from storage.projects import project_of_account
from storage.protocol_position import matching_ids
from storage.query import QuerySyntaxError

bp = Blueprint("bulk", __name__)

# What each list offers (the buttons its template shows) and where its page is.
LISTS = {
    "tickets": (("done", "spam", "delete"), "pages.tickets"),
    "unassigned": (("done", "open", "assign", "spam", "delete"), "unassigned.index"),
    # a protocol's entries are filed already (assign would move them; the entry page does
    # that one at a time), and notes, calls and system entries are never spam
    "protocol": (("done", "open", "delete"), "projects.protocol"),
}
# What the flash message says when nothing was done.
WORDS = {
    "none_chosen": lazy_gettext("Choose entries first."),
    "no_project": lazy_gettext("Choose a project first."),
    "unknown_action": lazy_gettext("That action is not offered here."),
}


def done_words(action: str, count: int, project: str) -> str:
    """What the flash message says after the action: a whole sentence per plural form."""
    if action == "done":
        return ngettext("Marked %(num)d entry done.", "Marked %(num)d entries done.", count)
    if action == "open":
        return ngettext("Marked %(num)d entry open.", "Marked %(num)d entries open.", count)
    if action == "assign":
        return ngettext(
            "Filed %(num)d entry under %(project)s.",
            "Filed %(num)d entries under %(project)s.",
            count,
            project=project,
        )
    if action == "spam":
        return ngettext(
            "Discarded %(num)d entry as spam.", "Discarded %(num)d entries as spam.", count
        )
    return ngettext("Deleted %(num)d entry for good.", "Deleted %(num)d entries for good.", count)


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
    back = redirect(url_for(LISTS[list_name][1], q=form.q.data or None))
    upto = form.upto.data
    everything = form.all.data and upto is not None
    return _act(
        form, list_name, back, lambda: _matching_ids(list_name, upto) if everything else None
    )


@bp.post("/projects/<int:project_id>/protocol/bulk", endpoint="protocol")
def protocol(project_id: int):
    """Do one action to the chosen entries of a protocol (or all matching its search and
    filters, which the form carries), then show the same page of the protocol again."""
    project = project_of_account(g.user.account_id, project_id) if project_id <= MAX_ID else None
    if project is None:
        abort(404)
    form = ProtocolBulkForm()
    filters = protocol_filters(form)
    shown = {name: value for name, value in filters.items() if value}
    before, page = form.before.data, form.page.data
    back = redirect(
        url_for(
            "projects.protocol",
            project_id=project.id,
            **shown,
            before=before if before and 0 < before <= MAX_ID else None,
            page=page if page and 0 < page <= MAX_ID else None,
        )
    )
    upto = form.upto.data

    def everything() -> list[int] | None:
        if not (form.all.data and upto is not None):
            return None
        try:
            query = protocol_query(filters)
        except (QuerySyntaxError, DateError):
            return []
        return matching_ids(
            g.user.account_id,
            project.id,
            query,
            upto=upto,
            limit=domain_entries.BULK_LIMIT + 1,
            categories=tuple(filters["category"]),
            zone=viewer_zone(),
        )

    return _act(form, "protocol", back, everything, project_id=project.id)


def _act(form: BulkForm, list_name: str, back, everything, project_id: int | None = None):
    """The action of `form` on the ticked entries, or on `everything()` when it gives ids;
    a protocol's action takes only entries of its project."""
    actions = LISTS[list_name][0]
    action = form.action.data
    if action not in actions:
        flash(str(WORDS["unknown_action"]), "error")
        return back
    chosen = everything()
    if chosen is None:
        chosen = form.entry_ids()
        if project_id is not None:
            chosen = _of_project(chosen, project_id)
    if not chosen:
        flash(str(WORDS["none_chosen"]), "error")
        return back
    project = None
    if action == "assign":
        project = project_of_account(g.user.account_id, form.project_id.data or 0)
        if project is None:
            flash(str(WORDS["no_project"]), "error")
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
        flash(translate(str(error)), "error")
        return back
    flash(done_words(action, count, project.name if project else ""))
    return back


def _of_project(entry_ids: list[int], project_id: int) -> list[int]:
    """The ticked ids that are entries of the project; another's id refuses the lot (404)."""
    ids = sorted({i for i in entry_ids if 0 < i <= MAX_ID})[: domain_entries.BULK_LIMIT + 1]
    if not ids:
        return []
    found = {
        row[0]
        for row in Entry.select(Entry.id)
        .where((Entry.account == g.user.account_id) & (Entry.project == project_id))
        .where(Entry.id.in_(ids))
        .tuples()
    }
    if len(found) != len(ids):
        abort(404)
    return ids
