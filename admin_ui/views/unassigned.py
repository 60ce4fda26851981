"""The unassigned area of the admin UI."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("unassigned", __name__)


@bp.get("/unassigned")
def index():
    return "unassigned"
