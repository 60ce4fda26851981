"""Account settings for owners and admins: the account's own outgoing server, the signature,
the block rules (who made each and when; removing one lets the sender's next mail through).

The stored SMTP password is never sent back to the browser; an empty password field keeps it.
The rules of what may be stored are domain.accounts'; it asks postroom.outbound_checks.
check_smtp_host (allowed ports, public addresses unless [outbound] allows private ones; checked
again before each send) and postroom.mail_headers.hidden_line_break, which this view passes in.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from admin_ui.forms import SignatureForm, SmtpForm, TimeZoneForm
from admin_ui.i18n import translate, translate_refusal
from admin_ui.views.credentials import LanguageForm
from domain import accounts, blocks, time_zones, users
from domain.accounts import SECURITIES, SmtpInvalid, SmtpSettings
from domain.errors import Invalid, NotFound
from domain.languages import set_account_language
from postroom.mail_headers import hidden_line_break
from postroom.outbound import default_sender
from postroom.outbound_checks import check_smtp_host
from storage.blocks import listed_block_rules
from storage.models import Account
from storage.outbound import account_smtp

bp = Blueprint("settings", __name__)

SMTP_FIELDS = ("host", "port", "security", "username", "from_address", "from_name")


@bp.before_request
def managers_only():
    if g.user is None or not users.may_change_settings(g.user):
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
        default_sender=default_sender(current_app.config["POSTROOM_SETTINGS"], account.name),
        account_name=account.name,
        notice=request.args.get("notice", ""),
        block_rules=listed_block_rules(g.user.account_id),
        account_time_zone=account.time_zone,
        may_set_time_zone=g.user.role == "owner",
        **context,
    )
    return page, status


@bp.get("/settings")
def index():
    return _page()


@bp.post("/settings/smtp")
def save_smtp():
    sent = SmtpForm()
    form, password = sent.values(), sent.password.data
    outbound = current_app.config["POSTROOM_SETTINGS"].outbound
    try:
        accounts.save_smtp(
            g.user.account_id,
            SmtpSettings(**form, password=password),
            user_id=g.user.id,
            check_host=partial(check_smtp_host, outbound=outbound),
            hidden_line_break=hidden_line_break,  # in encoded words
        )
    except SmtpInvalid as refused:
        problems = [
            (translate(problem), fields)
            for problem, fields in _fields_of_problems(form, password, refused.problems).items()
        ]
        return _page(400, smtp=form, smtp_errors=problems)
    return redirect(url_for(".index", notice="smtp-saved"))


# Settings that break no rule: each sent field alone put into them shows that field's problems.
GOOD_SMTP = SmtpSettings(host="smtp.example.org", from_address="office@example.org")


# A problem no field has alone is the network policy's (check_smtp_host, not asked here: no
# lookup per field): about the server's address, host and port.
SERVER_ADDRESS = ["host", "port"]


def _fields_of_problems(form: dict, password: str, problems: list[str]) -> dict[str, list[str]]:
    """Each problem with the fields it is about."""
    sent = {**form, "password": password}
    fields: dict[str, list[str]] = {problem: [] for problem in problems}
    for name, value in sent.items():
        alone = replace(GOOD_SMTP, **{name: value})
        for problem in accounts.smtp_problems(alone, hidden_line_break=hidden_line_break):
            if problem in fields and name not in fields[problem]:
                fields[problem].append(name)
    return {problem: names or SERVER_ADDRESS for problem, names in fields.items()}


@bp.post("/settings/smtp/remove")
def remove_smtp():
    accounts.remove_smtp(g.user.account_id, user_id=g.user.id)
    return redirect(url_for(".index", notice="smtp-removed"))


@bp.post("/settings/signature")
def save_signature():
    signature = SignatureForm().signature.data
    try:
        accounts.set_signature(g.user.account_id, signature)
    except Invalid as error:
        shown = signature.replace("\r\n", "\n").strip()
        return _page(400, signature=shown, signature_error=translate_refusal(error))
    return redirect(url_for(".index", notice="signature-saved"))


@bp.post("/settings/time-zone")
def save_time_zone():
    """Set the account's time zone (owners only): its dates are shown and filtered in it."""
    if g.user.role != "owner":
        abort(403)
    sent = TimeZoneForm().time_zone.data
    try:
        time_zones.set_account_time_zone(g.user.account_id, sent)
    except Invalid as error:
        return _page(400, time_zone_error=translate(str(error)), time_zone_value=sent)
    return redirect(url_for(".index", notice="time-zone-saved") + "#time-zone")


@bp.post("/settings/language")
def save_language():
    """Set the account's language (owners only): of members who chose none, and of new mail."""
    if g.user.role != "owner":
        abort(403)
    try:
        set_account_language(g.user.account_id, LanguageForm().language.data)
    except Invalid as error:
        return _page(400, language_error=translate(str(error)))
    return redirect(url_for(".index", notice="language-saved") + "#language")


@bp.post("/settings/blocks/<int:rule_id>/remove")
def remove_block(rule_id: int):
    """Remove a block rule of the account (the domain records who did)."""
    try:
        blocks.remove_block_rule(g.user, rule_id)
    except NotFound:
        abort(404)
    return redirect(url_for(".index", notice="block-removed") + "#block-rules")
