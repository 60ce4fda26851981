"""Time zones (issue 17, acceptance 6): the account's zone (asked at setup, set by owners in
Settings) and a user's override (the profile) decide how every date is shown, what a date
filter and after:/before: mean (local days, DST days 23 or 25 hours long) and how a typed call
time is read. Stored dates stay naive UTC; the API's JSON keeps UTC with Z.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.errors import Invalid
from domain.time_zones import (
    UNKNOWN_ZONE,
    check_time_zone,
    set_account_time_zone,
)
from domain.tokens import create_api_token, setup_token
from domain.users import create_user
from postroom.config import load_settings
from storage.accounts import create_account
from storage.db import _runner, native_sql, open_database
from storage.models import Account, Entry, User
from storage.search import local_day_start, search
from tests.web import PASSWORD, csrf_token, post

BERLIN_LATE = dt.datetime(2026, 12, 4, 23, 30)  # 2026-12-05 00:30 in Berlin (CET, UTC+1)


def _call(project, user, when: dt.datetime, text: str = "Anna called about the logo") -> Entry:
    return domain_entries.add_manual_entry(project, user, kind="call", text=text, occurred_at=when)


def _listed(page: str, entry: Entry) -> bool:
    return f'id="entry-{entry.id}"' in page


# --- storage: local days, on both backends -----------------------------------------------
def test_after_and_before_mean_local_days_of_the_zone_given(storage_db):
    from zoneinfo import ZoneInfo

    account = create_account("Agency")
    user = create_user(account.id, "owner@agency.test", "owner", PASSWORD)
    project = domain_projects.create_project(account.id, "Bakery")
    late = _call(project, user, BERLIN_LATE)
    berlin = ZoneInfo("Europe/Berlin")

    def found(query: str, zone=berlin) -> bool:
        return late.id in {e.id for e in search(account.id, query, zone=zone).entries}

    assert found("after:2026-12-05 before:2026-12-06")  # the day 2026-12-05, local
    assert not found("after:2026-12-04 before:2026-12-05")  # the day before
    assert found("after:2026-12-04")  # from that day's start on: the 5th too
    assert not found("before:2026-12-05")  # the day itself is left out
    # in UTC the same entry is on the 4th
    assert found("after:2026-12-04 before:2026-12-05", dt.UTC)
    assert not found("after:2026-12-05", dt.UTC)


def test_a_dst_day_is_its_own_local_midnight_to_the_next(storage_db):
    """Berlin: 2026-03-29 has 23 hours (clocks jump 02:00 → 03:00), 2026-10-25 has 25 (03:00 →
    02:00). Each end is converted on its own, so no hour is lost or counted twice."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    account = create_account("Agency")
    user = create_user(account.id, "owner@agency.test", "owner", PASSWORD)
    project = domain_projects.create_project(account.id, "Bakery")
    moments = {
        # UTC moment: local day it belongs to
        dt.datetime(2026, 3, 28, 22, 59): "2026-03-28",  # 23:59 CET
        dt.datetime(2026, 3, 28, 23, 0): "2026-03-29",  # 00:00 CET
        dt.datetime(2026, 3, 29, 21, 59): "2026-03-29",  # 23:59 CEST
        dt.datetime(2026, 3, 29, 22, 0): "2026-03-30",  # 00:00 CEST
        dt.datetime(2026, 10, 24, 21, 59): "2026-10-24",  # 23:59 CEST
        dt.datetime(2026, 10, 24, 22, 0): "2026-10-25",  # 00:00 CEST
        dt.datetime(2026, 10, 25, 0, 30): "2026-10-25",  # 02:30 CEST, the first of two
        dt.datetime(2026, 10, 25, 1, 30): "2026-10-25",  # 02:30 CET, the second
        dt.datetime(2026, 10, 25, 22, 59): "2026-10-25",  # 23:59 CET
        dt.datetime(2026, 10, 25, 23, 0): "2026-10-26",  # 00:00 CET
    }
    ids = {
        _call(project, user, when, f"call {n}").id: day
        for n, (when, day) in enumerate(moments.items())
    }
    for day in ("2026-03-29", "2026-10-25"):
        following = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        page = search(account.id, f"after:{day} before:{following}", zone=berlin, limit=50)
        assert {e.id for e in page.entries} == {i for i, d in ids.items() if d == day}, day
    assert local_day_start(dt.date(2026, 3, 29), berlin) == dt.datetime(2026, 3, 28, 23, 0)
    assert local_day_start(dt.date(2026, 3, 30), berlin) == dt.datetime(2026, 3, 29, 22, 0)
    assert local_day_start(dt.date(2026, 10, 26), berlin) == dt.datetime(2026, 10, 25, 23, 0)
    # a zone whose clocks skip midnight itself (Santiago, 2026-09-06 00:00 → 01:00): the day
    # starts at the change
    santiago = ZoneInfo("America/Santiago")
    assert local_day_start(dt.date(2026, 9, 6), santiago) == dt.datetime(2026, 9, 6, 4, 0)
    # the ends of the calendar do not overflow
    tokyo, new_york = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")
    assert local_day_start(dt.date.min, tokyo) == dt.datetime.min
    assert local_day_start(dt.date.max, new_york) == dt.datetime(9999, 12, 31, 5, 0)


