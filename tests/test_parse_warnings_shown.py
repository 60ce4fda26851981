"""A mail with one item that could not be read is filed with everything else, and the item is
named on its entry page and in the API; a mail beyond walking is filed by its sender."""

from __future__ import annotations

import html

import pytest

from domain.projects import create_project
from smtpd_ingest.importer import import_messages
from smtpd_ingest.parser_pool import InlineParser
from storage.accounts import inbox_local_part
from storage.models import Entry
from tests.test_api import api_as
from tests.test_parse_regressions import huge_to


def _import(web, *raws: bytes) -> list[Entry]:
    recipient = f"{inbox_local_part(web.account)}@in.example"
    messages = [(f"mail {n}", raw) for n, raw in enumerate(raws)]
    for _ in import_messages(web.account.id, recipient, messages, InlineParser()):
        pass
    return list(Entry.select().where(Entry.account == web.account.id).order_by(Entry.id))


def test_a_to_of_5000_words_is_named_on_the_entry_page_and_in_the_api(web):
    project = create_project(
        web.account.id, "Bakery Miller", customer_addresses=["anna@bakery.example"]
    )
    [entry] = _import(web, huge_to(5000, " "))
    assert entry.project_id == project.id and entry.route_rule == "sender"
    assert entry.subject == "Grüße aus der Bäckerei" and entry.parse_error is None
    page = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    assert "Parts of this mail could not be read as written." in page
    assert "<strong>To</strong>: too long to read in full; read by the simple reader" in page
    body = api_as(web, "member").get(f"/entries/{entry.id}").get_json()
    assert [(w["item"], w["code"]) for w in body["parse_warnings"]] == [("To", "header_too_long")]


def test_a_mail_beyond_walking_is_filed_by_its_sender_with_its_subject(web):
    project = create_project(
        web.account.id, "Bakery Miller", customer_addresses=["anna@bakery.example"]
    )
    parts = "".join("--B\n\n" for _ in range(10_001))  # more than the package builds
    raw = (
        "From: Anna <anna@bakery.example>\nSubject: Angebot\n"
        f"Content-Type: multipart/mixed; boundary=B\n\n{parts}"
    ).encode()
    [entry] = _import(web, raw)
    assert entry.parse_error and entry.subject == "Angebot"
    assert (entry.project_id, entry.from_address) == (project.id, "anna@bakery.example")
    page = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    assert html.escape(entry.parse_error, quote=False) in page
    body = api_as(web, "member").get(f"/entries/{entry.id}").get_json()
    assert body["parse_warnings"] == [] and body["subject"] == "Angebot"


@pytest.mark.parametrize(
    "stored", ["null", "5", "true", '{"a": 1}', "[" * 5000 + "]" * 5000, '[{"item": null}]', "x"]
)
def test_odd_stored_warnings_never_break_the_entry_page_or_the_api(web, stored):
    [entry] = _import(web, huge_to(5000, " "))
    Entry.update(parse_warnings=stored).where(Entry.id == entry.id).execute()
    assert web.client("member").get(f"/entries/{entry.id}").status_code == 200
    body = api_as(web, "member").get(f"/entries/{entry.id}").get_json()
    assert body["parse_warnings"] in ([], [{"item": "", "code": "", "detail": ""}])
