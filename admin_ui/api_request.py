"""What every API view needs: the blueprint, the token's user, errors, the parsed request.

The blueprint is flask-smorest's: a view declares its models (admin_ui/api_schemas) with
@api.query and @api.body (flask-smorest's @api.arguments for the query and the JSON body) and
its answer with @api.response; flask-smorest parses and checks the request with them before the
view runs (webargs, through Parser below), dumps the answer through them and writes them into
the OpenAPI document (admin_ui/api.py).

A body that is not a JSON object is a 400; a JSON object whose fields are wrong is a 422 naming
the field; a bad query parameter is a 400. Errors are {"error": message, "status": code}.
"""

from __future__ import annotations

import json

from flask import Response, g
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from domain.translatable import N_
from storage.models import User

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """Answer the request with this status and message as {"error": ..., "status": ...}.

    message is an English message id (marked with N_) with %(name)s placeholders filled from
    values; admin_ui.api's handler says it in the reader's language (the status, the code,
    never changes). `message` is the English text, `message_id` and `values` its parts.
    """

    def __init__(self, status: int, message: str, headers: dict | None = None, **values):
        super().__init__(message % values if values else message)
        self.status = status
        self.message_id = message
        self.values = values
        self.message = message % values if values else message
        self.headers = headers or {}


def validation_message(messages) -> str:
    """One sentence from marshmallow's messages: the first missing field, else the first error,
    with its path in front ("attachments[0].filename is required")."""
    found = list(_flatten(messages, ""))
    found.sort(key=lambda item: item[1] != "is required")  # stable: else the first in order
    where, message = found[0]
    return f"{where} {message}" if where else message


def _flatten(messages, where: str):
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                inner = where
            elif isinstance(key, int):
                inner = f"{where}[{key}]"
            else:
                inner = f"{where}.{key}" if where else str(key)
            yield from _flatten(value, inner)
    elif isinstance(messages, list):
        for item in messages:
            yield from _flatten(item, where)
    else:
        yield where, str(messages)


LOCATIONS = {"json", "query", "querystring"}


class Parser(FlaskParser):
    """webargs' parser, reading a body as the API always has and raising ApiError."""

    USE_ARGS_POSITIONAL = False

    def load_json(self, req, schema):
        """The body as JSON whatever its content type; an object, or a 400."""
        raw = req.get_data(cache=True)
        if not raw.strip() and getattr(schema, "may_be_empty", False):
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, N_("the request body must be a JSON object")) from None
        if not isinstance(body, dict):
            raise ApiError(400, N_("the request body must be a JSON object"))
        return body

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.messages  # webargs files them under the location: {"json": {...}}
        if isinstance(messages, dict) and len(messages) == 1 and set(messages) <= LOCATIONS:
            [messages] = messages.values()
        raise ApiError(error_status_code or 422, validation_message(messages))


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = Parser()

    def body(self, schema, **kwargs):
        """The view gets the checked JSON body as `body` (a field error is a 422)."""
        return self.arguments(schema, arg_name="body", error_status_code=422, **kwargs)

    def query(self, schema):
        """The view gets the checked query parameters as `query` (an error is a 400); any
        parameter the schema does not name is refused by admin_ui.api's guard."""

        def decorator(view):
            QUERY_PARAMETERS[view.__name__] = {
                field.data_key or name for name, field in schema().fields.items()
            }
            parse = self.arguments(
                schema, location="query", arg_name="query", error_status_code=400
            )
            return parse(view)

        return decorator


api = ApiBlueprint("api", __name__, url_prefix=API_PREFIX)

# The query parameters each view reads (by endpoint); any other is refused, so a typo is seen.
QUERY_PARAMETERS: dict[str, set[str]] = {}


def api_user() -> User:
    """The user the request's token belongs to (the guard in admin_ui.api set it)."""
    return g.user


NOT_FOUND = {
    "entry": N_("entry not found"),
    "project": N_("project not found"),
    "customer address": N_("customer address not found"),
}


def not_found(what: str) -> ApiError:
    return ApiError(404, NOT_FOUND.get(what, f"{what} not found"))


def no_content() -> Response:
    response = Response(status=204)
    response.headers.pop("Content-Type", None)
    return response
