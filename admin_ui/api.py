"""REST API /api/v1 with per-user tokens; JSON only, never HTML.

The routes are listed here; the views live in api_entries, api_projects and api_messages, the
models of bodies, query parameters and answers in api_schemas. The OpenAPI document served at
/api/v1/openapi.json is flask-smorest's (apispec): generated from those models and the views'
decorators when the blueprint is registered, plus what this module says about every operation
(the bearer token, the error answers, the operationId: the view's name).
"""

from __future__ import annotations

from apispec import APISpec
from flask import Flask, current_app, g, jsonify, request
from flask_babel import force_locale
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from werkzeug.exceptions import HTTPException

from admin_ui import api_entries, api_messages, api_projects
from admin_ui import api_schemas as schemas
from admin_ui.api_request import API_PREFIX, QUERY_PARAMETERS, ApiError, api
from admin_ui.i18n import select_locale, translate
from domain.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from domain.tokens import user_for_token
from domain.translatable import N_
from domain.users import may_change_anything
from postroom import login_throttle

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ROUTES = (
    ("/entries", "GET", api_entries.list_entries),
    ("/entries/<int:entry_id>", "GET", api_entries.get_entry),
    ("/entries/<int:entry_id>", "DELETE", api_entries.delete_entry),
    ("/entries/<int:entry_id>/raw", "GET", api_entries.entry_raw),
    ("/entries/<int:entry_id>/done", "POST", api_entries.mark_done),
    ("/entries/<int:entry_id>/open", "POST", api_entries.mark_open),
    ("/entries/<int:entry_id>/assign", "POST", api_entries.assign_entry),
    ("/entries/<int:entry_id>/discard", "POST", api_entries.discard_entry),
    ("/projects", "GET", api_projects.list_projects),
    ("/projects", "POST", api_projects.create_project),
    ("/projects/<int:project_id>", "GET", api_projects.get_project),
    ("/projects/<int:project_id>", "PATCH", api_projects.update_project),
    ("/projects/<int:project_id>", "DELETE", api_projects.delete_project),
    ("/projects/<int:project_id>/addresses", "GET", api_projects.list_addresses),
    ("/projects/<int:project_id>/addresses", "POST", api_projects.add_address),
    # path: a local part may hold a slash, and %2F arrives decoded
    ("/projects/<int:project_id>/addresses/<path:address>", "DELETE", api_projects.remove_address),
    ("/projects/<int:project_id>/notes", "POST", api_projects.add_note),
    ("/projects/<int:project_id>/events", "POST", api_projects.add_event),
    ("/projects/<int:project_id>/messages", "POST", api_messages.send_message),
)


def _path_id(name: str, what: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "description": f"the {what}'s id",
        "schema": {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID},
        "example": 1,
    }


# What the document says of a path's parts (the rule's converter alone would say less).
PATH_PARAMETERS = {
    "entry_id": _path_id("entry_id", "entry"),
    "project_id": _path_id("project_id", "project"),
    "address": {
        "name": "address",
        "in": "path",
        "schema": {"type": "string", "minLength": 1, "maxLength": schemas.MAX_ADDRESS},
        "example": "anna@bakery.example",
    },
}
for _rule, _method, _view in ROUTES:
    api.add_url_rule(
        _rule,
        view_func=_view,
        methods=[_method],
        parameters=[p for name, p in PATH_PARAMETERS.items() if f":{name}>" in _rule],
    )


@api.route("/openapi.json", methods=["GET"])
@api.doc(security=[])
@api.response(200, {"type": "object"}, description="The OpenAPI document.")
def openapi_document():
    """This document"""
    # Public, so tools can read it before they have a token.
    return jsonify(api_spec(current_app).to_dict())


