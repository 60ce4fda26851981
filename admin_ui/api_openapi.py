"""The OpenAPI 3.0 document of /api/v1, served at /api/v1/openapi.json.

It is built here, in Python, around the schemas of api_schemas (which the views check bodies
against). Every route of the `api` blueprint has an operation here whose operationId is the
view's name; tests/test_api.py checks both directions.
"""

from __future__ import annotations

from admin_ui.api_schemas import MAX_ADDRESS, MAX_ID, MAX_PAGE, ref, schemas, string


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


RESPONSES = {
    "BadRequest": _error(
        "An unknown or malformed query parameter, or a body that is not a JSON object."
    ),
    "Unauthorized": {
        **_error("No token, or not a valid one: send Authorization: Bearer <token>."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "Forbidden": _error("The token's user may not do this (read-only, or not owner/admin)."),
    "TooManyRequests": {
        **_error("Too many wrong tokens from this address: wait Retry-After seconds."),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
    "NotFound": _error("No such entry, project or address in the token user's account."),
    "Conflict": _error("The change clashes with what is stored (e.g. a duplicate address)."),
    "Unprocessable": _error(
        "A field of the JSON body is missing or invalid; the error says which."
    ),
}


def _path_id(name: str, what: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"the {what}'s id",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "example": 1,
    }


def _query(name: str, schema: dict, description: str) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


ENTRY_ID = _path_id("entry_id", "entry")
PROJECT_ID = _path_id("project_id", "project")
ADDRESS = {
    "name": "address",
    "in": "path",
    "required": True,
    "schema": string(MAX_ADDRESS, 1),
    "example": "anna@bakery.example",
}
ENTRY_QUERY = [
    _query(
        "q",
        string(2000),
        'search syntax: words, "phrases", from:, to:, subject:, '
        "has:attachment, is:open, is:done, kind:, project:, after:, before:, -negation",
    ),
    _query(
        "project_id",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "only this project's entries",
    ),
    _query("unassigned", {"type": "boolean"}, "only entries without a project"),
    _query("include_spam", {"type": "boolean"}, "also entries discarded as spam"),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50},
        "entries per page",
    ),
    _query("cursor", string(200), "next_cursor of the previous page"),
]
PROJECT_QUERY = [
    _query("q", string(200), "words in the name or domain"),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": MAX_PAGE},
        "at most this many projects",
    ),
]

# The query parameters each view reads; any other is refused (a typo should not pass unseen).
QUERY_PARAMETERS = {
    "list_entries": {p["name"] for p in ENTRY_QUERY},
    "list_projects": {p["name"] for p in PROJECT_QUERY},
}


def _operation(
    operation_id: str,
    summary: str,
    ok: tuple[str, str, dict | None],
    *,
    parameters: list | tuple = (),
    body: str | None = None,
    body_required: bool = True,
    write: bool = False,
    conflict: bool = False,
) -> dict:
    status, description, content = ok
    responses: dict = {status: {"description": description}}
    if content is not None:
        responses[status]["content"] = content
    # 400: e.g. an unknown query parameter; 429: wrong tokens from the address (login_throttle)
    codes = {"400": "BadRequest", "401": "Unauthorized", "429": "TooManyRequests"}
    if write:
        codes["403"] = "Forbidden"
    if (
        any(p["in"] == "path" for p in parameters)
        or any(p["name"] == "project_id" for p in parameters)
        or body == "EntryAssign"
    ):
        codes["404"] = "NotFound"
    if conflict:
        codes["409"] = "Conflict"
    if body:
        codes["422"] = "Unprocessable"
    for code, name in sorted(codes.items()):
        responses[code] = {"$ref": f"#/components/responses/{name}"}
    operation = {"operationId": operation_id, "summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": ref(body)}},
        }
    return operation


def _json(name: str) -> dict:
    return {"application/json": {"schema": ref(name)}}


