"""Log in, log out, and the one-time setup of a fresh installation."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext, refresh

from admin_ui.forms import LoginForm, SetupForm, SetupTokenForm, refused_field, strip, text_field
from admin_ui.i18n import browser_language, translate_refusal
from admin_ui.redirects import safe_next
from domain.accounts import set_up
from domain.errors import Conflict, DomainError
from domain.languages import LANGUAGES, set_account_language
from domain.time_zones import DEFAULT as DEFAULT_ZONE
from domain.time_zones import check_time_zone, set_account_time_zone
from domain.tokens import check_setup_token
from domain.users import check_name, record_login, set_name
from postroom import login_throttle
from postroom.auth import check_login
from postroom.starter_templates import starter_templates
from storage.models import User

bp = Blueprint("auth", __name__)


class NamedSetupForm(SetupForm):
    """The setup form with the owner's display name (their name in the protocol and in mail)."""

    name = text_field(filters=(strip,))
    time_zone = text_field(filters=(strip,))
    language = text_field(filters=(strip,))


def too_many(seconds: int) -> str:
    """What a throttled login is told: the wait in seconds up to two minutes, else minutes."""
    if seconds < 120:
        return ngettext(
            "Too many failed attempts from your address. Try again in %(num)d second.",
            "Too many failed attempts from your address. Try again in %(num)d seconds.",
            seconds,
        )
    minutes = -(-seconds // 60)
    return ngettext(
        "Too many failed attempts from your address. Try again in %(num)d minute.",
        "Too many failed attempts from your address. Try again in %(num)d minutes.",
        minutes,
    )


def _log_in(user: User) -> None:
    """Log the user in under the credential generation read with their password hash."""
    session.log_in(user.id, user.auth_generation)
    record_login(user)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if User.select().count() == 0:
        return render_template("setup_needed.html")
    if request.method == "GET":
        return render_template("login.html")
    form = LoginForm()
    email, password = form.email.data, form.password.data
    keys = login_throttle.login_keys(email, request.remote_addr)
    wait = login_throttle.reserve(keys)  # before the password is checked: counted exactly
    if wait:
        page = render_template("login.html", error=too_many(wait))
        return page, 429, {"Retry-After": str(wait)}
    user = check_login(email, password)
    if user is None:
        return render_template("login.html", error=gettext("Email or password is wrong.")), 401
    login_throttle.succeeded(keys)
    _log_in(user)
    return redirect(safe_next(request.args.get("next"), url_for("pages.tickets")))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    sent = SetupTokenForm()
    token = sent.token.data
    if not check_setup_token(token):
        abort(404)
    error = error_field = time_zone = None
    typed = {"agency": "", "name": "", "email": ""}  # shown again after a refusal
    _choose_language(sent.language.data)  # the page speaks the chosen language
    if request.method == "POST":
        form = NamedSetupForm()
        time_zone = form.time_zone.data
        typed = {name: form[name].data for name in typed}
        renamed = None  # the fields of the refusals below, if not REFUSED_FIELDS' own
        try:  # spends the token, creates the account (with its starter templates) and owner
            name = check_name(form.name.data)  # before the token is spent: a refusal keeps it
            time_zone = check_time_zone(time_zone or DEFAULT_ZONE)
            # set_up checks no member's name, but the agency's by a name's rules (one line)
            renamed = {"name": "agency"}
            account, user = set_up(
                token,
                form.agency.data,
                form.email.data,
                form.password.data,
                starter_templates(g.language),  # in the account's language
            )
            set_name(user, name)
            set_account_time_zone(account.id, time_zone)
            set_account_language(account.id, g.language)
        except Conflict as taken:  # another request set up first
            return render_template("error.html", code=409, text=translate_refusal(taken)), 409
        except DomainError as failure:
            error, error_field = translate_refusal(failure), refused_field(failure, renamed)
        else:
            _log_in(user)
            return redirect(url_for("pages.tickets"))
    return render_template(
        "setup.html",
        token=token,
        error=error,
        error_field=error_field,  # the field the error is about (None: the form)
        sent=typed,
        time_zone=time_zone,
    )


def _choose_language(sent: str | None) -> None:
    """The setup page's language: the one chosen on it, else the browser's (admin_ui.i18n)."""
    g.language = sent if sent in LANGUAGES else browser_language()
    refresh()


@bp.app_context_processor
def current_user():
    return {"current_user": g.get("user")}
