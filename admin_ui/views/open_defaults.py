"""Settings: which new entries start open (domain.open_rules), changed by owners, shown to
admins; a section of the Settings page (settings_open_defaults.html)."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, url_for

from admin_ui.forms import OpenDefaultsForm
from domain import open_rules
from domain.errors import Forbidden
from domain.users import may_change_settings

bp = Blueprint("open_defaults", __name__)


@bp.app_template_global()
def open_defaults_of_account() -> open_rules.OpenDefaults:
    """The account's settings, for the Settings page."""
    return open_rules.defaults_of(g.user.account_id)


@bp.post("/settings/open-defaults")
def save():
    """Store the four settings (owners only); entries filed before keep their status."""
    if g.user is None or not may_change_settings(g.user):
        abort(403)
    sent = OpenDefaultsForm()
    defaults = open_rules.OpenDefaults(
        notes=sent.open_notes.data,
        auto_replies=sent.open_auto_replies.data,
        system=sent.open_system.data,
        bounces=sent.open_bounces.data,
    )
    try:
        open_rules.set_defaults(g.user, defaults)
    except Forbidden:
        abort(403)
    return redirect(url_for("settings.index", notice="open-defaults-saved") + "#open-defaults")
