"""What every API view needs from the request: the token's user, a checked body, parameters.

Bodies are checked against the request schemas of the OpenAPI document (admin_ui/api_schemas),
so the document and the checks cannot disagree. Only the JSON Schema keywords that document
uses are understood here. A body that is not a JSON object is a 400; a JSON object whose
fields are wrong is a 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Response, current_app, g, request

from admin_ui.api_schemas import MAX_ID, schemas
from storage.models import User


class ApiError(Exception):
    """Answer the request with this status and message as {"error": ..., "status": ...}."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def api_user() -> User:
    """The user the request's token belongs to (the guard in admin_ui.api set it)."""
    return g.user


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def no_content() -> Response:
    response = Response(status=204)
    response.headers.pop("Content-Type", None)
    return response


# --- bodies ----------------------------------------------------------------------------------
def project_statuses(current: str | None = None) -> tuple[str, ...]:
    """The configured project statuses, plus a project's current one if no longer listed."""
    statuses = current_app.config["POSTROOM_SETTINGS"].ui.project_statuses
    return statuses if current in (None, *statuses) else (*statuses, current)


def json_body(
    schema_name: str, *, optional: bool = False, statuses: tuple[str, ...] | None = None
) -> dict:
    """The request's JSON object, checked against a request schema of the document.

    statuses: the project statuses to allow (default: the configured ones).
    """
    raw = request.get_data(cache=True)
    if not raw.strip() and optional:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    schema = schemas(statuses or project_statuses())[schema_name]
    problem = check(schema, body, "")
    if problem:
        raise ApiError(422, problem)
    return body


_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
}


def check(schema: dict, value, where: str) -> str | None:
    """Return what is wrong with value under schema (a subset of JSON Schema), or None."""
    name = where or "the body"
    if value is None:
        return None if schema.get("nullable") else f"{name} must not be null"
    expected = schema.get("type")
    if expected and (
        not isinstance(value, _TYPES[expected])
        or (expected == "integer" and isinstance(value, bool))
    ):
        return f"{name} must be {'an' if expected[0] in 'aeiou' else 'a'} {expected}"
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join("null" if c is None else str(c) for c in schema["enum"])
        return f"{name} must be one of {choices}"
    if isinstance(value, str):
        return _check_string(schema, value, name)
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{name} must be from {low} to {high}"
    if isinstance(value, list):
        return _check_array(schema, value, name)
    if isinstance(value, dict):
        return _check_object(schema, value, where)
    return None


def _check_string(schema: dict, value: str, name: str) -> str | None:
    if not storable(value):
        return f"{name} must not contain NUL characters or lone surrogates"
    if len(value) < schema.get("minLength", 0):
        return f"{name} must not be empty"
    if len(value) > schema.get("maxLength", len(value)):
        return f"{name} may have at most {schema['maxLength']} characters"
    if schema.get("format") == "date-time" and parse_datetime(value) is None:
        return f"{name} must be an ISO 8601 date and time, e.g. 2026-11-27T14:30:00Z"
    return None


def _check_array(schema: dict, value: list, name: str) -> str | None:
    if len(value) > schema.get("maxItems", len(value)):
        return f"{name} may have at most {schema['maxItems']} items"
    for index, item in enumerate(value):
        problem = check(schema.get("items", {}), item, f"{name}[{index}]")
        if problem:
            return problem
    return None


def _check_object(schema: dict, value: dict, where: str) -> str | None:
    properties = schema.get("properties", {})
    prefix = f"{where}." if where else ""
    for key in schema.get("required", ()):
        if key not in value:
            return f"{prefix}{key} is required"
    for key, item in value.items():
        if not storable(key):
            return f"{prefix}keys must not contain NUL characters or lone surrogates"
        if key not in properties:
            if schema.get("additionalProperties", True) is False:
                allowed = ", ".join(properties) or "none"
                return f"{prefix}{key} is not a known field (known: {allowed})"
            continue
        problem = check(properties[key], item, prefix + key)
        if problem:
            return problem
    return None


def storable(text: str) -> bool:
    """Tell whether both databases can store the text (no NUL, valid UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 date-time as naive UTC (no offset means UTC), or None if it is not one."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return value


# --- query parameters ------------------------------------------------------------------------
def int_param(name: str, default: int | None, low: int = 1, high: int = MAX_ID) -> int | None:
    """A whole-number query parameter; absent gives the default, empty is refused (400)."""
    text = request.args.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 12 and low <= int(text) <= high):
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
    return int(text)


def bool_param(name: str) -> bool:
    text = request.args.get(name, "false").lower()
    if text not in ("true", "false", "1", "0", ""):
        raise ApiError(400, f"{name} must be true or false")
    return text in ("true", "1")


def text_param(name: str, max_length: int) -> str:
    text = request.args.get(name, "")
    if len(text) > max_length:
        raise ApiError(400, f"{name} may have at most {max_length} characters")
    if not storable(text):
        raise ApiError(400, f"{name} must not contain NUL characters")
    return text
