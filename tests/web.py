"""Flask test-client fixtures: an app on a fresh database with one account and a user per role.

tests/conftest.py loads this module as a plugin, so the `web` fixture is there in every test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.users import create_user
from postroom.config import load_settings
from storage.accounts import create_account

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Web:
    """The app, its account and one user per role (emails: <role>@agency.test)."""

    app: object
    account: object
    users: dict

    def client(self, role: str | None = "member"):
        """A test client, logged in as the user of that role (None: anonymous)."""
        client = self.app.test_client()
        if role is not None:
            login(client, f"{role}@agency.test")
        return client


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD):
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def post(client, path: str, data: dict | None = None, *, token_from: str | None = None):
    """POST a form with a valid CSRF token taken from `token_from` (default: the page itself)."""
    token = csrf_token(client, token_from or "/")
    return client.post(path, data={**(data or {}), "csrf_token": token})


@pytest.fixture
def web(storage_db, tmp_path: Path) -> Web:
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text('[ingest]\ndomains = ["in.example"]\n')
    settings = load_settings(config)
    account = create_account("Agency")
    users = {
        role: create_user(account.id, f"{role}@agency.test", role, PASSWORD, name=role.title())
        for role in ("owner", "admin", "member", "read-only")
    }
    app = create_app(settings, testing=True)
    return Web(app=app, account=account, users=users)
