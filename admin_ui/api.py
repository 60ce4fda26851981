"""REST API /api/v1 with per-user tokens; JSON only, never HTML.

The routes are listed here; the views live in api_entries and api_projects, the OpenAPI
document in api_openapi, the body and parameter checks in api_request.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from admin_ui import api_entries, api_messages, api_projects
from admin_ui.api_openapi import QUERY_PARAMETERS, document
from admin_ui.api_request import ApiError, project_statuses
from postroom import login_throttle
from domain.tokens import user_for_token

api = Blueprint("api", __name__, url_prefix="/api/v1")

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
for _rule, _method, _view in ROUTES:
    api.add_url_rule(_rule, view_func=_view, methods=[_method])


@api.get("/openapi.json")
def openapi_document():
    """The OpenAPI document; public, so tools can read it before they have a token."""
    return jsonify(document(project_statuses()))


@api.before_request
def authenticate():
    """Take the user from the Bearer token; read-only users may only read."""
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
            "send a valid API token: Authorization: Bearer <token>",
            {"WWW-Authenticate": 'Bearer realm="postroom"'},
        )
    g.user = user
    if request.method not in SAFE_METHODS and user.role == "read-only":
        raise ApiError(403, "read-only users may not change anything")
    known = QUERY_PARAMETERS.get(request.endpoint.removeprefix("api."), set())
    unknown = sorted(set(request.args) - known)
    if unknown:
        raise ApiError(
            400,
            f"unknown query parameter {unknown[0]!r}"
            f" (known here: {', '.join(sorted(known)) or 'none'})",
        )


def _count_wrong_token() -> None:
    """Count a wrong token against the client's address; once its budget is spent, 429."""
    keys = login_throttle.api_keys(request.remote_addr)
    wait = login_throttle.waiting(keys) or login_throttle.reserve(keys)
    if wait:
        raise ApiError(
            429,
            f"too many wrong tokens from your address; try again in {wait} s",
            {"Retry-After": str(wait)},
        )


@api.errorhandler(ApiError)
def api_error(error: ApiError):
    return jsonify(error=error.message, status=error.status), error.status, error.headers


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
