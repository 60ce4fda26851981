"""API views of projects: the project itself, its customer addresses, notes and events.

Every change goes through domain.projects and domain.entries; their refusals (Invalid 422,
Conflict 409) are answered by admin_ui.api's one handler.
"""

from __future__ import annotations

import json

from flask import url_for

from admin_ui import api_schemas as schemas
from admin_ui.api_entries import entry_json, project_or_404
from admin_ui.api_request import ApiError, api, api_user, no_content, not_found
from admin_ui.api_schemas import MAX_ADDRESS, MAX_DATA_CHARS, project_statuses, storable
from domain import entries, projects
from domain.translatable import N_
from domain.users import may_delete_projects
from storage.models import Project
from storage.projects import addresses_by_project, projects_of_account

FIELDS = ("name", "domain", "status", "contact_name")


@api.query(schemas.ProjectQuery)
@api.response(200, schemas.ProjectList, description="The projects.")
def list_projects(query: dict):
    """List projects, active first, by name"""
    account_id = api_user().account_id
    found = projects_of_account(account_id, query.get("q", ""), limit=query["limit"])
    return {"projects": projects_json(found)}


@api.body(schemas.ProjectCreate)
@api.response(201, schemas.Project, description="The new project.")
@api.alt_response(409, "Conflict")
def create_project(body: dict):
    """Create a project"""
    statuses = project_statuses()
    fields = {"status": statuses[0], **{key: body[key] for key in FIELDS if key in body}}
    user = api_user()
    project = projects.create_project(
        user.account_id,
        **fields,
        customer_addresses=body.get("customer_addresses", []),
        user_id=user.id,
        statuses=statuses,
    )
    location = url_for("api.get_project", project_id=project.id)
    return project_json(project), 201, {"Location": location}


@api.response(200, schemas.Project, description="The project.")
def get_project(project_id: int):
    """One project"""
    return project_json(project_or_404(project_id))


@api.body(schemas.ProjectUpdate)
@api.response(200, schemas.Project, description="The project.")
def update_project(project_id: int, body: dict):
    """Change a project's fields"""
    project = project_or_404(project_id)
    projects.update_project(
        project, api_user().id, statuses=project_statuses(project.status), **body
    )
    return project_json(project)


@api.response(204, description="Done; no content.")
def delete_project(project_id: int):
    """Delete a project (owner or admin); its mail stays as unassigned, its notes go"""
    project = project_or_404(project_id)
    if not may_delete_projects(api_user()):
        raise ApiError(403, N_("only an owner or admin may delete a project"))
    projects.delete_project(project, api_user().id)
    return no_content()


@api.response(200, schemas.AddressList, description="The addresses.")
def list_addresses(project_id: int):
    """The project's customer addresses"""
    project = project_or_404(project_id)
    return {"addresses": addresses_json([project.id])[project.id]}


@api.body(schemas.AddressCreate)
@api.response(201, schemas.CustomerAddress, description="The stored address.")
@api.alt_response(409, "Conflict")
def add_address(project_id: int, body: dict):
    """Add a customer address"""
    project = project_or_404(project_id)
    row = projects.add_customer_address(
        project, body["address"], kind=body["kind"], user_id=api_user().id
    )
    return {"address": row.address, "kind": row.kind}, 201


@api.response(204, description="Done; no content.")
def remove_address(project_id: int, address: str):
    """Remove a customer address"""
    project = project_or_404(project_id)
    address = address.strip().lower()
    removed = (
        storable(address)
        and len(address) <= MAX_ADDRESS
        and projects.remove_customer_address(project, address, user_id=api_user().id)
    )
    if not removed:
        raise not_found("customer address")
    return no_content()


@api.body(schemas.NoteCreate)
@api.response(201, schemas.Entry, description="The new entry.")
def add_note(project_id: int, body: dict):
    """Add an internal note or a customer's call to the protocol"""
    entry = entries.add_manual_entry(
        project_or_404(project_id),
        api_user(),
        kind=body["kind"],
        text=body["text"],
        subject=body.get("subject", ""),
        occurred_at=body.get("occurred_at"),
        needs_action=body.get("needs_action"),
    )
    return _created(entry)


@api.body(schemas.EventCreate)
@api.response(201, schemas.Entry, description="The new entry.")
def add_event(project_id: int, body: dict):
    """Report an event (status change, change request …) as a system entry"""
    project = project_or_404(project_id)
    data = body.get("data")
    if data is not None and len(json.dumps(data)) > MAX_DATA_CHARS:
        raise ApiError(
            422, N_("data may have at most %(limit)s characters as JSON"), limit=MAX_DATA_CHARS
        )
    entry = entries.record_project_event(
        project,
        body["type"],
        body["subject"],
        text=body.get("text", ""),
        status=body.get("status"),
        data=data,
        user_id=api_user().id,
    )
    return _created(entry)


def _created(entry):
    return entry_json(entry), 201, {"Location": url_for("api.get_entry", entry_id=entry.id)}


# --- JSON shapes (dumped through api_schemas.Project and CustomerAddress) --------------------
def project_json(project: Project) -> dict:
    return projects_json([project])[0]


def projects_json(found: list[Project]) -> list[dict]:
    addresses = addresses_json([project.id for project in found])
    return [
        {
            "id": project.id,
            "name": project.name,
            "domain": project.domain,
            "status": project.status,
            "contact_name": project.contact_name,
            "created_at": project.created_at,
            "customer_addresses": addresses[project.id],
        }
        for project in found
    ]


def addresses_json(project_ids: list[int]) -> dict[int, list[dict]]:
    """Customer addresses per project id, in one query (storage.projects)."""
    return {
        project_id: [{"address": row.address, "kind": row.kind} for row in rows]
        for project_id, rows in addresses_by_project(project_ids).items()
    }
