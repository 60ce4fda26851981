"""A newcomer's first minutes: the setup link in the log, the one-time setup page, the demo."""

from __future__ import annotations

import re
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from domain.tokens import setup_token
from postroom.config import load_settings
from storage.models import Account, User
from tests.daemon import Daemon
from tests.http_client import HttpClient
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
        data={
            "agency": "Pixel & Paper",
            "email": "Owner@Pixel.test",
            "password": "long enough password",
            "csrf_token": csrf_token(client, page),
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    owner = User.get()
    assert (owner.email, owner.role) == ("owner@pixel.test", "owner")
    assert Account.get().name == "Pixel & Paper"
    # the token is spent: nobody else can claim the installation
    assert setup_token() is None
    assert app.test_client().get(page).status_code == 404


def test_six_parallel_setup_submissions_create_one_account(db_url, tmp_path):
    with Daemon(tmp_path, db_url, command="web") as server:
        link = re.search(r"postroom setup: (\S+)", server.wait_for_log("postroom setup:")).group(1)
        page = link.removeprefix(server.web_url)
        token = page.partition("token=")[2]
        browsers = [HttpClient(server.web_url) for _ in range(6)]
        csrf = [browser.csrf_token(page) for browser in browsers]
        start = threading.Barrier(len(browsers))

        def submit(n: int) -> int:
            form = {
                "agency": f"Agency {n}",
                "email": f"owner{n}@agency.test",
                "token": token,
                "password": "long enough password",
                "csrf_token": csrf[n],
            }
            start.wait()
            return browsers[n].request("POST", page, form).status

        with ThreadPoolExecutor(len(browsers)) as pool:
            answers = list(pool.map(submit, range(len(browsers))))
        assert answers.count(302) == 1, answers
        assert set(answers) <= {302, 404, 409}, answers  # the others: taken, or link gone
    from storage.db import open_database

    db = open_database(db_url)
    try:
        assert User.select().count() == 1
        winner = answers.index(302)
        assert User.get().email == f"owner{winner}@agency.test"
        assert Account.select().where(Account.name.startswith("Agency ")).count() == 1
    finally:
        db.close()


def test_setup_refuses_short_and_common_passwords_with_the_reason(storage_db, tmp_path):
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text("")
    client = create_app(load_settings(config), testing=True).test_client()
    page = f"/setup?token={setup_token()}"
    for password, reason in (
        ("password12", "on a list of common passwords"),
        ("PassWord12", "on a list of common passwords"),
        ("qwertyuiop", "on a list of common passwords"),
        ("nine char", "at least 10 characters"),
    ):
        response = client.post(
            page,
            data={
                "agency": "Pixel",
                "email": "owner@pixel.test",
                "password": password,
                "csrf_token": csrf_token(client, page),
            },
        )
        assert response.status_code == 200, password
        assert reason in response.get_data(as_text=True), password
        assert User.select().count() == 0 and setup_token() is not None
    response = client.post(
        page,
        data={
            "agency": "Pixel",
            "email": "owner@pixel.test",
            "password": "plum cake at nine",
            "csrf_token": csrf_token(client, page),
        },
    )
    assert response.status_code == 302
    assert User.get().email == "owner@pixel.test"


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
        assert any(e["route"]["rule"] == "thread" for e in entries)


def test_run_demo_prints_only_links_that_answer_and_a_login_that_works_each_run(db_url, tmp_path):
    """`postroom run --demo` (what `scripts/run --demo` runs): the demo owner exists before
    the web starts, so no setup link is printed that would answer 404; every printed URL
    answers 200; each run prints a login, a new password that works, the old one not."""
    passwords = []
    with Daemon(tmp_path, db_url, command="run --demo") as daemon:
        daemon.wait_for_entries(4)
        passwords.append(daemon.wait_for_log("demo login").rsplit("demo login: ", 1)[1].split()[2])
        daemon.stop()
        offset = len(daemon.log_text().encode())
        daemon.start()
        printed = daemon.wait_for_log("demo: log in at")[offset:]
        passwords.append(re.search(r"demo login: \S+ / (\S+)", printed).group(1))
        urls = re.findall(r"https?://\S+", daemon.log_text())
        assert "postroom setup:" not in daemon.log_text()
        assert urls and all(url.startswith(daemon.web_url) for url in urls)
        for url in urls:
            with urllib.request.urlopen(url) as response:  # noqa: S310 - our own local server
                assert response.status == 200, url
        assert passwords[0] != passwords[1]
        old = HttpClient(daemon.web_url).login("demo@postroom.example", passwords[0])
        assert old.status == 401
        new = HttpClient(daemon.web_url).login("demo@postroom.example", passwords[1])
        assert new.status == 302
        assert len(daemon.wait_for_entries(4)) == 4  # the second run sent no sample mail again
