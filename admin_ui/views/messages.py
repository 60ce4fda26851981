"""Mail to the customer: the form (recipient, subject, Markdown, files, template), its state.

The form never renders what was posted as a template: a template is rendered once, into the
form (`?template=<id>`), and what the user then sends is plain text.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from admin_ui.forms import AnswerForm, MessageForm, MessageLinkForm
from domain import messages as domain_messages
from domain.users import may_change_anything
from postroom.mail_headers import HeaderError, header_text
from postroom.mail_templates import TemplateError
from postroom.outbound import OutboundError, queue_message, sender_of_account, template_preview
from postroom.outbound_checks import MAX_SUBJECT_CHARS
from storage.models import MAX_ID, Account, CustomerAddress, Entry, OutboundMessage, Project
from storage.outbound import outbound_of_entry, templates_of_account
from storage.projects import project_of_account
from storage.timeline import entry_of_account

bp = Blueprint("messages", __name__)
TEMPLATES_SHOWN = 20


def _project_or_404(project_id: int) -> Project:
    project = project_of_account(g.user.account_id, project_id) if project_id <= MAX_ID else None
    if project is None:
        abort(404)
    return project


def _answer_entry(project: Project) -> Entry | None:
    """The entry `?answer=<id>` names, if it is in this project's protocol."""
    text = AnswerForm().answer.data
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not 0 < int(text) <= MAX_ID:
        return None
    entry = entry_of_account(g.user.account_id, int(text))
    return entry if entry is not None and entry.project_id == project.id else None


def _first_form(
    project: Project, addresses: list[str], answer: Entry | None, link: MessageLinkForm
) -> dict:
    """The form as first shown: recipient, "Re:" subject, signature or a rendered template."""
    wanted = link.to.data
    if not wanted and answer is not None and answer.kind == "inbound":
        wanted = answer.from_address
    wanted = wanted or (addresses[0] if addresses else "")
    form = {
        "to": wanted if wanted in addresses else "",
        "to_other": "" if wanted in addresses else wanted,
        "subject": "",
        "body": "",
    }
    if answer is not None and answer.subject:
        subject = _one_line(answer.subject)  # a stranger's words, made one line
        form["subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    signature = Account.get_by_id(g.user.account_id).signature
    form["body"] = f"\n\n{signature}" if signature else ""
    return form


@bp.route("/projects/<int:project_id>/messages/new", methods=["GET", "POST"])
def new(project_id: int):
    project = _project_or_404(project_id)
    if not may_change_anything(g.user):
        abort(403)
    settings = current_app.config["POSTROOM_SETTINGS"]
    addresses = [
        row.address
        for row in project.customer_addresses.order_by(
            CustomerAddress.kind, CustomerAddress.address
        )
    ]
    answer = _answer_entry(project)
    error = error_field = template_error = None
    link = MessageLinkForm()
    template_id = link.template.data
    if request.method == "POST":
        sent = MessageForm()
        form = sent.values()
        uploads = sent.uploads()
        try:
            entry = queue_message(
                project,
                g.user,
                form["to_other"].strip() or form["to"],
                form["subject"],
                form["body"],
                uploads,
                answer_entry=answer,
                settings=settings,
            )
        except (OutboundError, TemplateError) as failure:
            error = str(failure)
            error_field = _refused_field(failure, form)
        else:
            flash(
                _(
                    "Mail to %(address)s queued; it is sent in the background.",
                    address=entry.to_list[0]["address"],
                )
            )
            return redirect(protocol_url_of(project.id, entry.id))
    else:
        form = _first_form(project, addresses, answer, link)
        if template_id is not None:
            try:
                form["subject"], form["body"] = template_preview(
                    project, g.user, form["to_other"] or form["to"], template_id
                )
            except TemplateError as failure:
                template_error = str(failure)
    words = link.template_q.data
    templates = templates_of_account(g.user.account_id, words, TEMPLATES_SHOWN + 1)
    page = render_template(
        "message_new.html",
        project=project,
        addresses=addresses,
        answer=answer,
        form=form,
        error=error,
        error_field=error_field,  # the field the error is about
        template_error=template_error,
        template_id=template_id,
        templates=templates[:TEMPLATES_SHOWN],
        more_templates=len(templates) > TEMPLATES_SHOWN,
        template_q=words,
        no_server=_no_server(settings),
        max_attachment_bytes=settings.outbound.max_attachment_bytes,
    )
    return page, 400 if error else 200


# The part of a mail a check refused (OutboundError.field) -> the form's field.
FIELDS = {"subject": "subject", "attachments": "attachments"}


def _refused_field(failure: Exception, form: dict) -> str:
    """The field a refused message is about: the recipient's (the typed address, else the
    chosen one), the subject, the attachments; anything else is about the text."""
    part = getattr(failure, "field", None)  # a TemplateError names none
    if part == "recipient":
        return "to_other" if form["to_other"].strip() or not form["to"] else "to"
    return FIELDS.get(part, "body")


def _one_line(subject: str) -> str:
    try:
        return header_text(subject[:MAX_SUBJECT_CHARS])
    except HeaderError:
        return ""


def protocol_url_of(project_id: int, entry_id: int) -> str:
    """The protocol page that holds the entry, at its row (as entries.protocol_url)."""
    return url_for(
        "projects.protocol", project_id=project_id, entry=entry_id, _anchor=f"entry-{entry_id}"
    )


def _no_server(settings) -> bool:
    """True when mail of this account would stay queued: no own server, no default."""
    _name, _address, server = sender_of_account(g.user.account_id, settings)
    return server is None and not settings.outbound.smtp_url


@bp.app_template_global()
def outbound_state(entry_id: int) -> OutboundMessage | None:
    """The sending state of an outbound entry, for the entry page (outbound_state.html)."""
    return outbound_of_entry(entry_id)


@bp.post("/entries/<int:entry_id>/outbound/retry")
def retry(entry_id: int):
    """Queue a mail that failed for good once more, from a fresh attempt count."""
    entry = entry_of_account(g.user.account_id, entry_id)
    outbound = outbound_of_entry(entry.id) if entry is not None else None
    if outbound is None:
        abort(404)
    if domain_messages.retry(outbound, g.user.id):
        flash(_("The mail is queued again."))
    return redirect(url_for("entries.detail", entry_id=entry.id))
