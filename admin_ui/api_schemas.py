"""The JSON schemas of /api/v1: the shapes it answers with and the bodies it accepts.

admin_ui.api_request checks request bodies against these very schemas, and api_openapi puts
them into the OpenAPI document, so the document and the checks cannot disagree.
"""

from __future__ import annotations

from functools import lru_cache

from storage.models import ENTRY_KINDS, ENTRY_STATUSES
from storage.protocol import PROJECT_EVENTS

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
MAX_PAGE = 200
MAX_TEXT = 200_000  # the full-text index keeps this much of a body
MAX_ADDRESS = 254  # RFC 5321's limit on a path, as the UI's
MAX_DATA_CHARS = 10_000  # an event's "data", as JSON text
MAX_ATTACHMENTS = 20  # per mail to a customer, as postroom.outbound


def string(max_length: int, min_length: int = 0, **extra) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **extra}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict, required: tuple = (), *, closed: bool = True) -> dict:
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


_DATETIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATETIME = {**_DATETIME, "nullable": True}
_ENTRY_FIELDS = {
    "id": {"type": "integer"},
    "project_id": {"type": "integer", "nullable": True},
    "kind": {"type": "string", "enum": list(ENTRY_KINDS)},
    "status": {"type": "string", "enum": list(ENTRY_STATUSES)},
    "category": {"type": "string", "description": "customer, partner, internal or external"},
    "subject": {"type": "string"},
    "from": {"type": "string", "description": "the sender's address"},
    "from_name": {"type": "string"},
    "to": {"type": "array", "items": ref("MailAddress")},
    "cc": {"type": "array", "items": ref("MailAddress")},
    "text": {"type": "string"},
    "has_attachments": {"type": "boolean"},
    "attachments": {"type": "array", "items": ref("Attachment")},
    "route_reason": {"type": "string", "description": "why the entry was filed where it is"},
    "candidates": {"type": "array", "items": {"type": "integer"}},
    "parse_error": {"type": "string", "nullable": True},
    "message_id": {"type": "string", "nullable": True},
    "occurred_at": _DATETIME,
    "received_at": _DATETIME,
    "done_at": _NULLABLE_DATETIME,
    "spam": {"type": "boolean"},
    "auto_submitted": {"type": "boolean"},
    "bounce": {"type": "boolean"},
    "has_raw": {"type": "boolean", "description": "GET /entries/{entry_id}/raw has the message"},
}


def _project_fields(statuses: tuple[str, ...]) -> dict:
    return {
        "name": string(200, 1),
        "domain": {**string(253), "description": "the website's host name, e.g. bakery.example"},
        "status": {
            "type": "string",
            "enum": list(statuses),
            "description": "one of the statuses configured in [ui] project_statuses",
        },
        "contact_name": string(200),
    }


@lru_cache(maxsize=8)
def schemas(statuses: tuple[str, ...]) -> dict[str, dict]:
    """The schemas of the document, given the project statuses the configuration allows."""
    return _schemas(statuses)


