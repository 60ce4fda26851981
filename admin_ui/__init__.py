"""The admin UI and REST API (Flask); pages arrive with the UI issue."""

from admin_ui.app import create_app

__all__ = ["create_app"]
