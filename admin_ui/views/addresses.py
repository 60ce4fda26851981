"""Replacing the account's inbox address (owners, under Settings) and a project's reply address
(owners and admins, on the project's Edit page).

The old address keeps taking mail for [ingest] token_grace_days, then gets 550; the rules are
domain.address_tokens'. The two pages include settings_inbox_address.html and
projects_reply_address.html, which ask inbox_address_facts() and reply_address_facts(project)
(template globals, registered here) for what they show, so that the views of those pages need
not know about it.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, g, redirect, url_for

from domain import address_tokens
from domain.errors import Forbidden
from postroom.outbound import project_reply_address
from storage.accounts import account_by_id, inbox_local_part
from storage.models import MAX_ID, Project, utcnow
from storage.projects import project_of_account

bp = Blueprint("addresses", __name__)


def _grace_days() -> int:
    return current_app.config["POSTROOM_SETTINGS"].ingest.token_grace_days


def _domain() -> str:
    return current_app.config["POSTROOM_SETTINGS"].ingest.domains[0]


def _old(token: str | None, until: dt.datetime | None) -> dt.datetime | None:
    """Until when the replaced address still works, or None (none replaced, or it has ended)."""
    return until if token and until and until > utcnow() else None


@bp.app_template_global()
def inbox_address_facts() -> dict:
    """What Settings shows of the signed-in user's account's inbox address."""
    account = account_by_id(g.user.account_id)
    old_until = _old(account.previous_inbox_token, account.previous_inbox_token_until)
    return {
        "address": f"{inbox_local_part(account)}@{_domain()}",
        "may_replace": address_tokens.may_replace_inbox_address(g.user),
        "grace_days": _grace_days(),
        "old_until": old_until,
        "new_old_until": address_tokens.old_works_until(_grace_days()),
    }


@bp.app_template_global()
def reply_address_facts(project: Project) -> dict:
    """What a project's Edit page shows of its reply address."""
    old_until = _old(project.previous_reply_token, project.previous_reply_token_until)
    return {
        "address": project_reply_address(project, current_app.config["POSTROOM_SETTINGS"]),
        "may_replace": address_tokens.may_replace_reply_address(g.user),
        "grace_days": _grace_days(),
        "old_until": old_until,
        "new_old_until": address_tokens.old_works_until(_grace_days()),
    }


@bp.post("/settings/inbox-address/replace")
def replace_inbox_address():
    try:
        address_tokens.replace_inbox_address(g.user.account_id, _grace_days(), by=g.user)
    except Forbidden:
        abort(403)
    return redirect(url_for("settings.index", notice="inbox-replaced", _anchor="inbox-address"))


@bp.post("/projects/<int:project_id>/reply-address/replace")
def replace_reply_address(project_id: int):
    project = project_of_account(g.user.account_id, project_id) if project_id <= MAX_ID else None
    if project is None:
        abort(404)
    try:
        address_tokens.replace_reply_address(project, _grace_days(), by=g.user)
    except Forbidden:
        abort(403)
    target = url_for("projects.edit", project_id=project.id, notice="reply-replaced")
    return redirect(target + "#reply-address")
