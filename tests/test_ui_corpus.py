"""Every mail of the shared corpus opens in the entry view; items that could not be read are
listed on it, and a mail whose structure cannot be walked shows raw and why."""

from __future__ import annotations

import html
import json

from smtpd_ingest.importer import import_messages
from smtpd_ingest.parser_pool import InlineParser
from storage.accounts import inbox_local_part
from storage.models import Entry
from tests.test_corpus import as_transmitted


def test_every_corpus_mail_opens_in_the_entry_view(web, corpus_files):
    files = corpus_files
    messages = [(str(path), as_transmitted(path.read_bytes())) for path in files]
    # no corpus mail is beyond walking any more: one with more parts than the package builds
    parts = "".join("--B\n\n" for _ in range(10_001))  # more than the package builds
    messages.append(
        (
            "many",
            b"From: a@x.example\nSubject: deep\nContent-Type: multipart/mixed; boundary=B\n\n"
            + parts.encode(),
        )
    )
    recipient = f"{inbox_local_part(web.account)}@in.example"
    for _ in import_messages(web.account.id, recipient, messages, InlineParser()):
        pass
    entries = list(Entry.select().where(Entry.account == web.account.id))
    assert len(entries) >= 590
    client = web.client("member")
    failed = []
    for entry in entries:
        for path in (f"/entries/{entry.id}", f"/entries/{entry.id}/body"):
            response = client.get(path)
            if response.status_code != 200:
                failed.append((entry.id, path, response.status_code))
    assert not failed, failed[:10]
    unparsed = [e for e in entries if e.parse_error]
    assert [(e.subject, e.from_address) for e in unparsed] == [("deep", "a@x.example")]
    for entry in unparsed:
        page = client.get(f"/entries/{entry.id}").get_data(as_text=True)
        assert html.escape(entry.parse_error, quote=False) in page
        assert "<pre" in page
    warned = [e for e in entries if e.parse_warnings]
    assert len(warned) >= 5, "the corpus holds mail with headers the registry cannot read"
    for entry in warned:
        page = client.get(f"/entries/{entry.id}").get_data(as_text=True)
        assert "Parts of this mail could not be read as written." in page
        for warning in json.loads(entry.parse_warnings):
            assert html.escape(f"{warning['item']}", quote=False) + "</strong>:" in page
