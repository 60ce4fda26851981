"""Operators' endpoints: /healthz says whether the database is usable, /metrics counts."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from domain.entries import add_manual_entry
from domain.projects import create_project
from postroom.config import ConfigError, load_settings
from storage.models import WebSession
from tests.web import login

METRICS_TOKEN = "scrape-me-0123456789abcdef"


@pytest.fixture
def scraped(storage_db, tmp_path):
    """A test client of an app whose /metrics asks for METRICS_TOKEN."""
    from admin_ui import create_app

    config = tmp_path / "metrics.toml"
    config.write_text(f'[web]\nmetrics_token = "{METRICS_TOKEN}"\n')
    return create_app(load_settings(config), testing=True).test_client()


def test_healthz_says_only_whether_the_database_is_usable(web):
    receive_one(web)
    response = web.client(None).get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "reachable", "schema": "current"}


def test_metrics_do_not_exist_until_a_token_is_configured(web):
    for client in (web.client(None), web.client("owner")):
        assert client.get("/metrics").status_code == 404


def test_metrics_need_the_configured_bearer_token(scraped):
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"},
    ):
        response = scraped.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert "postroom_" not in response.get_data(as_text=True)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_count_open_entries_in_prometheus_format(web, scraped):
    project = create_project(web.account.id, "Bakery")
    for number in range(3):
        add_manual_entry(
            project, web.users["member"], kind="note", needs_action=True, text=f"note {number}"
        )
    response = scraped.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "postroom_open_entries 3.0" in text
    assert "postroom_unassigned_entries 0.0" in text
    assert "postroom_parse_failures 0.0" in text
    assert "postroom_last_mail_received_timestamp_seconds 0.0" in text


def test_a_short_metrics_token_is_refused_by_the_config(tmp_path):
    config = tmp_path / "postroom.toml"
    config.write_text('[web]\nmetrics_token = "short"\n')
    with pytest.raises(ConfigError, match=r"web\.metrics_token"):
        load_settings(config)


def receive_one(web) -> None:
    """Record one delivery, so a leak of its time or count would show."""
    from storage.intake import Delivery, IntakeBatchItem, record_batch
    from storage.models import utcnow
    from tests.mail import message

    raw = message("Hello")
    delivery = Delivery(
        queue_id="QHEALTH",
        account_id=web.account.id,
        recipient="x@in.example",
        project_hint=None,
        mail_from="a@b.test",
        peer="127.0.0.1:1",
        helo="h",
        protocol="smtp",
        received_at=utcnow(),
    )
    record_batch([IntakeBatchItem(hashlib.sha256(raw).hexdigest(), len(raw), raw, (delivery,))])


def test_a_session_idle_longer_than_the_limit_ends(web):
    client = web.client(None)
    login(client, "member@agency.test")
    assert client.get("/").status_code == 200
    long_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=2)
    WebSession.update(last_seen_at=long_ago).execute()
    assert client.get("/").status_code == 302
