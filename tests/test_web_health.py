"""Operators' endpoints: /healthz says whether the database is usable, /metrics counts."""

from __future__ import annotations

import datetime as dt

from storage.accounts import create_project
from storage.models import WebSession
from storage.protocol import add_manual_entry
from tests.web import login


def test_healthz_reports_database_and_schema(web):
    response = web.client(None).get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["schema"] == "current"


def test_metrics_count_open_entries_in_prometheus_format(web):
    project = create_project(web.account.id, "Bakery")
    for number in range(3):
        add_manual_entry(project, web.users["member"], kind="note", text=f"note {number}")
    response = web.client(None).get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "postroom_open_entries 3.0" in text
    assert "postroom_unassigned_entries 0.0" in text
    assert "postroom_parse_failures 0.0" in text


def test_a_session_idle_longer_than_the_limit_ends(web):
    client = web.client(None)
    login(client, "member@agency.test")
    assert client.get("/").status_code == 200
    long_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=2)
    WebSession.update(last_seen_at=long_ago).execute()
    assert client.get("/").status_code == 302