def test_zone_names_are_checked_and_spelt_properly():
    assert check_time_zone(" europe/berlin ") == "Europe/Berlin"
    assert check_time_zone("UTC") == "UTC"
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "Europe/" + "x" * 500, "UTC\x00"):
        with pytest.raises(Invalid, match="Choose a time zone"):
            check_time_zone(bad)


# --- what the user sees and filters (Flask test client) ----------------------------------
def test_berlin_account_finds_the_late_call_on_its_local_day_and_shows_00_30(web, bakery):
    set_account_time_zone(web.account.id, "Europe/Berlin")
    late = _call(bakery, web.users["member"], BERLIN_LATE)
    client = web.client("member")
    protocol = f"/projects/{bakery.id}/protocol"

    def listed(**query) -> bool:
        page = client.get(protocol, query_string=query).get_data(as_text=True)
        return _listed(page, late)

    assert listed(from_date="2026-12-05", to_date="2026-12-05")
    assert not listed(from_date="2026-12-04", to_date="2026-12-04")
    assert listed(to_date="2026-12-05") and not listed(to_date="2026-12-04")
    assert listed(q="after:2026-12-04")
    assert not listed(q="before:2026-12-05")
    assert listed(q="before:2026-12-06")

    page = client.get(protocol).get_data(as_text=True)
    row = re.search(rf'id="entry-{late.id}".*?</time>', page, re.S).group(0)
    assert 'datetime="2026-12-04T23:30:00Z"' in row  # the instant, for machines
    assert ">2026-12-05 00:30</time>" in row
    assert "Europe/Berlin (UTC+01:00)" in row  # the title names the zone
    entry_page = client.get(f"/entries/{late.id}").get_data(as_text=True)
    assert ">2026-12-05 00:30</time>" in entry_page
    tickets = client.get("/").get_data(as_text=True)
    assert ">2026-12-05 00:30</time>" in tickets


def test_a_users_own_zone_changes_what_they_see_and_filter(web, bakery):
    set_account_time_zone(web.account.id, "Europe/Berlin")
    late = _call(bakery, web.users["owner"], BERLIN_LATE)
    member = web.client("member")
    response = post(
        member, "/profile/time-zone", {"time_zone": "America/New_York"}, token_from="/profile"
    )
    assert response.status_code == 302
    assert User.get_by_id(web.users["member"].id).time_zone == "America/New_York"
    protocol = f"/projects/{bakery.id}/protocol"
    page = member.get(protocol).get_data(as_text=True)
    assert ">2026-12-04 18:30</time>" in page  # New York, UTC-5
    days = {"from_date": "2026-12-04", "to_date": "2026-12-04"}
    assert _listed(member.get(protocol, query_string=days).get_data(as_text=True), late)
    assert not _listed(
        member.get(protocol, query_string={"q": "after:2026-12-05"}).get_data(as_text=True), late
    )
    # the others still see the account's zone
    owner_page = web.client("owner").get(protocol).get_data(as_text=True)
    assert ">2026-12-05 00:30</time>" in owner_page
    # empty: the account's zone again; the read-only member may choose one too
    post(member, "/profile/time-zone", {"time_zone": ""}, token_from="/profile")
    assert User.get_by_id(web.users["member"].id).time_zone is None
    assert ">2026-12-05 00:30</time>" in member.get(protocol).get_data(as_text=True)
    reader = web.client("read-only")
    response = post(
        reader, "/profile/time-zone", {"time_zone": "Asia/Tokyo"}, token_from="/profile"
    )
    assert response.status_code == 302
    assert ">2026-12-05 08:30</time>" in reader.get(protocol).get_data(as_text=True)


