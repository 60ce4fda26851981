"""The password rule: at least 10 characters and not on the shipped list of common passwords,
wherever a password is set (setup: tests/test_first_run.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from domain.errors import DomainError
from domain.users import common_passwords, create_user, password_problem, set_password
from postroom.auth import check_login
from tests.daemon import Daemon
from tests.web import PASSWORD, post


def test_the_rule_refuses_short_and_common_passwords_whatever_their_case():
    assert "at least 10 characters" in password_problem("123456789")
    assert "common passwords" in password_problem("password12")
    assert "common passwords" in password_problem(" PASSWORD12 ")
    assert "common passwords" in password_problem("1234567890")
    assert password_problem("plum cake at nine") is None
    assert password_problem(PASSWORD) is None  # the tests' own password is fine
    assert len(common_passwords()) > 19_000


def test_creating_a_user_or_setting_a_password_follows_the_rule(storage_db, web):
    with pytest.raises(DomainError, match="common passwords"):
        create_user(web.account.id, "new@agency.test", "member", "Password12")
    with pytest.raises(DomainError, match="at least 10 characters"):
        create_user(web.account.id, "new@agency.test", "member", "123456789")
    member = web.users["member"]
    with pytest.raises(DomainError, match="common passwords"):
        set_password(member, "password12")
    assert check_login("member@agency.test", PASSWORD) is not None  # unchanged
    set_password(member, "plum cake at nine")
    assert check_login("member@agency.test", "plum cake at nine") is not None


def test_the_team_page_says_why_a_password_is_refused(web):
    client = web.client("admin")
    form = {"email": "new@agency.test", "name": "New", "role": "member", "password": "password12"}
    response = post(client, "/team/members", form, token_from="/team")
    assert response.status_code == 400
    assert "common passwords" in response.get_data(as_text=True)
    response = post(
        client, "/team/members", {**form, "password": "plum cake at nine"}, token_from="/team"
    )
    assert response.status_code == 302


def test_the_cli_refuses_a_common_password_with_the_reason(db_url, tmp_path):
    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    daemon.account = daemon.create_account()
    for args in (
        ["user", "create", "x@agency.test", "--account", str(daemon.account["id"])],
        ["user", "set-password", "x@agency.test"],
    ):
        if args[1] == "set-password":
            daemon.create_user("x@agency.test")
        result = subprocess.run(
            [sys.executable, "-m", "postroom", "-c", str(daemon.config), *args, "--password-stdin"],
            input="password12\n",
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1, args
        assert "common passwords" in result.stderr and "Traceback" not in result.stderr
