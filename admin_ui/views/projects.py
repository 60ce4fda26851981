"""The projects area: list, create and edit projects, their protocol and their files.

Views pass error *codes* and storage's messages to the templates; the wording lives there.
"""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from admin_ui.forms import (
    AddressForm,
    NewProjectForm,
    PageForm,
    ProjectEditForm,
    ProtocolBulkForm,
    ProtocolFilterForm,
    ProtocolPlaceForm,
    SearchForm,
)
from admin_ui.i18n import translate, translate_refusal
from admin_ui.local_time import viewer_zone
from domain import projects as domain_projects
from domain.categories import CATEGORIES
from domain.entries import BULK_LIMIT
from domain.errors import DomainError
from domain.users import may_change_anything, may_delete_entries
from storage.attachments import attachments_of_project
from storage.models import ENTRY_KINDS, ENTRY_STATUSES, MAX_ID, CustomerAddress, Entry, Project
from storage.projects import project_of_account, projects_of_account
from storage.protocol_position import matching_count, page_of_entry
from storage.query import QuerySyntaxError, SearchQuery, Term, parse_query
from storage.search import SearchPage
from storage.timeline import entry_of_account, open_counts_by_project, timeline_page

bp = Blueprint("projects", __name__)

PAGE_SIZE = 50
MAX_PAGE = 10_000_000  # a page number shown is only a label: larger is left out
ADDRESS_KINDS = ("customer", "partner")
PROJECT_FIELDS = ("name", "domain", "status", "contact_name")
EDIT_FIELDS = (*PROJECT_FIELDS, "invitation_link")  # the link: on the edit form only
PROJECTS_SHOWN = 200


# --- helpers -------------------------------------------------------------------------------
def _statuses(current: str | None = None) -> tuple[str, ...]:
    """The configured project statuses, plus a project's current one if no longer listed."""
    statuses = current_app.config["POSTROOM_SETTINGS"].ui.project_statuses
    return statuses if current in (None, *statuses) else (*statuses, current)


def _project_or_404(project_id: int) -> Project:
    project = project_of_account(g.user.account_id, project_id) if project_id <= MAX_ID else None
    if project is None:
        abort(404)
    return project


def _refuse_read_only() -> None:
    """Forms that change projects are not for read-only users (their POSTs get 403 anyway)."""
    if not may_change_anything(g.user):
        abort(403)


def _addresses_of(project: Project) -> list[CustomerAddress]:
    return list(project.customer_addresses.order_by(CustomerAddress.kind, CustomerAddress.address))


# --- list, create, edit --------------------------------------------------------------------
@bp.get("/projects")
def index():
    words = SearchForm().q.data.strip()
    projects = projects_of_account(g.user.account_id, words, PROJECTS_SHOWN + 1)
    open_counts = open_counts_by_project(g.user.account_id)
    return render_template(
        "projects.html",
        projects=projects[:PROJECTS_SHOWN],
        more=len(projects) > PROJECTS_SHOWN,
        open_counts=open_counts,
        q=words,
    )


@bp.route("/projects/new", methods=["GET", "POST"])
def new():
    _refuse_read_only()
    statuses = _statuses()
    fields = {"name": "", "domain": "", "status": statuses[0], "contact_name": ""}
    address_text, errors, address_errors = "", {}, []
    if request.method == "POST":
        sent = NewProjectForm(statuses)
        fields, errors = sent.fields_and_errors()  # the status must be one of `statuses`
        address_text = sent.addresses.data
        addresses = sent.address_list()
        if not errors:
            try:
                project = domain_projects.create_project(
                    g.user.account_id,
                    fields["name"],
                    domain=fields["domain"],
                    status=fields["status"],
                    contact_name=fields["contact_name"],
                    addresses=addresses,
                    user_id=g.user.id,
                )
            except DomainError as error:
                address_errors = [translate(message) for message in error.args]
            else:
                return redirect(url_for(".protocol", project_id=project.id))
    status = 400 if errors or address_errors else 200
    page = render_template(
        "projects_new.html",
        fields=fields,
        address_text=address_text,
        errors=errors,
        address_errors=address_errors,
        statuses=statuses,
    )
    return page, status


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
def edit(project_id: int):
    project = _project_or_404(project_id)
    _refuse_read_only()
    fields = {name: getattr(project, name) for name in EDIT_FIELDS}
    errors = {}
    if request.method == "POST":
        fields, errors = ProjectEditForm(_statuses(project.status)).fields_and_errors()
        if not errors:
            domain_projects.update_project(project, g.user.id, **fields)
            return redirect(url_for(".edit", project_id=project.id, notice="saved"))
    return _edit_page(project, fields=fields, errors=errors), 400 if errors else 200


