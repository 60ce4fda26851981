"""Log in, log out, and the one-time setup of a fresh installation."""

from __future__ import annotations

import time

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from postroom.accounts import new_account
from postroom.auth import (
    AuthError,
    check_login,
    check_setup_token,
    clear_failures,
    create_user,
    login_delay,
    record_failure,
)
from storage.db import write_transaction
from storage.models import User, utcnow

bp = Blueprint("auth", __name__)
MAX_WAIT_IN_REQUEST = 2.0


def _safe_next(target: str | None) -> str:
    """Only follow local paths after login (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.tickets")


def _log_in(user: User) -> None:
    session.clear()
    session.regenerate()
    session["user_id"] = user.id
    User.update(last_login_at=utcnow()).where(User.id == user.id).execute()


@bp.route("/login", methods=["GET", "POST"])
def login():
    if User.select().count() == 0:
        return render_template("setup_needed.html")
    error = None
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        keys = [f"email:{email}", f"ip:{request.remote_addr}"]
        delay = login_delay(keys)
        if delay > MAX_WAIT_IN_REQUEST:
            error = "Too many failed attempts. Wait a few minutes, then try again."
        else:
            time.sleep(delay)
            user = check_login(email, password)
            if user is not None:
                clear_failures(keys)
                _log_in(user)
                return redirect(_safe_next(request.args.get("next")))
            record_failure(keys)
            error = "Email or password is wrong."
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    token = request.values.get("token", "")
    if not check_setup_token(token):
        abort(404)
    error = None
    if request.method == "POST":
        agency = request.form.get("agency", "").strip()
        email = request.form.get("email", "").strip()
        password = request.form.get("password", "")
        if not agency:
            error = "Name your agency."
        else:
            try:
                with write_transaction():
                    account = new_account(agency)
                    user = create_user(account.id, email, "owner", password, name="")
            except AuthError as failure:
                error = str(failure)
            else:
                _log_in(user)
                return redirect(url_for("pages.tickets"))
    return render_template("setup.html", token=token, error=error)


@bp.app_context_processor
def current_user():
    return {"current_user": g.get("user")}