def document(statuses: tuple[str, ...]) -> dict:
    """The OpenAPI document: every route of the api blueprint, its parameters and answers."""
    entry = ("200", "The entry.", _json("Entry"))
    project = ("200", "The project.", _json("Project"))
    gone = ("204", "Done; no content.", None)
    paths = {
        "/entries": {
            "get": _operation(
                "list_entries",
                "List or search entries, newest first",
                ("200", "A page of entries.", _json("EntryPage")),
                parameters=ENTRY_QUERY,
            ),
        },
        "/entries/{entry_id}": {
            "get": _operation("get_entry", "One entry", entry, parameters=[ENTRY_ID]),
            "delete": _operation(
                "delete_entry",
                "Delete an entry (owner or admin)",
                gone,
                parameters=[ENTRY_ID],
                write=True,
            ),
        },
        "/entries/{entry_id}/raw": {
            "get": _operation(
                "entry_raw",
                "The received message as it arrived",
                (
                    "200",
                    "The raw message.",
                    {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
                ),
                parameters=[ENTRY_ID],
            ),
        },
        "/entries/{entry_id}/done": {
            "post": _operation(
                "mark_done", "Tick an entry done", entry, parameters=[ENTRY_ID], write=True
            ),
        },
        "/entries/{entry_id}/open": {
            "post": _operation(
                "mark_open",
                "Untick an entry (open again)",
                entry,
                parameters=[ENTRY_ID],
                write=True,
            ),
        },
        "/entries/{entry_id}/assign": {
            "post": _operation(
                "assign_entry",
                "File an entry under a project",
                entry,
                parameters=[ENTRY_ID],
                body="EntryAssign",
                write=True,
            ),
        },
        "/entries/{entry_id}/discard": {
            "post": _operation(
                "discard_entry",
                "Discard an entry as spam",
                entry,
                parameters=[ENTRY_ID],
                body="EntryDiscard",
                body_required=False,
                write=True,
            ),
        },
        "/projects": {
            "get": _operation(
                "list_projects",
                "List projects, active first, by name",
                ("200", "The projects.", _json("ProjectList")),
                parameters=PROJECT_QUERY,
            ),
            "post": _operation(
                "create_project",
                "Create a project",
                ("201", "The new project.", _json("Project")),
                body="ProjectCreate",
                write=True,
                conflict=True,
            ),
        },
        "/projects/{project_id}": {
            "get": _operation("get_project", "One project", project, parameters=[PROJECT_ID]),
            "patch": _operation(
                "update_project",
                "Change a project's fields",
                project,
                parameters=[PROJECT_ID],
                body="ProjectUpdate",
                write=True,
            ),
            "delete": _operation(
                "delete_project",
                "Delete a project (owner or admin); its mail stays as unassigned, its notes go",
                gone,
                parameters=[PROJECT_ID],
                write=True,
            ),
        },
        "/projects/{project_id}/addresses": {
            "get": _operation(
                "list_addresses",
                "The project's customer addresses",
                ("200", "The addresses.", _json("AddressList")),
                parameters=[PROJECT_ID],
            ),
            "post": _operation(
                "add_address",
                "Add a customer address",
                ("201", "The stored address.", _json("CustomerAddress")),
                parameters=[PROJECT_ID],
                body="AddressCreate",
                write=True,
                conflict=True,
            ),
        },
        "/projects/{project_id}/addresses/{address}": {
            "delete": _operation(
                "remove_address",
                "Remove a customer address",
                gone,
                parameters=[PROJECT_ID, ADDRESS],
                write=True,
            ),
        },
        "/projects/{project_id}/notes": {
            "post": _operation(
                "add_note",
                "Add an internal note or a customer's call to the protocol",
                ("201", "The new entry.", _json("Entry")),
                parameters=[PROJECT_ID],
                body="NoteCreate",
                write=True,
            ),
        },
        "/projects/{project_id}/events": {
            "post": _operation(
                "add_event",
                "Report an event (status change, change request …) as a system entry",
                ("201", "The new entry.", _json("Entry")),
                parameters=[PROJECT_ID],
                body="EventCreate",
                write=True,
            ),
        },
        "/projects/{project_id}/messages": {
            "post": _operation(
                "send_message",
                "Send mail to the customer: it is queued as an "
                "outbound entry and sent by the worker",
                ("201", "The new outbound entry.", _json("Entry")),
                parameters=[PROJECT_ID],
                body="MessageCreate",
                write=True,
            ),
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi_document",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "postroom API",
            "version": "1",
            "description": (
                "Entries, projects, customer addresses, notes, events and mail to customers of "
                "the token user's account. Authenticate with `Authorization: Bearer <token>` "
                "(create one with `postroom token create EMAIL`). "
                'Errors are JSON: {"error": ..., "status": '
                "...}. Users with the read-only role get 403 on every POST, PATCH and DELETE. "
                "Ids of other accounts answer 404."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(statuses),
            "responses": RESPONSES,
        },
    }