def _edit_page(project: Project, **context) -> str:
    context.setdefault("fields", {name: getattr(project, name) for name in EDIT_FIELDS})
    context.setdefault("errors", {})
    return render_template(
        "projects_edit.html",
        project=project,
        addresses=_addresses_of(project),
        statuses=_statuses(project.status),
        address_kinds=ADDRESS_KINDS,
        notice=request.args.get("notice", ""),
        tab="edit",
        **context,
    )


@bp.post("/projects/<int:project_id>/addresses")
def add_address(project_id: int):
    project = _project_or_404(project_id)
    sent = AddressForm()
    address = sent.address.data
    if not sent.validate():  # longer than an address may be: the page says so, shows 80
        return _edit_page(project, address_error_code="too_long", new_address=address[:80]), 400
    try:
        domain_projects.add_customer_address(
            project, address, kind=sent.kind.data, user_id=g.user.id
        )
    except DomainError as error:
        page = _edit_page(project, address_error=translate_refusal(error), new_address=address)
        return page, 400
    return redirect(url_for(".edit", project_id=project.id, notice="address-added"))


@bp.post("/projects/<int:project_id>/addresses/remove")
def remove_address(project_id: int):
    project = _project_or_404(project_id)
    domain_projects.remove_customer_address(project, AddressForm().address.data, user_id=g.user.id)
    return redirect(url_for(".edit", project_id=project.id, notice="address-removed"))


# --- protocol ------------------------------------------------------------------------------
class DateError(ValueError):
    """A start or end date is not a date; args[0] names the field."""


def _date(filters: dict, name: str) -> dt.date | None:
    text = filters[name]
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DateError(name) from None


def protocol_filters(bulk: ProtocolBulkForm | None = None) -> dict:
    """The protocol's filter form as typed (the query string, or what the bulk form carries),
    with unknown choices dropped."""
    if bulk is not None:
        return bulk.filter_form(ENTRY_KINDS, CATEGORIES, ENTRY_STATUSES).filters()
    return ProtocolFilterForm(ENTRY_KINDS, CATEGORIES, ENTRY_STATUSES).filters()


def protocol_query(filters: dict) -> SearchQuery:
    """The search box's query plus the filter form as terms of the same syntax.

    The end date counts as a whole day: before: leaves its own day out, so take the next.
    Raises QuerySyntaxError or DateError.
    """
    terms = list(parse_query(filters["q"]).terms)
    if filters["kind"]:
        terms.append(Term("kind", tuple(filters["kind"])))
    if filters["status"]:
        terms.append(Term("is", filters["status"]))
    if filters["attachment"]:
        terms.append(Term("has", "attachment"))
    start, end = _date(filters, "from_date"), _date(filters, "to_date")
    if start is not None:
        terms.append(Term("after", start))
    if end is not None and end < dt.date.max:
        terms.append(Term("before", end + dt.timedelta(days=1)))
    return SearchQuery(tuple(terms))


def _before_key() -> tuple[dt.datetime, int] | None:
    """The key after which the page starts: `?before=<id of the last entry seen>`.

    As on Tickets, the position comes from the database; an unknown id starts at the newest.
    """
    marker = PageForm().before.data
    known = marker is not None and 0 < marker <= MAX_ID
    seen = entry_of_account(g.user.account_id, marker) if known else None
    return (seen.occurred_at, seen.id) if seen is not None else None


def _whole_number(value: int | None, largest: int = MAX_ID) -> int | None:
    """A whole number from 1 to `largest`, else None."""
    return value if value is not None and 0 < value <= largest else None


