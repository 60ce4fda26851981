"""Flask app factory: takes the frozen settings, registers blueprints, touches no globals."""

from __future__ import annotations

import datetime as dt

from flask import Flask, abort, g, jsonify, redirect, request, session, url_for
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError, CSRFProtect

from admin_ui import event_text, i18n, local_time
from admin_ui.proxies import TrustedProxies
from admin_ui.sessions import DbSessionInterface
from domain.tokens import shared_secret
from domain.users import may_change_anything
from postroom.config import Settings
from storage.models import User, database

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Endpoints anyone may reach without a login.
PUBLIC = {"auth.login", "auth.setup", "static", "health.healthz", "health.metrics"}
# Changes that even a read-only member may make (to their own session, profile, notifications).
READ_ONLY_MAY_POST = {
    "auth.logout",
    "notifications.mark_read",
    "notifications.mark_all_read",
    "notifications.profile",
    "notifications.follow",
    "credentials.change_password",
    "credentials.change_name",
    "credentials.change_time_zone",
    "credentials.change_language",
    "credentials.sign_out_elsewhere",
    "credentials.revoke_token",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(settings: Settings, *, testing: bool = False) -> Flask:
    """Build the admin UI application for the given settings (the database is already open)."""
    app = Flask(__name__)
    app.config.update(
        POSTROOM_SETTINGS=settings,
        SECRET_KEY=shared_secret("web_secret_key"),
        SESSION_COOKIE_SECURE=settings.web.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=settings.ingest.max_message_bytes + 1_000_000,
        TESTING=testing,
    )
    app.session_interface = DbSessionInterface(
        dt.timedelta(minutes=settings.web.session_idle_minutes),
        dt.timedelta(hours=settings.web.session_max_hours),
    )
    csrf = CSRFProtect(app)
    # the client's address and scheme as the trusted proxies saw them (login throttling)
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.web.trusted_proxies)

    from admin_ui.api import api
    from admin_ui.views import register_views

    register_views(app)
    i18n.register(app)  # Flask-Babel: the reader's language (admin_ui/i18n.py has the rules)
    local_time.register(app)  # the date filters: every date in the viewer's time zone
    event_text.register(app)  # system entries and activity in the reader's language
    app.register_blueprint(api)
    csrf.exempt(api)

    @app.before_request
    def load_user():
        if database.is_closed():
            database.connect(reuse_if_open=True)
        g.user = None
        user_id = session.get("user_id")
        if user_id is not None:
            user = User.get_or_none(User.id == user_id)
            if user is not None and user.is_active:
                g.user = user
        if request.blueprint == "api" or request.endpoint in PUBLIC:
            return None
        if g.user is None:
            return redirect(url_for("auth.login", next=request.full_path))
        if (
            request.method not in SAFE_METHODS
            and not may_change_anything(g.user)
            and request.endpoint not in READ_ONLY_MAY_POST
        ):
            abort(403)
        return None

    @app.teardown_request
    def close_database(_error=None):
        if not database.is_closed():
            database.close()

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error_page(
            400, lazy_gettext("The form expired or was sent from elsewhere. Reload the page.")
        )

    for code, text in (
        (403, lazy_gettext("You may not do this.")),
        (404, lazy_gettext("Not found.")),
        (400, lazy_gettext("The request was not understood.")),
        (413, lazy_gettext("Too large.")),
    ):
        app.register_error_handler(code, lambda _e, code=code, text=text: _error_page(code, text))

    @app.errorhandler(500)
    def server_error(_error):
        return _error_page(
            500, lazy_gettext("Something went wrong on our side; it has been logged.")
        )

    return app


def _error_page(code: int, text: str):
    from flask import render_template

    text = str(text)  # a lazy_gettext string: in the reader's language now
    if request.path.startswith("/api/"):
        return jsonify(error=text, status=code), code
    return render_template("error.html", code=code, text=text), code


__all__ = ["create_app"]
