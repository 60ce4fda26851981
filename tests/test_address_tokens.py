"""Replacing the inbox address and a project's reply address (issue 17, acceptance 9): the old
address takes mail during its grace period and gets 550 after it, the new one works at once;
the command line prints the new address, the owner's and admins' buttons work and nobody else
sees them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import socket
from zoneinfo import ZoneInfo

import pytest

from domain.address_tokens import replace_inbox_address, replace_reply_address
from domain.projects import create_project
from postroom.config import IngestSettings
from smtpd_ingest import handler as handler_module
from smtpd_ingest.handler import IngestHandler
from storage.accounts import create_account, inbox_local_part
from storage.db import open_database
from storage.models import Account, Activity, Project, utcnow
from tests.daemon import DOMAIN
from tests.mail import message
from tests.test_smtp_session import read_reply
from tests.web import post

REPLACED = b"550 5.1.6 This address has been replaced by a new one and takes no more mail"
GRACE = dt.timedelta(days=14)


def rcpt_replies(daemon, protocol: str, recipients: list[str]) -> list[bytes]:
    """The daemon's RCPT replies (first lines) to these recipients, over SMTP or LMTP."""
    port = daemon.lmtp_port if protocol == "lmtp" else daemon.smtp_port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        assert read_reply(reader)[0].startswith(b"220")
        sock.sendall(b"LHLO mta.test\r\n" if protocol == "lmtp" else b"EHLO mta.test\r\n")
        read_reply(reader)
        sock.sendall(b"MAIL FROM:<customer@customer.test>\r\n")
        assert read_reply(reader)[0].startswith(b"250")
        replies = []
        for rcpt in recipients:
            sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            replies.append(read_reply(reader)[0])
        sock.sendall(b"QUIT\r\n")
        return replies


def grace_ends_now(daemon, model, column: str, row_id: int) -> None:
    """Move the end of a replaced token's grace period into the past (no waiting)."""
    db = open_database(daemon.db_url)
    try:
        past = utcnow() - dt.timedelta(minutes=1)
        model.update({column: past}).where(model.id == row_id).execute()
    finally:
        db.close()


def until_of(printed: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(printed["old_works_until"].removesuffix("Z"))


# --- over the daemon's sockets ------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_a_replaced_inbox_address_takes_mail_in_its_grace_period_and_gets_550_after(
    daemon, protocol
):
    old = daemon.inbox
    before = utcnow()
    printed = daemon.cli_json("account", "rotate-token", str(daemon.account["id"]))
    new = printed["address"]
    assert printed["old_address"] == old and new != old
    assert new.startswith(f"inbox+{daemon.account['id']}.") and new.endswith(f"@{DOMAIN}")
    assert printed["grace_days"] == 14
    assert before + GRACE - dt.timedelta(seconds=1) <= until_of(printed) <= utcnow() + GRACE

    # both work during the grace period, and mail to either is filed for the account
    assert rcpt_replies(daemon, protocol, [old, new]) == [b"250 2.1.5 Recipient ok"] * 2
    daemon.send(message("To the old address"), to=[old])
    daemon.send(message("To the new address"), to=[new])
    filed = daemon.wait_for_entries(2)
    assert sorted(e["subject"] for e in filed) == ["To the new address", "To the old address"]
    assert daemon.wait_for_log("is a replaced address, accepted within its grace period")

    grace_ends_now(daemon, Account, "previous_inbox_token_until", daemon.account["id"])
    # at once, although the daemon read the tokens a moment ago: no cache keeps the old one
    assert rcpt_replies(daemon, protocol, [old, new]) == [REPLACED, b"250 2.1.5 Recipient ok"]
    assert rcpt_replies(daemon, protocol, [old.replace(".", ".x", 1)]) == [
        b"550 5.1.1 No such inbox here"
    ]


def test_a_replaced_reply_address_takes_mail_in_its_grace_period_and_gets_550_after(daemon):
    project = daemon.create_project(daemon.account["id"], "Bakery", "anna@bakery.test")
    old = project["reply_address"]
    printed = daemon.cli_json(
        "account", "rotate-token", str(daemon.account["id"]), "--project", str(project["id"])
    )
    new = printed["address"]
    assert printed["old_address"] == old and printed["project_id"] == project["id"]
    assert new != old and new.split(".")[:2] == old.split(".")[:2]  # the inbox part stays
    assert rcpt_replies(daemon, "smtp", [old, new]) == [b"250 2.1.5 Recipient ok"] * 2
    daemon.send(message("Reply to the old one", sender="colleague@else.test"), to=[old])
    daemon.send(message("Reply to the new one", sender="colleague@else.test"), to=[new])
    filed = daemon.wait_for_entries(2)
    assert {e["project_id"] for e in filed} == {project["id"]}

    grace_ends_now(daemon, Project, "previous_reply_token_until", project["id"])
    assert rcpt_replies(daemon, "lmtp", [old, new, daemon.inbox]) == [
        REPLACED,
        b"250 2.1.5 Recipient ok",
        b"250 2.1.5 Recipient ok",
    ]