# --- the document ----------------------------------------------------------------------------
DESCRIPTION = (
    "Entries, projects, customer addresses, notes, events and mail to customers of the token"
    " user's account. Authenticate with `Authorization: Bearer <token>` (create one with"
    ' `postroom token create EMAIL`). Errors are JSON: {"error": ..., "status": ...}. Users'
    " with the read-only role get 403 on every POST, PATCH and DELETE. Ids of other accounts"
    " answer 404."
)
ERROR_RESPONSES = {
    "BadRequest": (
        "An unknown or malformed query parameter, or a body that is not a JSON object.",
        None,
    ),
    "Unauthorized": (
        "No token, or not a valid one: send Authorization: Bearer <token>.",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "Forbidden": ("The token's user may not do this (read-only, or not owner/admin).", None),
    "TooManyRequests": (
        "Too many wrong tokens from this address: wait Retry-After seconds.",
        {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    ),
    "NotFound": ("No such entry, project or address in the token user's account.", None),
    "Conflict": ("The change clashes with what is stored (e.g. a duplicate address).", None),
    "Unprocessable": (
        "A field of the JSON body is missing or invalid; the error says which.",
        None,
    ),
}


class ApiPaths(FlaskPlugin):
    """flask-smorest's Flask plugin, with paths relative to the server URL /api/v1 and what
    every operation shares: its operationId, and the errors it may answer."""

    def path_helper(self, rule, operations, parameters, **kwargs):
        path = super().path_helper(rule=rule, operations=operations, parameters=parameters)
        shared = list(parameters)
        parameters.clear()  # each operation lists the path's parameters itself
        for method, operation in operations.items():
            operation["operationId"] = rule.endpoint.removeprefix(f"{api.name}.")
            if shared:
                operation["parameters"] = [*shared, *operation.get("parameters", [])]
            if operation.get("security") == []:
                continue  # public: none of the token's answers
            # 400: e.g. an unknown query parameter; 429: wrong tokens from the address
            codes = {400: "BadRequest", 401: "Unauthorized", 429: "TooManyRequests"}
            if method.upper() not in SAFE_METHODS:
                codes[403] = "Forbidden"
            if rule.arguments:
                codes[404] = "NotFound"
            if "requestBody" in operation:
                codes[422] = "Unprocessable"
            responses = {int(code): answer for code, answer in operation["responses"].items()}
            responses.update(codes)
            operation["responses"] = dict(sorted(responses.items()))
        return path.removeprefix(API_PREFIX)


class ApiDocument(Api):
    """flask-smorest's Api, used for its document only: the blueprint answers errors itself
    (in the shape {"error": ..., "status": ...}), and serves the document at its own URL."""

    ERROR_SCHEMA = schemas.Error

    def _register_error_handlers(self):
        pass

    def _register_pagination_header(self):
        pass  # no paginated views: no PaginationMetadata schema in the document


def _project_status_enum(statuses: tuple[str, ...]):
    def enum(converter, field, **kwargs) -> dict:
        return {"enum": list(statuses)} if isinstance(field, schemas.ProjectStatus) else {}

    return enum


def api_spec(app: Flask) -> APISpec:
    """The app's OpenAPI document as flask-smorest generated it."""
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec


@api.record_once
def _document(state) -> None:
    """Generate the document when the blueprint is registered (its routes are in place)."""
    app = state.app
    document = ApiDocument(
        app,
        spec_kwargs={
            "title": "postroom API",
            "version": "1",
            "openapi_version": "3.0.3",
            "flask_plugin": ApiPaths(),
            "info": {"description": DESCRIPTION},
            "servers": [{"url": API_PREFIX}],
            "security": [{"bearerAuth": []}],
        },
    )
    document.DEFAULT_ERROR_RESPONSE_NAME = None  # only the errors listed per operation
    spec = document.spec
    statuses = app.config["POSTROOM_SETTINGS"].ui.project_statuses
    document.ma_plugin.converter.add_attribute_function(_project_status_enum(statuses))
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for name, (description, headers) in ERROR_RESPONSES.items():
        answer = {
            "description": description,
            "content": {"application/json": {"schema": schemas.Error}},
        }
        if headers:
            answer["headers"] = headers
        spec.components.response(name, answer)
    api.register_views_in_doc(document, app, spec, name=api.name, parameters=None)


# --- every request ---------------------------------------------------------------------------
@api.before_request
def authenticate():
    """Take the user from the Bearer token; read-only users may only read; refuse query
    parameters the view does not read; look up the entry or project of the path (404)."""
    # A session cookie never counts here: the API is exempt from CSRF protection.
    g.user = None
    if request.endpoint == "api.openapi_document":
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    user = user_for_token(token) if scheme.lower() == "bearer" and token else None
    if user is None and token:
        _count_wrong_token()
    if user is None:
        raise ApiError(
            401,
            N_("send a valid API token: Authorization: Bearer <token>"),
            {"WWW-Authenticate": 'Bearer realm="postroom"'},
        )
    g.user = user
    if request.method not in SAFE_METHODS and not may_change_anything(user):
        raise ApiError(403, N_("read-only users may not change anything"))
    known = QUERY_PARAMETERS.get(request.endpoint.removeprefix("api."), set())
    unknown = sorted(set(request.args) - known)
    if unknown:
        if not known:
            raise ApiError(
                400,
                N_("unknown query parameter %(name)s (known here: none)"),
                name=repr(unknown[0]),
            )
        raise ApiError(
            400,
            N_("unknown query parameter %(name)s (known here: %(known)s)"),
            name=repr(unknown[0]),
            known=", ".join(sorted(known)),
        )
    # before the body is read: an id of another account is a 404 whatever the body
    path = request.view_args or {}
    if "entry_id" in path:
        api_entries.entry_or_404(path["entry_id"])
    if "project_id" in path:
        g.project = api_entries.project_or_404(path["project_id"])


def _count_wrong_token() -> None:
    """Count a wrong token against the client's address; once its budget is spent, 429."""
    keys = login_throttle.api_keys(request.remote_addr)
    wait = login_throttle.waiting(keys) or login_throttle.reserve(keys)
    if wait:
        raise ApiError(
            429,
            N_("too many wrong tokens from your address; try again in %(wait)s s"),
            {"Retry-After": str(wait)},
            wait=wait,
        )


# --- errors ----------------------------------------------------------------------------------
DOMAIN_STATUS = ((Invalid, 422), (Conflict, 409), (NotFound, 404), (Forbidden, 403))


# The status (the code) never changes; the message is said in the token user's language (their
# own, else their account's), or Accept-Language's before a token is known (401, 429). The
# locale is chosen here explicitly: Flask-Babel may have cached it before g.user was set.
@api.errorhandler(ApiError)
def api_error(error: ApiError):
    with force_locale(select_locale()):
        message = translate(error.message_id, **error.values)
    return jsonify(error=message, status=error.status), error.status, error.headers


@api.errorhandler(DomainError)
def domain_error(error: DomainError):
    """A refusal of the domain layer, with its message: the one place mapping them to codes."""
    status = next((code for kind, code in DOMAIN_STATUS if isinstance(error, kind)), 422)
    with force_locale(select_locale()):  # a refusal may name several things
        message = "; ".join(
            translate(arg) if isinstance(arg, str) else str(arg) for arg in error.args
        )
    return jsonify(error=message, status=status), status


@api.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    """JSON for HTTP errors under /api/ that the app has no handler of its own for (405 …)."""
    if not request.path.startswith("/api/") or error.code is None or error.code < 400:
        return error
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return jsonify(error=error.description, status=error.code), error.code, headers


def _routing_error_first():
    """Answer an unknown path or method under /api/ before the UI's login guard redirects it.

    Such a request matches no rule, so it belongs to no blueprint, and the app's login guard
    would send it to the login page. Raising the routing error here makes it a JSON 404/405.
    """
    if request.routing_exception is not None and request.path.startswith("/api/"):
        raise request.routing_exception


@api.record_once
def _install_routing_guard(state) -> None:
    state.app.before_request_funcs.setdefault(None, []).insert(0, _routing_error_first)
