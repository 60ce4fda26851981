"""A user's own name and credentials on the profile page: display name, password, other
sessions, API tokens.

Each change ends what could have leaked (domain.users.end_sessions) and keeps this
browser signed in with a new session id. Read-only members may use these too
(admin_ui.app.READ_ONLY_MAY_POST).
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, request, session, url_for

from admin_ui.forms import (
    ChangePasswordForm,
    PostForm,
    TimeZoneForm,
    refused_field,
    strip,
    text_field,
)
from admin_ui.i18n import translate_refusal
from admin_ui.views.notifications import profile_page
from domain.errors import DomainError, NotFound
from domain.languages import set_user_language
from domain.time_zones import set_user_time_zone
from domain.tokens import revoke_own_api_token
from domain.users import WrongPassword, change_own_password, end_sessions, set_name
from postroom import login_throttle

bp = Blueprint("credentials", __name__)


class NameForm(PostForm):
    """The own display name (domain.users.check_name judges it)."""

    name = text_field(filters=(strip,))


@bp.post("/profile/name")
def change_name():
    """Change the own display name: used from now on in new protocol entries and in mail."""
    sent = NameForm().name.data
    try:
        set_name(g.user, sent)
    except DomainError as error:
        return profile_page(400, name_error=translate_refusal(error), name_value=sent)
    return redirect(url_for("notifications.profile", notice="name-changed"))


class LanguageForm(PostForm):
    """A language code (domain.languages.check_language judges it); "" for the account's."""

    language = text_field(filters=(strip,))


@bp.post("/profile/language")
def change_language():
    """Choose the own language for pages, dates and mail; empty: the account's again."""
    sent = LanguageForm().language.data
    try:
        set_user_language(g.user, sent)
    except DomainError as error:
        return profile_page(400, language_error=translate_refusal(error))
    return redirect(url_for("notifications.profile", notice="language-changed") + "#language")


@bp.post("/profile/time-zone")
def change_time_zone():
    """Choose the own time zone for dates; empty: the account's again."""
    sent = TimeZoneForm().time_zone.data
    try:
        set_user_time_zone(g.user, sent)
    except DomainError as error:
        return profile_page(400, time_zone_error=translate_refusal(error), time_zone_value=sent)
    return redirect(url_for("notifications.profile", notice="time-zone-changed") + "#time-zone")


@bp.post("/profile/password")
def change_password():
    """Change the own password: every other session and every API token of the user ends."""
    form = ChangePasswordForm()
    form.validate()
    refused = form.error_code()  # too_long, mismatch
    if refused:
        return profile_page(400, change_error_code=refused, change_error_field=form.refused_field())
    current, new = form.current_password.data, form.new_password.data
    # Guessing the current password with a stolen session counts like guessing it at login.
    keys = login_throttle.login_keys(g.user.email, request.remote_addr)
    wait = login_throttle.reserve(keys)
    if wait:
        page, status = profile_page(429, change_error_code="throttled")
        return page, status, {"Retry-After": str(wait)}
    try:
        generation = change_own_password(g.user, current, new)
    except WrongPassword as error:
        return _password_refused(error)
    except DomainError as error:
        login_throttle.succeeded(keys)
        return _password_refused(error)
    login_throttle.succeeded(keys)
    session.reissue(generation)
    return redirect(url_for("notifications.profile", notice="password-changed"))


def _password_refused(error: DomainError):
    """The profile page with the refusal beside the field it is about."""
    field = refused_field(error, {"password": "new_password"})
    return profile_page(400, change_error=translate_refusal(error), change_error_field=field)


@bp.post("/profile/sessions/end-others")
def sign_out_elsewhere():
    """End every other session of the user (API tokens stay: revoke those one by one)."""
    session.reissue(end_sessions(g.user.id, tokens=False))
    return redirect(url_for("notifications.profile", notice="signed-out-elsewhere"))


@bp.post("/profile/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    """Revoke one of the user's own API tokens; it fails at once from now on."""
    try:
        revoke_own_api_token(g.user, token_id)
    except NotFound:
        abort(404)
    return redirect(url_for("notifications.profile", notice="token-revoked"))