def test_a_call_typed_at_a_local_time_is_stored_in_utc(web, bakery):
    set_account_time_zone(web.account.id, "Europe/Berlin")
    client = web.client("member")
    path = f"/projects/{bakery.id}/entries/new"
    assert "your time: Europe/Berlin" in client.get(path).get_data(as_text=True)
    form = {
        "kind": "call",
        "text": "Anna called at half past midnight",
        "occurred_at": "2026-12-05T00:30",
    }
    assert post(client, path, form, token_from=path).status_code == 302
    assert Entry.get(Entry.kind == "call").occurred_at == BERLIN_LATE


def test_the_api_searches_the_token_users_local_days_and_answers_in_utc(web, bakery):
    set_account_time_zone(web.account.id, "Europe/Berlin")
    late = _call(bakery, web.users["member"], BERLIN_LATE)
    token = create_api_token(web.users["member"])
    client = web.app.test_client()

    def ids(q: str) -> set[int]:
        response = client.get(
            "/api/v1/entries", query_string={"q": q}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return {entry["id"] for entry in response.get_json()["entries"]}

    assert late.id in ids("after:2026-12-05")
    assert late.id not in ids("before:2026-12-05")
    response = client.get(
        f"/api/v1/entries/{late.id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.get_json()["occurred_at"] == "2026-12-04T23:30:00Z"


def test_the_spam_purge_date_is_the_viewers_local_day():
    from zoneinfo import ZoneInfo

    from admin_ui.views.spam import purge_date

    entry = Entry(received_at=dt.datetime(2026, 11, 4, 23, 30))
    assert purge_date(entry, None, 30) == dt.date(2026, 12, 4)
    assert purge_date(entry, None, 30, ZoneInfo("Europe/Berlin")) == dt.date(2026, 12, 5)


# --- in Chromium: what the user sees ------------------------------------------------------
def test_in_a_browser_the_date_filter_finds_the_call_on_its_berlin_day(
    web, bakery, browser, network_log
):
    """The browser runs in Los Angeles: what counts is the account's zone, not the browser's."""
    from tests.browser import new_context, screenshot
    from tests.test_ui_entries import serving

    set_account_time_zone(web.account.id, "Europe/Berlin")
    late = _call(bakery, web.users["member"], BERLIN_LATE, "Anna called at half past midnight")
    context = new_context(browser, network_log, timezone_id="America/Los_Angeles")
    page = context.new_page()
    try:
        with serving(web.app) as base:
            page.goto(f"{base}/login")
            page.fill("input[name=email]", "member@agency.test")
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto(f"{base}/projects/{bakery.id}/protocol")
            row = page.locator(f"#entry-{late.id} time")
            assert row.inner_text() == "2026-12-05 00:30"
            for day, found in (("2026-12-04", 0), ("2026-12-05", 1)):
                page.fill("#from-date", day)
                page.fill("#to-date", day)
                with page.expect_navigation():
                    page.click("form[role=search] button[type=submit]")
                assert page.locator(f"#entry-{late.id}").count() == found, day
            assert page.locator(f"#entry-{late.id} time").inner_text() == "2026-12-05 00:30"
            screenshot(page, "protocol-berlin-day")
            page.fill("#from-date", "")
            page.fill("#to-date", "")
            page.fill("input[name=q]", "before:2026-12-05")
            with page.expect_navigation():
                page.press("input[name=q]", "Enter")
            assert page.locator(f"#entry-{late.id}").count() == 0
            page.fill("input[name=q]", "after:2026-12-04")
            with page.expect_navigation():
                page.press("input[name=q]", "Enter")
            assert page.locator(f"#entry-{late.id} time").inner_text() == "2026-12-05 00:30"
        network_log.assert_only_local()
        network_log.assert_no_console_errors()
    finally:
        context.close()


def test_in_a_browser_setup_proposes_the_browsers_zone(storage_db, tmp_path, browser, network_log):
    from admin_ui import create_app
    from tests.browser import new_context
    from tests.test_ui_entries import serving

    config = tmp_path / "postroom.toml"
    config.write_text("")
    app = create_app(load_settings(config), testing=True)
    context = new_context(browser, network_log, timezone_id="Europe/Berlin")
    page = context.new_page()
    try:
        with serving(app) as base:
            page.goto(f"{base}/setup?token={setup_token()}")
            assert page.input_value("input[name=time_zone]") == "Europe/Berlin"
            page.fill("input[name=agency]", "Pixel")
            page.fill("input[name=email]", "owner@pixel.test")
            page.fill("input[name=password]", "long enough password")
            with page.expect_navigation():
                page.click("button[type=submit]")
        assert Account.get().time_zone == "Europe/Berlin"
        network_log.assert_no_console_errors()
    finally:
        context.close()


def test_no_template_formats_a_stored_time_itself():
    """Every stored moment goes through the filters of admin_ui.local_time (time_tag, when,
    local_date), so no page shows UTC by mistake."""
    from pathlib import Path

    templates = Path(__file__).parent.parent / "admin_ui" / "templates"
    for template in sorted(templates.glob("*.html")):
        text = template.read_text()
        for needle in (".strftime(", ".isoformat(timespec"):
            assert needle not in text, f"{template.name} formats a time with {needle}"


# --- choosing the zone: setup, settings, profile ------------------------------------------
def test_setup_asks_for_the_zone_utc_without_script_and_refuses_an_unknown_one(
    storage_db, tmp_path
):
    from admin_ui import create_app

    config = tmp_path / "postroom.toml"
    config.write_text("")
    client = create_app(load_settings(config), testing=True).test_client()
    token = setup_token()
    page = f"/setup?token={token}"
    form = client.get(page).get_data(as_text=True)
    field = re.search(r"<input name=\"time_zone\"[^>]*>", form).group(0)
    assert 'value="UTC"' in field and "data-browser-time-zone" in field
    assert '<option value="Europe/Berlin">' in form
    owner = {"agency": "Pixel", "email": "owner@pixel.test", "password": "long enough password"}
    refused = client.post(
        page, data={**owner, "time_zone": "Mars/Olympus", "csrf_token": csrf_token(client, page)}
    )
    assert refused.status_code == 200 and UNKNOWN_ZONE in refused.get_data(as_text=True)
    assert 'value="Mars/Olympus"' in refused.get_data(as_text=True)
    assert User.select().count() == 0 and setup_token() == token  # the token is kept
    done = client.post(
        page, data={**owner, "time_zone": "Europe/Berlin", "csrf_token": csrf_token(client, page)}
    )
    assert done.status_code == 302
    assert Account.get().time_zone == "Europe/Berlin"


def test_owners_set_the_accounts_zone_in_settings_others_cannot(web):
    owner = web.client("owner")
    refused = post(
        owner, "/settings/time-zone", {"time_zone": "Europe/Atlantis"}, token_from="/settings"
    )
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert UNKNOWN_ZONE in text and 'value="Europe/Atlantis"' in text
    assert Account.get_by_id(web.account.id).time_zone == "UTC"
    saved = post(
        owner, "/settings/time-zone", {"time_zone": "Europe/Berlin"}, token_from="/settings"
    )
    assert saved.status_code == 302
    assert Account.get_by_id(web.account.id).time_zone == "Europe/Berlin"
    admin = web.client("admin")
    settings_page = admin.get("/settings").get_data(as_text=True)
    assert "The agency's time zone is <strong>Europe/Berlin</strong>" in settings_page
    assert 'action="/settings/time-zone"' not in settings_page
    assert (
        post(admin, "/settings/time-zone", {"time_zone": "UTC"}, token_from="/settings").status_code
        == 403
    )
    assert Account.get_by_id(web.account.id).time_zone == "Europe/Berlin"


def test_an_unknown_zone_in_the_profile_is_refused_beside_the_field(web):
    member = web.client("member")
    response = post(member, "/profile/time-zone", {"time_zone": "Moon/Base"}, token_from="/profile")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert UNKNOWN_ZONE in text and 'aria-invalid="true"' in text
    assert User.get_by_id(web.users["member"].id).time_zone is None


# --- the migration -------------------------------------------------------------------------
def test_migration_0015_gives_existing_accounts_utc_and_users_no_override(db_url):
    db = open_database(db_url)
    runner = _runner(db)
    runner.up("0014_parse_warnings")
    when = dt.datetime(2026, 1, 5, 9, 30)
    db.execute_sql(
        native_sql(
            "INSERT INTO account (name, inbox_token, created_at, signature) VALUES (?, ?, ?, ?)"
        ),
        ["Old agency", "tok", when, ""],
    )
    assert runner.up("0015_time_zones") == ["0015_time_zones"]
    assert db.execute_sql("SELECT time_zone FROM account").fetchall() == [("UTC",)]
    assert "time_zone" in {c.name for c in db.get_columns("user")}
    runner.up("0015_time_zones")  # nothing left to do
    db.close()


# --- the command line ----------------------------------------------------------------------
def test_account_create_takes_a_time_zone_and_refuses_an_unknown_one(db_url, tmp_path):
    import json
    import subprocess
    import sys

    from tests.daemon import REPO_ROOT

    config = tmp_path / "postroom.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\nurl = "{db_url}"\n'
        '[ingest]\ndomains = ["in.example"]\n'
    )

    def postroom(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "postroom", "-c", str(config), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)

    assert postroom("migrate").returncode == 0
    refused = postroom("account", "create", "Agency", "--time-zone", "Mars/Olympus")
    assert refused.returncode == 1 and UNKNOWN_ZONE in refused.stderr
    created = postroom("account", "create", "Agency", "--time-zone", "europe/berlin", "--json")
    assert created.returncode == 0, created.stderr
    berlin = json.loads(created.stdout)["id"]
    plain = json.loads(postroom("account", "create", "Other", "--json").stdout)["id"]
    db = open_database(db_url)
    zones = dict(db.execute_sql("SELECT id, time_zone FROM account").fetchall())
    db.close()
    assert zones == {berlin: "Europe/Berlin", plain: "UTC"}


def test_mail_dated_at_the_calendars_end_does_not_break_pages_in_a_zone_past_it(web):
    """Anyone can send a Date of 31 Dec 9999 23:59 (the API takes 0001-01-01T00:30Z): a viewer
    east (west) of UTC would see a year past the calendar. Pages still show, that time in UTC."""
    from tests.mail import message
    from tests.test_ui_unassigned import receive

    def dated(subject: str, date: str) -> Entry:
        raw = message(subject, sender="x@far.test").replace(
            b"Date: Thu, 26 Nov 2026 10:00:00 +0100", f"Date: {date}".encode()
        )
        return receive(web.account.id, raw)

    late = dated("From the end of time", "Fri, 31 Dec 9999 23:59:00 +0000")
    assert Entry.get_by_id(late.id).occurred_at == dt.datetime(9999, 12, 31, 23, 59)
    # a call the API was given at 0001-01-01T00:30:00Z
    project = domain_projects.create_project(web.account.id, "Bakery Miller")
    early = _call(project, web.users["member"], dt.datetime(1, 1, 1, 0, 30))
    client = web.client("member")
    for zone, shown in (
        ("Europe/Berlin", "9999-12-31 23:59"),
        ("America/New_York", "-01 00:30"),  # strftime writes year 1 as "1" on glibc
    ):
        set_account_time_zone(web.account.id, zone)
        pages = [client.get("/unassigned"), client.get(f"/projects/{project.id}/protocol")]
        assert [page.status_code for page in pages] == [200, 200]
        assert any(f"{shown}</time>" in page.get_data(as_text=True) for page in pages)  # UTC
        assert client.get(f"/entries/{late.id}").status_code == 200
        assert client.get(f"/entries/{early.id}").status_code == 200
