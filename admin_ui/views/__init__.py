"""Blueprints of the admin UI, one per area."""

from __future__ import annotations

from flask import Flask


def register_views(app: Flask) -> None:
    from admin_ui.views import addresses, auth, health, pages, spam

    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    pages.register(app)
    app.register_blueprint(spam.bp)
    app.register_blueprint(addresses.bp)
