"""Every mail of the shared corpus opens in the entry view; unparseable ones show raw and why."""

from __future__ import annotations

import html

from smtpd_ingest.importer import import_messages
from smtpd_ingest.parser_pool import InlineParser
from storage.accounts import inbox_local_part
from storage.models import Entry
from tests.test_corpus import as_transmitted


def test_every_corpus_mail_opens_in_the_entry_view(web, corpus_files):
    files = corpus_files
    messages = ((str(path), as_transmitted(path.read_bytes())) for path in files)
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
    assert unparsed, "the corpus holds at least one mail that cannot be parsed"
    for entry in unparsed:
        page = client.get(f"/entries/{entry.id}").get_data(as_text=True)
        assert html.escape(entry.parse_error, quote=False) in page
        assert "<pre" in page
