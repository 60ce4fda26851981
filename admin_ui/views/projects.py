"""The projects area of the admin UI."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("projects", __name__)


@bp.get("/projects")
def index():
    return "projects"
