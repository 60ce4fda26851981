"""Account settings for owners and admins: the account's own outgoing server, the signature.

The stored SMTP password is never sent back to the browser; an empty password field keeps it.
The server must pass postroom.outbound_checks.check_smtp_host (allowed ports, public
addresses unless [outbound] allows private ones); it is checked again before each send.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from postroom.mail_headers import has_line_break, hidden_line_break
from postroom.outbound import SECURITIES, default_sender
from postroom.outbound_checks import OutboundError, check_smtp_host
from storage.models import Account
from storage.outbound import account_smtp, remove_account_smtp, save_account_smtp, set_signature
from storage.protocol import ADDRESS

bp = Blueprint("settings", __name__)

MANAGERS = ("owner", "admin")
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$")
MAX_SIGNATURE_CHARS = 5000
SMTP_FIELDS = ("host", "port", "security", "username", "from_address", "from_name")


@bp.before_request
def managers_only():
    if g.user is None or g.user.role not in MANAGERS:
        abort(403)


def _page(status: int = 200, **context):
    stored = account_smtp(g.user.account_id)
    smtp = context.pop("smtp", None)
    if smtp is None:
        smtp = (
            {key: getattr(stored, key) for key in SMTP_FIELDS}
            if stored
            else {
                "host": "",
                "port": 587,
                "security": "starttls",
                "username": "",
                "from_address": "",
                "from_name": "",
            }
        )
    account = Account.get_by_id(g.user.account_id)
    page = render_template(
        "settings.html",
        smtp=smtp,
        has_smtp=stored is not None,
        has_password=bool(stored and stored.password),
        securities=SECURITIES,
        signature=context.pop("signature", account.signature),
        default_sender=default_sender(current_app.config["POSTROOM_SETTINGS"]),
        notice=request.args.get("notice", ""),
        **context,
    )
    return page, status


@bp.get("/settings")
def index():
    return _page()


@bp.post("/settings/smtp")
def save_smtp():
    form = {key: request.form.get(key, "").strip() for key in SMTP_FIELDS}
    password = request.form.get("password", "")
    errors = _smtp_errors(form, password)
    if errors:
        return _page(400, smtp=form, smtp_errors=errors)
    save_account_smtp(
        g.user.account_id,
        host=form["host"].strip("[]"),
        port=int(form["port"]),
        security=form["security"],
        username=form["username"],
        password=password or None,
        from_address=form["from_address"].lower(),
        from_name=form["from_name"],
        user_id=g.user.id,
    )
    return redirect(url_for(".index", notice="smtp-saved"))


def _smtp_errors(form: dict, password: str) -> list[str]:
    """What is wrong with the server form, as sentences; empty when it can be stored."""
    errors = []
    host_ok = bool(HOST.match(form["host"]))
    port_ok = form["port"].isdigit() and 0 < int(form["port"]) < 65536
    if not host_ok:
        errors.append("The server must be a host name or an IP address.")
    if not port_ok:
        errors.append("The port must be a number from 1 to 65535.")
    if host_ok and port_ok:
        outbound = current_app.config["POSTROOM_SETTINGS"].outbound
        try:
            check_smtp_host(form["host"].strip("[]"), int(form["port"]), outbound)
        except OutboundError as error:
            text = str(error)
            errors.append(f"{text[:1].upper()}{text[1:]}.")
    if form["security"] not in SECURITIES:
        errors.append("Choose how the connection is secured.")
    address = form["from_address"].lower()
    if not (address.isascii() and ADDRESS.match(address) and len(address) <= 254):
        errors.append("The sender address must be an email address.")
    for key, label in (("username", "user name"), ("from_name", "sender name")):
        if len(form[key]) > 200:
            errors.append(f"The {label} is too long.")
    hidden = any(hidden_line_break(value) for value in form.values())  # in encoded words
    if hidden or any(
        "\x00" in value or has_line_break(value) for value in (*form.values(), password)
    ):
        errors.append("No field may contain a line break.")
    if len(password) > 255:
        errors.append("The password is too long.")
    return errors


@bp.post("/settings/smtp/remove")
def remove_smtp():
    remove_account_smtp(g.user.account_id, g.user.id)
    return redirect(url_for(".index", notice="smtp-removed"))


@bp.post("/settings/signature")
def save_signature():
    signature = request.form.get("signature", "").replace("\r\n", "\n").strip()
    if len(signature) > MAX_SIGNATURE_CHARS or "\x00" in signature:
        error = f"The signature may have at most {MAX_SIGNATURE_CHARS} characters."
        return _page(400, signature=signature, signature_error=error)
    set_signature(g.user.account_id, signature)
    return redirect(url_for(".index", notice="signature-saved"))
