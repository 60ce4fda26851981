"""One entry: its detail page, the sandboxed HTML body, attachments, raw mail, done, new."""

from __future__ import annotations

import io
import json
from functools import partial
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext, lazy_gettext, ngettext

from admin_ui import mail_route
from admin_ui.forms import (
    DoneForm,
    ImagesForm,
    InlineForm,
    ManualEntryForm,
    ManualEntryKindForm,
)
from admin_ui.local_time import viewer_zone
from admin_ui.mail_html import frame_document, frame_policy, show, stored_safe
from admin_ui.redirects import local_path
from admin_ui.route_words import route_words
from domain import entries as domain_entries
from domain import open_rules
from domain.errors import DomainError
from domain.routing import decision_of
from domain.users import may_change_anything
from storage.activity import activity_with_users
from storage.attachments import attachment_of_entry, attachments_of_entry, inline_parts
from storage.entries import parse_warnings_of
from storage.intake import load_raw, load_raw_head
from storage.models import Entry, RawMessage
from storage.projects import project_of_account, projects_by_ids
from storage.timeline import entry_of_account, intakes_of_entry, open_ticket_count

bp = Blueprint("entries", __name__)

# Shown in the browser only with ?inline=1; everything else is a download of octets.
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
}
INLINE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; object-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
RAW_SHOWN_BYTES = 200_000


def _entry_or_404(entry_id: int) -> Entry:
    entry = entry_of_account(g.user.account_id, entry_id)
    if entry is None:
        abort(404)
    return entry


@bp.app_template_global()
def protocol_url(project_id: int, entry_id: int | None = None) -> str:
    """The project's protocol; with an entry, the page that holds it (`?entry=<id>`, however
    far down), scrolled to its row (`#entry-<id>`)."""
    anchor = f"entry-{entry_id}" if entry_id is not None else None
    if "projects.protocol" in current_app.view_functions:
        return url_for("projects.protocol", project_id=project_id, entry=entry_id, _anchor=anchor)
    path = f"{request.script_root}/projects/{project_id}/protocol"
    return f"{path}?entry={entry_id}#{anchor}" if anchor else path


# What each parse warning code (smtpd_ingest.headers.ParseWarning) means, for the entry page.
WARNING_WORDS = {
    "header_unreadable": lazy_gettext(
        "could not be read as written; read by the simple reader instead"
    ),
    "header_too_long": lazy_gettext("too long to read in full; read by the simple reader instead"),
    "part_unreadable": lazy_gettext(
        "its content could not be decoded; kept as it came, as an attachment"
    ),
    "too_many_parts": lazy_gettext(
        "more parts than postroom reads; the rest is in the raw message"
    ),
    "nested_too_deep": lazy_gettext(
        "nested deeper than postroom reads; the rest is in the raw message"
    ),
}


def parse_warnings(entry: Entry) -> list[dict[str, str]]:
    """The entry's parse warnings, each with its words (an unknown code: the code itself)."""
    return [
        {
            "item": warning["item"],
            "words": str(WARNING_WORDS.get(warning["code"], warning["code"])),
            "detail": warning["detail"],
        }
        for warning in parse_warnings_of(entry)
    ]


@bp.get("/entries/<int:entry_id>")
def detail(entry_id: int):
    entry = _entry_or_404(entry_id)
    load_images = ImagesForm().images.data
    safe_html, html_note = stored_safe(entry) if entry.html else ("", "")
    _, held_back = show(safe_html, inline_images=lambda _ids: {})
    raw = _raw_or_none(entry) if entry.parse_error else None
    head = load_raw_head(entry.raw_sha256) if entry.raw_sha256 else None
    return render_template(
        "entry.html",
        entry=entry,
        parse_warnings=parse_warnings(entry),
        attachments=attachments_of_entry(entry.id),
        candidates=projects_by_ids(g.user.account_id, entry.candidate_ids),
        route_reason=route_words(decision_of(entry)),
        cc_list=json.loads(entry.cc_addresses or "[]"),
        intakes=intakes_of_entry(entry.id),
        hops=mail_route.hops(head),
        activity=activity_with_users(entry.id),
        held_back=held_back,
        show_frame=bool(safe_html),
        html_note=html_note,
        load_images=load_images,
        raw_text=raw[:RAW_SHOWN_BYTES].decode("utf-8", "replace") if raw is not None else None,
        raw_cut=raw is not None and len(raw) > RAW_SHOWN_BYTES,
        inline_types=INLINE_TYPES,
    )


