"""The account's mail templates: list with search, create, edit, copy, delete.

What may be stored is domain.templates' rule. It asks the template language too, which this
view passes in: a template is rendered with sample values on save, so a syntax error, an
unknown variable or a part templates may not use (a loop, a call, arithmetic: see
postroom.template_language) shows here, not when someone wants to send it.

The preview on the edit page shows the mail a real send would make for a project the user
chooses (`?project=<id>`, else the first of the list), to its first customer address, from
the user: rendered by postroom.outbound.rendered_template, the one rendering of a real send,
with the sender a real send would have. A value the project lacks stays empty there, as in
the mail; the sample values are only for checking a template when it is saved.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from admin_ui.forms import TemplateForm, TemplatePreviewForm, TemplateSearchForm
from admin_ui.i18n import translate
from domain import templates as domain_templates
from domain.errors import Invalid, NotFound
from domain.templates import LIMITS
from domain.users import may_change_anything
from postroom.mail_templates import VARIABLES, TemplateError, render, sample_variables
from postroom.outbound import from_name_of, rendered_template, sender_of_account
from postroom.template_language import FILTERS
from storage.models import MAX_ID, CustomerAddress, MailTemplate, Project
from storage.outbound import template_of_account, templates_of_account
from storage.projects import project_of_account, projects_of_account

bp = Blueprint("mail_templates", __name__)
PROJECTS_OFFERED = 200  # in the preview's choice of project


def _template_or_404(template_id: int) -> MailTemplate:
    template = template_of_account(g.user.account_id, template_id)
    if template is None:
        abort(404)
    return template


def _refuse_read_only() -> None:
    if not may_change_anything(g.user):
        abort(403)


@bp.get("/templates")
def index():
    words = TemplateSearchForm().q.data
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
    error = error_field = preview = None
    if request.method == "POST":
        form = TemplateForm().values()
        try:
            saved = domain_templates.save_template(
                g.user.account_id,
                form["name"],
                form["subject"],
                form["body"],
                template.id if template else None,
                check_language=_check_language,
            )
        except Invalid as refused:
            error = str(refused)
            error_field = _refused_field(error, form)
        else:
            return redirect(url_for(".edit", template_id=saved.id, notice="saved"))
    projects = projects_of_account(g.user.account_id, limit=PROJECTS_OFFERED)
    project = None
    if template is not None and request.method == "GET":
        project = _preview_project(projects)
        if project is not None:
            try:
                preview = _preview(template, project)
            except TemplateError as failure:
                error = str(failure)
    page = render_template(
        "templates_edit.html",
        template=template,
        form=form,
        error=error,
        error_field=error_field,  # the field the error is about (None: the template)
        preview=preview,
        projects=projects,
        preview_project=project,
        variables={name: translate(meaning) for name, meaning in VARIABLES.items()},
        filters=FILTERS,
        limits=LIMITS,
        notice=request.args.get("notice", ""),
    )
    return page, 400 if error and request.method == "POST" else 200


def _refused_field(error: str, form: dict) -> str:
    """The field a refused template is about: the name or the subject if, alone in a good
    template, it is refused with the same words; else the text."""
    alone = {"name": (form["name"], "x", "x"), "subject": ("x", form["subject"], "x")}
    for name, parts in alone.items():
        try:
            domain_templates.check_template(*parts, check_language=_check_language)
        except Invalid as refusal:
            if str(refusal) == error:
                return name
    return "body"


def _preview_project(projects: list[Project]) -> Project | None:
    """The project chosen for the preview (`?project=<id>` of this account), else the first."""
    wanted = TemplatePreviewForm().project.data
    if wanted is not None and 0 < wanted <= MAX_ID:
        chosen = project_of_account(g.user.account_id, wanted)
        if chosen is not None:
            return chosen
    return projects[0] if projects else None


def _preview(template: MailTemplate, project: Project) -> dict:
    """The mail a real send of the template would make for the project: from this user to
    the project's first customer address (none: no recipient, as the form would start)."""
    addresses = project.customer_addresses.order_by(CustomerAddress.kind, CustomerAddress.address)
    first = addresses.first()
    to = first.address if first is not None else ""
    subject, body = rendered_template(template, project, g.user, to)
    name, address, _server = sender_of_account(
        project.account_id, current_app.config["POSTROOM_SETTINGS"]
    )
    return {
        "from_name": from_name_of(g.user, name),
        "from_address": address,
        "to": to,
        "subject": subject,
        "body": body,
    }


def _check_language(subject: str, body: str) -> None:
    """TemplateError (a ValueError) unless both render with sample values."""
    render(subject, body, sample_variables())


@bp.post("/templates/<int:template_id>/copy")
def copy(template_id: int):
    try:
        created = domain_templates.copy_template(g.user.account_id, template_id)
    except NotFound:
        abort(404)
    return redirect(url_for(".edit", template_id=created.id, notice="copied"))


@bp.post("/templates/<int:template_id>/delete")
def delete(template_id: int):
    try:
        domain_templates.delete_template(g.user.account_id, template_id)
    except NotFound:
        abort(404)
    return redirect(url_for(".index", notice="deleted"))
