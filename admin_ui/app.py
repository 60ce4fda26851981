"""Flask app factory: takes the frozen settings, registers blueprints, touches no globals."""

from __future__ import annotations

from flask import Flask, jsonify

from postroom.config import Settings


def create_app(settings: Settings) -> Flask:
    """Build the admin UI application for the given settings."""
    app = Flask(__name__)
    app.config["POSTROOM_SETTINGS"] = settings

    @app.get("/healthz")
    def healthz():
        from storage.db import SchemaError, check_schema
        from storage.models import database

        try:
            check_schema(database.obj)
        except SchemaError as error:
            return jsonify(status="error", reason=str(error)), 503
        return jsonify(status="ok")

    return app
