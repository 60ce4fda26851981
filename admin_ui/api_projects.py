"""API views of projects: the project itself, its customer addresses, notes and events."""

from __future__ import annotations

import json
import re

from flask import url_for

from admin_ui.api_entries import entry_json, project_or_404, timestamp
from admin_ui.api_request import (
    ApiError,
    api_user,
    int_param,
    json_body,
    no_content,
    not_found,
    parse_datetime,
    project_statuses,
    storable,
    text_param,
)
from admin_ui.api_schemas import MAX_ADDRESS, MAX_DATA_CHARS, MAX_PAGE
from storage import protocol
from storage.models import CustomerAddress, Project

# A host name: labels of letters (any script), digits and hyphens, separated by dots.
DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)*[^\W_](?:[\w-]*[^\W_])?")
MANAGERS = ("owner", "admin")


def list_projects():
    words = text_param("q", 200)
    limit = int_param("limit", MAX_PAGE, 1, MAX_PAGE)
    projects = protocol.projects_of_account(api_user().account_id, words, limit=limit)
    return {"projects": projects_json(projects)}


def create_project():
    body = json_body("ProjectCreate")
    fields = {"status": project_statuses()[0], **_project_fields(body)}
    addresses = list(dict.fromkeys(_address(text) for text in body.get("customer_addresses", [])))
    for address in addresses:
        _refuse_taken(address, None)
    user = api_user()
    try:
        project = protocol.create_project_with_addresses(
            user.account_id,
            **fields,
            addresses=[(a, "customer") for a in addresses],
            user_id=user.id,
        )
    except protocol.ProtocolError as error:  # taken in the meantime
        raise ApiError(409, "; ".join(str(arg) for arg in error.args)) from None
    location = url_for("api.get_project", project_id=project.id)
    return project_json(project), 201, {"Location": location}


def get_project(project_id: int):
    return project_json(project_or_404(project_id))


def update_project(project_id: int):
    project = project_or_404(project_id)
    body = json_body("ProjectUpdate", statuses=project_statuses(project.status))
    fields = _project_fields(body)
    try:
        protocol.update_project(project, api_user().id, **fields)
    except protocol.ProtocolError as error:
        raise ApiError(422, str(error)) from None
    return project_json(project)


def delete_project(project_id: int):
    project = project_or_404(project_id)
    if api_user().role not in MANAGERS:
        raise ApiError(403, "only an owner or admin may delete a project")
    protocol.delete_project(project, api_user().id)
    return no_content()


def list_addresses(project_id: int):
    project = project_or_404(project_id)
    return {"addresses": addresses_json([project.id])[project.id]}


def add_address(project_id: int):
    project = project_or_404(project_id)
    body = json_body("AddressCreate")
    address = _address(body["address"])
    _refuse_taken(address, project)
    kind = body.get("kind", "customer")
    protocol.add_customer_address(project, address, kind=kind, user_id=api_user().id)
    return {"address": address, "kind": kind}, 201


def remove_address(project_id: int, address: str):
    project = project_or_404(project_id)
    address = address.strip().lower()
    stored = (
        storable(address)
        and len(address) <= MAX_ADDRESS
        and CustomerAddress.select()
        .where((CustomerAddress.project == project.id) & (CustomerAddress.address == address))
        .exists()
    )
    if not stored:
        raise not_found("customer address")
    protocol.remove_customer_address(project, address, user_id=api_user().id)
    return no_content()


def add_note(project_id: int):
    project = project_or_404(project_id)
    body = json_body("NoteCreate")
    occurred_at = parse_datetime(body["occurred_at"]) if "occurred_at" in body else None
    try:
        entry = protocol.add_manual_entry(
            project,
            api_user(),
            kind=body["kind"],
            text=body["text"],
            subject=body.get("subject", ""),
            occurred_at=occurred_at,
        )
    except protocol.ProtocolError as error:
        raise ApiError(422, str(error)) from None
    return _created(entry)


def add_event(project_id: int):
    project = project_or_404(project_id)
    body = json_body("EventCreate", statuses=project_statuses(project.status))
    data = body.get("data")
    if data is not None and len(json.dumps(data)) > MAX_DATA_CHARS:
        raise ApiError(422, f"data may have at most {MAX_DATA_CHARS} characters as JSON")
    try:
        entry = protocol.record_project_event(
            project,
            body["type"],
            body["subject"],
            text=body.get("text", ""),
            status=body.get("status"),
            data=data,
            user_id=api_user().id,
        )
    except protocol.ProtocolError as error:
        raise ApiError(422, str(error)) from None
    return _created(entry)


def _created(entry):
    return entry_json(entry), 201, {"Location": url_for("api.get_entry", entry_id=entry.id)}


# --- checks beyond the schema ----------------------------------------------------------------
def _project_fields(body: dict) -> dict:
    """The project fields of a body, trimmed; blank names and statuses and bad domains refused."""
    fields = {
        key: body[key].strip()
        for key in ("name", "domain", "status", "contact_name")
        if key in body
    }
    for key in ("name", "status"):
        if key in fields and not fields[key]:
            raise ApiError(422, f"{key} must not be blank")
    if fields.get("domain"):
        fields["domain"] = fields["domain"].lower()
        if not DOMAIN.fullmatch(fields["domain"]):
            raise ApiError(422, f"domain is not a host name: {body['domain']!r}")
    return fields


def _address(text: str) -> str:
    address = text.strip().lower()
    if not protocol.ADDRESS.match(address):
        raise ApiError(422, f"not a valid email address: {text!r}")
    return address


def _refuse_taken(address: str, project: Project | None) -> None:
    """Refuse an address another project (or this one already) stores: mail goes to one."""
    owner = protocol.project_of_address(api_user().account_id, address)
    if owner is None:
        return
    if project is not None and owner.id == project.id:
        raise ApiError(409, f"{address} is already a customer address of this project")
    raise ApiError(409, f"{address} is already a customer address of {owner.name}")


# --- JSON shapes -----------------------------------------------------------------------------
def project_json(project: Project) -> dict:
    return projects_json([project])[0]


def projects_json(projects: list[Project]) -> list[dict]:
    addresses = addresses_json([project.id for project in projects])
    return [
        {
            "id": project.id,
            "name": project.name,
            "domain": project.domain,
            "status": project.status,
            "contact_name": project.contact_name,
            "created_at": timestamp(project.created_at),
            "customer_addresses": addresses[project.id],
        }
        for project in projects
    ]


def addresses_json(project_ids: list[int]) -> dict[int, list[dict]]:
    """Customer addresses per project id, in one query."""
    found: dict[int, list[dict]] = {project_id: [] for project_id in project_ids}
    if project_ids:
        query = (
            CustomerAddress.select()
            .where(CustomerAddress.project.in_(project_ids))
            .order_by(CustomerAddress.address)
        )
        for row in query:
            found[row.project_id].append({"address": row.address, "kind": row.kind})
    return found
