"""The entries area of the admin UI."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("entries", __name__)