def test_after_the_inbox_address_is_replaced_old_reply_addresses_follow_its_grace(daemon):
    """A reply address holds the inbox token: mail sent before names the old one."""
    project = daemon.create_project(daemon.account["id"], "Bakery")
    old_reply = project["reply_address"]
    daemon.cli_json("account", "rotate-token", str(daemon.account["id"]))
    assert rcpt_replies(daemon, "smtp", [old_reply]) == [b"250 2.1.5 Recipient ok"]
    grace_ends_now(daemon, Account, "previous_inbox_token_until", daemon.account["id"])
    assert rcpt_replies(daemon, "smtp", [old_reply]) == [REPLACED]


# --- the recipient check's cache, in process -----------------------------------------------------
def test_the_rcpt_cache_never_refuses_a_new_token_nor_keeps_an_ended_one(storage_db, monkeypatch):
    """With tokens cached for an hour, what the database says still decides at once."""
    monkeypatch.setattr(handler_module, "TOKEN_CACHE_SECONDS", 3600.0)
    settings = dataclasses.replace(IngestSettings(), domains=(DOMAIN,))
    handler = IngestHandler(settings, writer=None, on_recorded=lambda ids: None)
    account = create_account("Agency")
    project = create_project(account.id, "Bakery")

    def check(account_row, project_row=None):
        local = inbox_local_part(account_row)
        if project_row is not None:
            local += f".{project_row.id}-{project_row.reply_token}"
        return handler.check_recipient(f"{local}@{DOMAIN}")

    first = Account.get_by_id(account.id)
    assert check(first) == (account.id, None)  # read and cached
    second = replace_inbox_address(account.id, 14)
    assert check(second) == (account.id, None)  # not refused from the cache
    assert check(first) == (account.id, None)  # in its grace period
    third = replace_inbox_address(account.id, 14)  # the first one is forgotten, at once
    assert check(first) == "550 5.1.1 No such inbox here"
    assert check(second) == (account.id, None) and check(third) == (account.id, None)
    Account.update(previous_inbox_token_until=utcnow() - dt.timedelta(seconds=1)).execute()
    assert check(second) == REPLACED.decode()

    old = Project.get_by_id(project.id)
    assert check(third, old) == (account.id, project.id)
    new = replace_reply_address(old, 3)
    assert check(third, new) == (account.id, project.id)
    assert check(third, old) == (account.id, project.id)
    Project.update(previous_reply_token_until=utcnow()).execute()
    assert check(third, old) == REPLACED.decode()
    assert check(third, new) == (account.id, project.id)


def test_a_grace_period_of_zero_days_ends_the_old_address_now(storage_db):
    account = create_account("Agency")
    settings = dataclasses.replace(IngestSettings(), domains=(DOMAIN,))
    handler = IngestHandler(settings, writer=None, on_recorded=lambda ids: None)
    old = f"{inbox_local_part(account)}@{DOMAIN}"
    replace_inbox_address(account.id, 0)
    assert handler.check_recipient(old) == REPLACED.decode()


# --- the command line ----------------------------------------------------------------------------
def test_the_command_prints_the_new_address_and_until_when_the_old_one_works(daemon):
    account_id = str(daemon.account["id"])
    before = utcnow().replace(second=0, microsecond=0)
    result = daemon.cli("account", "rotate-token", account_id, "--grace-days", "3")
    [new_line, old_line] = result.stdout.strip().splitlines()
    [listed] = daemon.cli_json("account", "list")
    assert new_line == f"new inbox address: {listed['inbox_address']}"
    printed = re.fullmatch(
        rf"the old address, {re.escape(daemon.inbox)}, keeps working until (.+) UTC", old_line
    )
    until = dt.datetime.strptime(printed.group(1), "%Y-%m-%d %H:%M")
    assert before + dt.timedelta(days=3) <= until <= utcnow() + dt.timedelta(days=3)

    project = daemon.create_project(daemon.account["id"], "Bakery")
    result = daemon.cli("account", "rotate-token", account_id, "--project", str(project["id"]))
    assert result.stdout.startswith(f"new reply address of project {project['id']}: inbox+")

    for args, words in (
        (["999"], "no account 999"),
        ([account_id, "--project", "999"], f"no project 999 in account {account_id}"),
    ):
        refused = daemon.cli("account", "rotate-token", *args, check=False)
        assert refused.returncode == 1 and words in refused.stderr, refused.stderr
    too_long = daemon.cli("account", "rotate-token", account_id, "--grace-days", "400", check=False)
    assert too_long.returncode == 2 and "Traceback" not in too_long.stderr


# --- the admin UI --------------------------------------------------------------------------------
def _settings_page(web, role: str):
    return web.client(role).get("/settings")


