"""The account's mail templates: list with search, create, edit, copy, delete.

A template is checked on save by rendering it with sample values, so a syntax error, an
unknown variable or a part templates may not use (a loop, a call, arithmetic: see
postroom.template_language) shows here, not when someone wants to send it.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from postroom.mail_templates import VARIABLES, TemplateError, render, sample_variables
from postroom.template_language import FILTERS, MAX_SOURCE_CHARS
from storage.models import MailTemplate
from storage.outbound import (
    copy_template,
    delete_template,
    save_template,
    template_of_account,
    templates_of_account,
)

bp = Blueprint("mail_templates", __name__)
LIMITS = {"name": 200, "subject": 500, "body": MAX_SOURCE_CHARS}


def _template_or_404(template_id: int) -> MailTemplate:
    template = template_of_account(g.user.account_id, template_id)
    if template is None:
        abort(404)
    return template


def _refuse_read_only() -> None:
    if g.user.role == "read-only":
        abort(403)


@bp.get("/templates")
def index():
    words = request.args.get("q", "")[:200]
    return render_template(
        "templates.html",
        templates=templates_of_account(g.user.account_id, words),
        q=words,
        notice=request.args.get("notice", ""),
    )


@bp.route("/templates/new", methods=["GET", "POST"])
def new():
    _refuse_read_only()
    return _edit_form(None)


@bp.route("/templates/<int:template_id>/edit", methods=["GET", "POST"])
def edit(template_id: int):
    template = _template_or_404(template_id)
    _refuse_read_only()
    return _edit_form(template)


def _edit_form(template: MailTemplate | None):
    form = {key: getattr(template, key) if template else "" for key in LIMITS}
    error, preview = None, None
    if request.method == "POST":
        form = {key: request.form.get(key, "").replace("\r\n", "\n") for key in LIMITS}
        form["name"] = form["name"].strip()
        error = _problem(form)
        if error is None:
            saved = save_template(
                g.user.account_id, form["name"], form["subject"].strip(), form["body"], template
            )
            return redirect(url_for(".edit", template_id=saved.id, notice="saved"))
    elif template is not None:
        try:
            preview = render(template.subject, template.body, sample_variables())
        except TemplateError as failure:
            error = str(failure)
    page = render_template(
        "templates_edit.html",
        template=template,
        form=form,
        error=error,
        preview=preview,
        variables=VARIABLES,
        filters=FILTERS,
        limits=LIMITS,
        notice=request.args.get("notice", ""),
    )
    return page, 400 if error and request.method == "POST" else 200


TOO_LONG = {
    "name": "The name is too long (at most {limit:,} characters).",
    "subject": "The subject is too long (at most {limit:,} characters).",
    "body": "The text is too long (at most {limit:,} characters).",
}


def _problem(form: dict) -> str | None:
    """What keeps the template from being saved, or None."""
    if not form["name"]:
        return "Give the template a name."
    for key, limit in LIMITS.items():
        if len(form[key]) > limit:
            return TOO_LONG[key].format(limit=limit)
    if "\n" in form["subject"] or "\r" in form["subject"]:
        return "The subject must be one line."
    if not form["subject"].strip() or not form["body"].strip():
        return "A template needs a subject and a text."
    try:
        render(form["subject"], form["body"], sample_variables())
    except TemplateError as failure:
        return str(failure)
    return None


@bp.post("/templates/<int:template_id>/copy")
def copy(template_id: int):
    created = copy_template(_template_or_404(template_id))
    return redirect(url_for(".edit", template_id=created.id, notice="copied"))


@bp.post("/templates/<int:template_id>/delete")
def delete(template_id: int):
    delete_template(_template_or_404(template_id))
    return redirect(url_for(".index", notice="deleted"))
