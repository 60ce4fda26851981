"""A working day in Chromium against a real `postroom run`, mail delivered over SMTP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import require_chromium, screenshot
from tests.daemon import Daemon
from tests.mail import message

PASSWORD = "correct horse battery"


@pytest.fixture
def running(db_url, tmp_path):
    require_chromium()
    with Daemon(tmp_path, db_url, command="run") as daemon:
        daemon.create_user("member@agency.test", "member", PASSWORD)
        yield daemon


def open_count(page) -> int:
    return int(page.locator("#open-count").inner_text())


def test_assign_with_remember_then_the_next_mail_files_itself_and_done_drops_the_count(
    running, page, network_log
):
    daemon = running
    project = daemon.create_project(daemon.account["id"], "Bakery Miller", domain="bakery.test")
    daemon.send(message("New opening hours", sender="Anna Miller <anna@bakery.test>"))
    [first] = daemon.wait_for_entries(1)
    assert first["project_id"] is None

    page.goto(daemon.web_url + "/login")
    page.fill("input[name=email]", "member@agency.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(daemon.web_url + "/")
    assert open_count(page) == 0
    screenshot(page, "tickets-empty")

    page.click("nav >> text=Unassigned")
    card = page.locator(f"#entry-{first['id']}")
    assert "New opening hours" in card.inner_text()
    assert "anna@bakery.test" in card.inner_text()
    screenshot(page, "unassigned")
    card.locator("select[name=project_id]").select_option(str(project["id"]))
    card.locator("button[name=remember][value='1']").click()
    page.wait_for_load_state("load")
    assert page.locator(f"#entry-{first['id']}").count() == 0

    daemon.send(message("Please also change the phone number", sender="anna@bakery.test"))
    entries = daemon.wait_for_entries(2)
    second = next(e for e in entries if e["id"] != first["id"])
    assert second["project_id"] == project["id"]
    assert second["route"]["rule"] == "sender"

    page.goto(daemon.web_url + "/")
    assert open_count(page) == 2
    screenshot(page, "tickets")
    page.goto(f"{daemon.web_url}/projects/{project['id']}/protocol")
    row = page.locator(f"#entry-{second['id']}")
    assert "Please also change the phone number" in row.inner_text()
    assert "open" in (row.get_attribute("class") or "")
    screenshot(page, "protocol")
    row.locator("input[name=done]").check()
    expect(page.locator("#open-count")).to_have_text("1")  # updated in place by app.js
    page.reload()
    assert open_count(page) == 1
    assert "done" in (page.locator(f"#entry-{second['id']}").get_attribute("class") or "")

    page.goto(f"{daemon.web_url}/entries/{second['id']}")
    assert page.locator("text=Please also change the phone number").count() >= 1
    screenshot(page, "entry-detail")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{daemon.web_url}/projects/{project['id']}/protocol")
    assert page.locator(f"#entry-{second['id']}").is_visible()
    screenshot(page, "protocol-phone")
    network_log.assert_no_dialogs()
    network_log.assert_only_local()