def test_an_owner_replaces_the_inbox_address_under_settings(web):
    """Times shown in the account's zone, the zone named."""
    Account.update(time_zone="Europe/Berlin").where(Account.id == web.account.id).execute()
    old_address = f"{inbox_local_part(web.account)}@in.example"
    client = web.client("owner")
    page = client.get("/settings").get_data(as_text=True)
    assert old_address in page and "Replace inbox address" in page
    assert "keeps taking mail for 14 days, until about" in page
    assert client.post("/settings/inbox-address/replace").status_code == 400  # no CSRF token
    assert Account.get_by_id(web.account.id).inbox_token == web.account.inbox_token

    before = utcnow()
    response = post(client, "/settings/inbox-address/replace", token_from="/settings")
    assert response.status_code == 302
    account = Account.get_by_id(web.account.id)
    assert account.inbox_token != web.account.inbox_token
    assert account.previous_inbox_token == web.account.inbox_token
    until = account.previous_inbox_token_until
    assert before + GRACE - dt.timedelta(seconds=1) <= until <= utcnow() + GRACE

    shown = client.get(response.location).get_data(as_text=True)
    assert f"{inbox_local_part(account)}@in.example" in shown and old_address not in shown
    assert "The inbox address was replaced" in shown
    local = until.replace(tzinfo=dt.UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert re.search(
        rf'until <time datetime="{until.isoformat(timespec="seconds")}Z" title="[^"]*">'
        rf"{local:%Y-%m-%d %H:%M}</time> \(Europe/Berlin\)",
        shown,
    )
    [row] = Activity.select().where(Activity.action == "inbox_address_replaced")
    assert row.user_id == web.users["owner"].id and row.entry_id is None
    assert "keeps working until" in row.detail
    assert account.previous_inbox_token not in row.detail and account.inbox_token not in row.detail


def test_only_owners_see_and_use_the_inbox_address_button(web):
    admin = _settings_page(web, "admin").get_data(as_text=True)
    assert f"{inbox_local_part(web.account)}@in.example" in admin
    assert "Replace inbox address" not in admin and "inbox-address/replace" not in admin
    for role in ("member", "read-only"):
        assert _settings_page(web, role).status_code == 403  # Settings is not theirs at all
    for role in ("admin", "member", "read-only"):
        client = web.client(role)
        response = post(client, "/settings/inbox-address/replace", token_from="/profile")
        assert response.status_code == 403, role
    assert Account.get_by_id(web.account.id).inbox_token == web.account.inbox_token


def test_owners_and_admins_replace_a_projects_reply_address(web, bakery):
    edit = f"/projects/{bakery.id}/edit"
    old_token = bakery.reply_token
    for role in ("owner", "admin"):
        page = web.client(role).get(edit).get_data(as_text=True)
        assert f".{bakery.id}-{old_token}@in.example" in page
        assert "Replace reply address" in page, role
    member = web.client("member").get(edit).get_data(as_text=True)
    assert f".{bakery.id}-{old_token}@in.example" in member
    assert "Replace reply address" not in member and "reply-address/replace" not in member
    assert web.client("read-only").get(edit).status_code == 403
    replace = f"/projects/{bakery.id}/reply-address/replace"
    for role in ("member", "read-only"):
        assert post(web.client(role), replace, token_from="/profile").status_code == 403
    assert Project.get_by_id(bakery.id).reply_token == old_token

    admin = web.client("admin")
    response = post(admin, replace, token_from=edit)
    assert response.status_code == 302 and response.location.endswith("#reply-address")
    project = Project.get_by_id(bakery.id)
    assert project.reply_token != old_token and project.previous_reply_token == old_token
    shown = admin.get(response.location).get_data(as_text=True)
    assert "The reply address was replaced" in shown
    assert f".{bakery.id}-{project.reply_token}@in.example" in shown
    [row] = Activity.select().where(Activity.action == "reply_address_replaced")
    assert row.project_id == bakery.id and row.user_id == web.users["admin"].id
    assert re.fullmatch(
        r"The reply address of Bakery Miller was replaced; the old address keeps working"
        r" until \d{4}-\d\d-\d\d \d\d:\d\d UTC\.",
        row.detail,
    )
    assert post(admin, f"/projects/{2**40}/reply-address/replace", token_from=edit).status_code == (
        404
    )


def test_in_a_browser_the_owner_confirms_the_grace_period_and_replaces_the_address(
    web, page, network_log
):
    from tests.browser import screenshot
    from tests.test_ui_entries import serving
    from tests.web import PASSWORD

    with serving(web.app) as base:
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.goto(f"{base}/login")
        page.fill("input[name=email]", "owner@agency.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/settings")
        old = f"{inbox_local_part(web.account)}@in.example"
        assert page.locator("code.inbox-address").inner_text() == old
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        button = page.get_by_role("button", name="Replace inbox address")
        button.click()  # the fixture dismisses the confirmation: nothing changes
        [asked] = network_log.dialogs
        assert asked.type == "confirm"
        assert "keeps taking mail for 14 days, until about" in asked.message
        assert Account.get_by_id(web.account.id).inbox_token == web.account.inbox_token

        page.evaluate("window.confirm = () => true")  # the owner says yes
        with page.expect_navigation():
            button.click()
        page.get_by_text("The inbox address was replaced").wait_for()
        account = Account.get_by_id(web.account.id)
        assert page.locator("code.inbox-address").inner_text() == (
            f"{inbox_local_part(account)}@in.example"
        )
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        screenshot(page, "inbox-address-replaced")
    network_log.assert_only_local()