def _linked_entry(project: Project) -> Entry | None:
    """The entry a link names (`?entry=<id>`, Tickets and the like), if of this project."""
    entry_id = _whole_number(ProtocolPlaceForm().entry.data)
    entry = entry_of_account(g.user.account_id, entry_id) if entry_id else None
    return entry if entry is not None and entry.project_id == project.id else None


@bp.get("/projects/<int:project_id>/protocol")
def protocol(project_id: int):
    """A page of the protocol; `?entry=<id>` opens the page that holds that entry (with the
    same search and filters), its row marked; `?before=<id>` the page after that entry."""
    project = _project_or_404(project_id)
    filters = protocol_filters()
    linked = _linked_entry(project)
    before_key, number = _before_key(), _whole_number(ProtocolPlaceForm().page.data, MAX_PAGE)
    if before_key is None:
        number = 1
    page, syntax_error, date_error, linked_missing = SearchPage([], None), None, None, False
    unnamed = False
    try:
        query = protocol_query(filters)
        categories = tuple(filters["category"])
        if linked is not None:
            where = page_of_entry(
                g.user.account_id,
                project.id,
                query,
                linked,
                page_size=PAGE_SIZE,
                categories=categories,
                zone=viewer_zone(),
            )
            if where is None:
                linked_missing = True
            else:
                before_key, number = where.before_key, where.number
                unnamed = number is None  # a page starting at the entry: no `before` names it
        page = timeline_page(
            g.user.account_id,
            project.id,
            query,
            categories=categories,
            limit=PAGE_SIZE,
            before_key=before_key,
            zone=viewer_zone(),  # the dates and after:/before: are the viewer's local days
        )
    except QuerySyntaxError as error:
        syntax_error = translate(error.message_id, **error.values)
    except DateError as error:
        date_error = error.args[0]
    chosen = {name: value for name, value in filters.items() if value}
    older_url = None
    if page.next_key is not None:
        older_url = url_for(
            ".protocol",
            project_id=project.id,
            **chosen,
            before=page.next_key[1],
            page=number + 1 if number else None,
        )
    may_edit = may_change_anything(g.user)
    return render_template(
        "protocol.html",
        project=project,
        addresses=_addresses_of(project),
        entries=page.entries,
        older_url=older_url,
        newest_url=url_for(".protocol", project_id=project.id, **chosen),
        paged=before_key is not None,
        # the page's `before` as a link names it (the bulk form comes back to it): not for a
        # page that starts at a linked entry further down than the count goes (no number)
        page_before=before_key[1] if before_key is not None and not unnamed else None,
        page_number=number,
        linked_id=linked.id if linked is not None and not linked_missing else None,
        linked_missing=linked_missing,
        filters=filters,
        chosen=chosen,
        syntax_error=syntax_error,
        date_error=date_error,
        kinds=ENTRY_KINDS,
        categories=CATEGORIES,
        entry_statuses=ENTRY_STATUSES,
        bulk=may_edit and not syntax_error and not date_error,
        bulk_total=_matching_total(project, filters) if may_edit and page.entries else "0",
        may_delete=may_delete_entries(g.user),
        tab="protocol",
    )


def _matching_total(project: Project, filters: dict) -> str:
    """How many entries the filtered protocol holds, as "select all N matching" says it."""
    try:
        query = protocol_query(filters)
    except (QuerySyntaxError, DateError):
        return "0"
    count = matching_count(
        g.user.account_id,
        project.id,
        query,
        limit=BULK_LIMIT + 1,
        categories=tuple(filters["category"]),
        zone=viewer_zone(),
    )
    return f"{BULK_LIMIT}+" if count > BULK_LIMIT else str(count)


# --- files ---------------------------------------------------------------------------------
FILES_LIMIT = 500


@bp.get("/projects/<int:project_id>/files")
def files(project_id: int):
    project = _project_or_404(project_id)
    attachments = attachments_of_project(g.user.account_id, project.id, limit=FILES_LIMIT + 1)
    return render_template(
        "files.html",
        project=project,
        addresses=_addresses_of(project),
        attachments=attachments[:FILES_LIMIT],
        more=len(attachments) > FILES_LIMIT,
        tab="files",
    )
