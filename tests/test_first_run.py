"""A newcomer's first minutes: the setup link in the log, the one-time setup page, the demo."""

from __future__ import annotations

import re
import urllib.request

from postroom.auth import setup_token
from postroom.config import load_settings
from storage.models import Account, User
from tests.daemon import Daemon
from tests.web import csrf_token


def test_setup_needs_the_token_from_the_log_and_works_once(storage_db, tmp_path):
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text("")
    app = create_app(load_settings(config), testing=True)
    client = app.test_client()
    assert "not set up yet" in client.get("/login").get_data(as_text=True)
    assert client.get("/setup?token=guessed").status_code == 404
    token = setup_token()
    page = f"/setup?token={token}"
    response = client.post(
        page,
        data={"agency": "Pixel & Paper", "email": "Owner@Pixel.test",
              "password": "long enough password", "csrf_token": csrf_token(client, page)},
    )  # fmt: skip
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    owner = User.get()
    assert (owner.email, owner.role) == ("owner@pixel.test", "owner")
    assert Account.get().name == "Pixel & Paper"
    # the token is spent: nobody else can claim the installation
    assert setup_token() is None
    assert app.test_client().get(page).status_code == 404


def test_run_prints_the_setup_link_and_the_ui_answers(db_url, tmp_path):
    with Daemon(tmp_path, db_url, command="run") as daemon:
        link = re.search(r"postroom setup: (\S+)", daemon.log_text()).group(1)
        assert link.startswith(daemon.web_url + "/setup?token=")
        with urllib.request.urlopen(link) as response:  # noqa: S310 - our own local server
            assert response.status == 200
            assert "Welcome to postroom" in response.read().decode()


def test_run_demo_seeds_an_account_and_sends_sample_mail_over_smtp(db_url, tmp_path):
    with Daemon(tmp_path, db_url, command="run --demo") as daemon:
        assert "demo login: demo@postroom.example / " in daemon.wait_for_log("demo login")
        entries = daemon.wait_for_entries(4)
        assert len(entries) == 4
        filed = [e for e in entries if e["project_id"]]
        assert len(filed) == 3
        assert any(e["attachments"] == ["gallery-1.png"] for e in entries)
        assert any(e["route_reason"].startswith("thread:") for e in entries)