@bp.get("/entries/<int:entry_id>/body")
def body(entry_id: int):
    """The mail's HTML, sanitised at filing, for the sandboxed frame; its own strict CSP."""
    entry = _entry_or_404(entry_id)
    load_images = ImagesForm().images.data
    markup, _ = show(
        stored_safe(entry)[0],
        inline_images=partial(inline_parts, entry.id),
        load_remote_images=load_images,
    )
    response = make_response(frame_document(markup))
    response.mimetype = "text/html"
    response.headers["Content-Security-Policy"] = frame_policy(load_images)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/entries/<int:entry_id>/attachments/<int:attachment_id>")
def attachment(entry_id: int, attachment_id: int):
    entry = _entry_or_404(entry_id)
    found = attachment_of_entry(entry.id, attachment_id)
    if found is None:
        abort(404)
    content_type = found.content_type.split(";")[0].strip().lower()
    inline = InlineForm().inline.data and content_type in INLINE_TYPES
    response = send_file(
        io.BytesIO(bytes(found.data)),
        mimetype=content_type if inline else "application/octet-stream",
        as_attachment=not inline,
        download_name=found.filename or f"attachment-{found.id}",
        etag=found.sha256,
    )
    return _private(response, csp=INLINE_CSP if inline else None)


@bp.get("/entries/<int:entry_id>/raw")
def raw(entry_id: int):
    entry = _entry_or_404(entry_id)
    data = _raw_or_none(entry)
    if data is None:
        abort(404)
    response = send_file(
        io.BytesIO(data),
        mimetype="message/rfc822",
        as_attachment=True,
        download_name=f"entry-{entry.id}.eml",
        etag=entry.raw_sha256,
    )
    return _private(response)


def _raw_or_none(entry: Entry) -> bytes | None:
    if not entry.raw_sha256:
        return None
    try:
        return load_raw(entry.raw_sha256)
    except RawMessage.DoesNotExist:
        return None


def _private(response, csp: str | None = None):
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if csp:
        response.headers["Content-Security-Policy"] = csp
    return response


@bp.post("/entries/<int:entry_id>/done")
def done(entry_id: int):
    """Tick or untick; answers JSON to app.js, otherwise goes back where the form was."""
    entry = _entry_or_404(entry_id)
    entry = domain_entries.set_done(entry, g.user.id, DoneForm().done.data)
    if request.accept_mimetypes.best == "application/json":
        open_count = open_ticket_count(g.user.account_id)
        return jsonify(
            id=entry.id,
            done=entry.status == "done",
            open_count=open_count,
            open_words=_open_words(open_count),
        )
    return redirect(_back_to(entry))


def _open_words(open_count: int) -> str:
    """The open count as app.js announces it after a tick (the server counts to 1000)."""
    if open_count >= 1000:
        return gettext("More than 999 open tickets.")
    return ngettext("%(num)d open ticket.", "%(num)d open tickets.", open_count)


def _back_to(entry: Entry) -> str:
    """The page the form was on, if it is ours (no open redirect), at the entry's row."""
    referrer = urlsplit(request.referrer or "")
    same_host = referrer.scheme in ("http", "https") and referrer.netloc == request.host
    query = f"?{referrer.query}" if referrer.query else ""
    path = local_path(f"{referrer.path}{query}") if same_host else None
    if path is None:
        return url_for("entries.detail", entry_id=entry.id)
    return f"{path}#entry-{entry.id}"


@bp.route("/projects/<int:project_id>/entries/new", methods=["GET", "POST"])
def new(project_id: int):
    """Add an internal note or a message from the customer (call, SMS, talk)."""
    project = project_of_account(g.user.account_id, project_id)
    if project is None:
        abort(404)
    if not may_change_anything(g.user):
        abort(403)  # read-only members are not shown a form they cannot send
    form = {
        "kind": ManualEntryKindForm().kind.data,
        "subject": "",
        "text": "",
        "occurred_at": "",
        "needs_action": open_rules.defaults_of(project.account_id).notes,  # the box's default
    }
    problem = None
    if request.method == "POST":
        sent = ManualEntryForm()
        form = sent.values()
        occurred_at, problem = sent.occurred(viewer_zone())
        if problem is None:
            try:
                entry = domain_entries.add_manual_entry(
                    project,
                    g.user,
                    kind=form["kind"],
                    subject=form["subject"],
                    text=form["text"],
                    occurred_at=occurred_at,
                    needs_action=form["needs_action"],
                )
            except DomainError:
                problem = "text" if form["kind"] in ("note", "call") else "kind"
            else:
                return redirect(protocol_url(project.id, entry.id))
    status = 400 if problem else 200
    return render_template("entry_new.html", project=project, form=form, problem=problem), status
