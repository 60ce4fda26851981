"""The team area of the admin UI."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("team", __name__)


@bp.get("/team")
def index():
    return "team"
