"""The spam list: mail discarded as spam (or sent there by a block rule), each with the day
the retention job purges it, and *not spam*: back to Unassigned, or straight to a project.

Everyone sees the list; read-only users get no forms (and the app refuses their POSTs).
"""

from __future__ import annotations

import datetime as dt

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
from flask_babel import gettext, lazy_gettext

from admin_ui.forms import PostForm, QueryForm, WholeNumber
from admin_ui.local_time import viewer_zone
from domain import entries as domain_entries
from domain.blocks import FreeMailDomain
from domain.errors import DomainError
from domain.time_zones import local_time
from storage.blocks import discarded_at, spam_of_account
from storage.models import Entry
from storage.projects import project_of_account, projects_of_account
from storage.timeline import entry_of_account

bp = Blueprint("spam", __name__)

PAGE = 50
# What the page says after an action (one place, for translation).
WORDS = {
    "back": lazy_gettext("“%(subject)s” is not spam: it is back in Unassigned."),
    "filed": lazy_gettext("“%(subject)s” is not spam: it is filed under %(project)s."),
    "no_project": lazy_gettext("That project does not exist."),
}


class SpamPageForm(QueryForm):
    """`?before=<id>`: the next page of the list."""

    before = WholeNumber()


class NotSpamForm(PostForm):
    """Not spam; `project_id` (optional) files it straight under that project."""

    project_id = WholeNumber()


def purge_date(
    entry: Entry, discarded: dt.datetime | None, days: int, zone: dt.tzinfo = dt.UTC
) -> dt.date | None:
    """The day (in zone) the retention job deletes this spam (storage.housekeeping.purge_spam):
    `days` after it arrived or was last discarded, whichever is later; None if never purged."""
    if not days:
        return None
    start = max(entry.received_at, discarded) if discarded else entry.received_at
    return local_time(start + dt.timedelta(days=days), zone).date()


@bp.get("/spam")
def index():
    """The spam list, newest first, PAGE at a time, each entry with its purge date."""
    before = SpamPageForm().before.data
    entries = spam_of_account(g.user.account_id, PAGE + 1, before)
    older = entries[PAGE].id if len(entries) > PAGE else None
    entries = entries[:PAGE]
    days = current_app.config["POSTROOM_SETTINGS"].retention.spam_days
    discarded = discarded_at([entry.id for entry in entries])
    zone = viewer_zone()
    return render_template(
        "spam.html",
        entries=entries,
        purges={e.id: purge_date(e, discarded.get(e.id), days, zone) for e in entries},
        spam_days=days,
        older=older,
        projects=projects_of_account(g.user.account_id, ""),
    )


@bp.post("/spam/<int:entry_id>/not-spam")
def not_spam(entry_id: int):
    """Not spam: back to Unassigned, or under the project chosen."""
    entry = entry_of_account(g.user.account_id, entry_id)
    if entry is None or not entry.spam:
        abort(404)
    project_id = NotSpamForm().project_id.data
    project = None
    if project_id:
        project = project_of_account(g.user.account_id, project_id)
        if project is None:
            flash(str(WORDS["no_project"]))
            return redirect(url_for(".index"))
    try:
        domain_entries.not_spam(g.user, entry, project)
    except DomainError:
        abort(404)
    words = str(WORDS["filed"] if project else WORDS["back"])
    subject = entry.subject or gettext("(no subject)")
    flash(words % {"subject": subject, "project": project.name if project else ""})
    return redirect(url_for(".index"))


@bp.app_errorhandler(FreeMailDomain)
def free_mail_refused(error: FreeMailDomain):
    """A discard that would block a whole free-mail domain: nothing was changed; say why.

    (The API answers its own: 422 with the same words, admin_ui.api.)
    """
    return render_template("error.html", code=400, text=str(error)), 400