def _schemas(statuses: tuple[str, ...]) -> dict[str, dict]:
    project_fields = _project_fields(statuses)
    return {
        # --- responses
        "Error": _object(
            {"error": {"type": "string"}, "status": {"type": "integer"}}, ("error", "status")
        ),
        "MailAddress": _object(
            {"name": {"type": "string"}, "address": {"type": "string"}}, ("name", "address")
        ),
        "Attachment": _object(
            {
                "id": {"type": "integer"},
                "filename": {"type": "string"},
                "content_type": {"type": "string"},
                "size": {"type": "integer"},
            },
            ("id", "filename", "content_type", "size"),
        ),
        "Entry": _object(_ENTRY_FIELDS, tuple(_ENTRY_FIELDS)),
        "EntryPage": _object(
            {
                "entries": {"type": "array", "items": ref("Entry")},
                "next_cursor": {
                    "type": "string",
                    "nullable": True,
                    "description": "pass as cursor for the next page; null on the last page",
                },
            },
            ("entries", "next_cursor"),
        ),
        "CustomerAddress": _object(
            {
                "address": {"type": "string"},
                "kind": {"type": "string", "enum": ["customer", "partner"]},
            },
            ("address", "kind"),
        ),
        "AddressList": _object(
            {"addresses": {"type": "array", "items": ref("CustomerAddress")}}, ("addresses",)
        ),
        "Project": _object(
            {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "domain": {"type": "string"},
                "status": {"type": "string"},
                "contact_name": {"type": "string"},
                "created_at": _DATETIME,
                "customer_addresses": {"type": "array", "items": ref("CustomerAddress")},
            },
            ("id", "name", "domain", "status", "contact_name", "created_at", "customer_addresses"),
        ),
        "ProjectList": _object(
            {"projects": {"type": "array", "items": ref("Project")}}, ("projects",)
        ),
        # --- request bodies (admin_ui.api_request checks these, resolving no $ref)
        "EntryAssign": _object(
            {
                "project_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "remember_sender": {
                    "type": "boolean",
                    "default": False,
                    "description": "also store the sender as a customer address of the project",
                },
            },
            ("project_id",),
        ),
        "EntryDiscard": _object(
            {
                "block": {
                    "type": "string",
                    "enum": ["sender", "domain", None],
                    "nullable": True,
                    "description": "send later mail from this sender or its domain to spam",
                }
            }
        ),
        "ProjectCreate": _object(
            {
                **project_fields,
                "customer_addresses": {
                    "type": "array",
                    "maxItems": 50,
                    "items": string(MAX_ADDRESS, 1, format="email"),
                },
            },
            ("name",),
        ),
        "ProjectUpdate": _object(project_fields),
        "AddressCreate": _object(
            {
                "address": string(MAX_ADDRESS, 1, format="email"),
                "kind": {"type": "string", "enum": ["customer", "partner"], "default": "customer"},
            },
            ("address",),
        ),
        "NoteCreate": _object(
            {
                "kind": {
                    "type": "string",
                    "enum": ["note", "call"],
                    "description": "note: internal; call: a message from the customer (call, SMS)",
                },
                "text": string(MAX_TEXT, 1),
                "subject": string(500),
                "occurred_at": {**_DATETIME, "description": "default now; without offset: UTC"},
            },
            ("kind", "text"),
        ),
        "EventCreate": _object(
            {
                "type": {"type": "string", "enum": list(PROJECT_EVENTS)},
                "subject": string(500, 1),
                "text": string(MAX_TEXT),
                "status": {
                    **project_fields["status"],
                    "description": "status_change only: the project's new status",
                },
                "data": {
                    "type": "object",
                    "description": f"stored with the event; at most {MAX_DATA_CHARS} characters"
                    " as JSON",
                },
            },
            ("type", "subject"),
        ),
        "MessageCreate": _object(
            {
                "to": {
                    **string(MAX_ADDRESS, 1, format="email"),
                    "description": "the recipient: a customer address of the project or another",
                },
                "subject": {**string(500), "description": "one line; required without template"},
                "body": {
                    **string(MAX_TEXT),
                    "description": "Markdown; sent as HTML with a plain-text alternative."
                    " Required without template_id. The signature is not added by itself.",
                },
                "template_id": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_ID,
                    "nullable": True,
                    "description": "a mail template of the account: rendered for this project"
                    " and recipient, it fills in subject and body where those are empty",
                },
                "answer_entry_id": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_ID,
                    "nullable": True,
                    "description": "an entry of this project that the mail answers (threading)",
                },
                "attachments": {
                    "type": "array",
                    "maxItems": MAX_ATTACHMENTS,
                    "items": _object(
                        {
                            "filename": string(255, 1),
                            "content_type": {
                                **string(255),
                                "default": "application/octet-stream",
                            },
                            "content_base64": {
                                "type": "string",
                                "description": "the file's bytes, base64; each file at most"
                                " [outbound] max_attachment_bytes",
                            },
                        },
                        ("filename", "content_base64"),
                    ),
                },
            },
            ("to",),
        ),
    }
