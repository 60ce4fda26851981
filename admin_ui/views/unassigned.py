"""Unassigned mail: file it under a project, discard it as spam, or delete it."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    url_for,
)

from admin_ui.forms import AssignForm, DiscardForm, SearchForm, UnassignedForm
from admin_ui.i18n import translate_refusal
from admin_ui.route_words import route_words
from admin_ui.views.pages import page_of, shown_count
from domain import entries as domain_entries
from domain.blocks import is_free_mail
from domain.errors import DomainError
from domain.routing import decision_of
from domain.users import may_delete_entries
from storage.accounts import account_by_id, inbox_local_part
from storage.models import Entry
from storage.projects import project_of_account, projects_by_ids, projects_of_account
from storage.timeline import entry_of_account, unassigned, unassigned_count

bp = Blueprint("unassigned", __name__)


@bp.get("/unassigned")
def index():
    entries, older = page_of(unassigned)
    words = SearchForm().q.data.strip()
    candidate_ids = [project_id for entry in entries for project_id in entry.candidate_ids]
    domains = current_app.config["POSTROOM_SETTINGS"].ingest.domains
    return render_template(
        "unassigned.html",
        entries=entries,
        reasons={e.id: route_words(decision_of(e), unassigned_list=True) for e in entries},
        older=older,
        words=words,
        projects=projects_of_account(g.user.account_id, words),
        candidates=projects_by_ids(g.user.account_id, candidate_ids),
        inbox_address=f"{inbox_local_part(account_by_id(g.user.account_id))}@{domains[0]}",
        may_delete=may_delete_entries(g.user),
        listed_count=shown_count(unassigned_count(g.user.account_id, waiting_only=False)),
    )


def _entry_or_404(entry_id: int) -> Entry:
    entry = entry_of_account(g.user.account_id, entry_id)
    if entry is None:
        abort(404)
    return entry


def _done(action: str, entry: Entry, **details):
    """Flash what happened (the words live in unassigned_flash.html) and show the list again."""
    flash(render_template("unassigned_flash.html", action=action, entry=entry, **details).strip())
    words = UnassignedForm().q.data.strip()
    return redirect(url_for("unassigned.index", q=words or None))


@bp.post("/unassigned/<int:entry_id>/assign")
def assign(entry_id: int):
    entry = _entry_or_404(entry_id)
    form = AssignForm()
    project = project_of_account(g.user.account_id, form.project_id.data or 0)
    if project is None:
        flash(render_template("unassigned_flash.html", action="no_project").strip(), "error")
        return redirect(url_for("unassigned.index", q=form.q.data or None))
    remember = form.remember.data
    try:
        assignment = domain_entries.assign_mail(entry, project, g.user.id, remember_sender=remember)
    except DomainError as error:
        flash(translate_refusal(error), "error")
        return redirect(url_for("unassigned.index"))
    return _done(
        "assigned",
        entry,
        project=project,
        remembered=remember and entry.from_address,
        more=len(assignment.also),
    )


@bp.app_template_global()
def free_mail(address: str) -> bool:
    """Whether an address is of a large free-mail domain, whose blocking is not offered."""
    return is_free_mail(address, current_app.config["POSTROOM_SETTINGS"].spam.free_mail_domains)


@bp.post("/unassigned/<int:entry_id>/discard")
def discard(entry_id: int):
    entry = _entry_or_404(entry_id)
    block = DiscardForm().block.data
    free_mail = current_app.config["POSTROOM_SETTINGS"].spam.free_mail_domains
    domain_entries.discard_spam(entry, g.user.id, block=block, free_mail_domains=free_mail)
    return _done("discarded", entry, block=block if entry.from_address else None)


@bp.post("/unassigned/<int:entry_id>/delete")
def delete(entry_id: int):
    entry = _entry_or_404(entry_id)
    if not may_delete_entries(g.user):
        abort(403)
    domain_entries.delete_entry(entry, g.user.id)
    return _done("deleted", entry)
