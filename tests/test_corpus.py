"""Every mail of the shared corpus is accepted, stored byte-exact and listed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


def as_transmitted(data: bytes) -> bytes:
    """Return the message as an MTA transmits it: CRLF line ends, ending in CRLF."""
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def test_every_corpus_mail_is_accepted_stored_byte_exact_and_listed(daemon, corpus_files):
    files = corpus_files
    assert len(files) == 656
    sent: dict[str, Path] = {}
    with daemon.smtp() as client:
        for path in files:
            wire = as_transmitted(path.read_bytes())
            client.mail("corpus@sender.test")
            assert client.rcpt(daemon.inbox)[0] == 250
            code, reply = client.data(wire)
            assert code == 250, (path, code, reply)
            sent[hashlib.sha256(wire).hexdigest()] = path
    listed = daemon.wait_for_entries(len(sent), timeout=300)
    by_hash = {e["raw_sha256"]: e for e in listed}
    missing = [str(sent[h]) for h in sent if h not in by_hash]
    assert not missing, f"not listed: {missing[:10]}"
    assert len(listed) == len(sent)

    # the stored raw bytes hash to what was sent (not only the recorded digest)
    from storage.db import open_database
    from storage.intake import load_raw
    from storage.models import RawMessage

    db = open_database(daemon.db_url)
    try:
        for row in RawMessage.select(RawMessage.sha256):
            assert hashlib.sha256(load_raw(row.sha256)).hexdigest() == row.sha256
        assert {row.sha256 for row in RawMessage.select(RawMessage.sha256)} == set(sent)
    finally:
        db.close()

    unparsed = [e for e in listed if e["parse_error"]]
    print(f"{len(listed)} entries, {len(unparsed)} with a parse error")
    for entry in unparsed:
        assert entry["route_reason"], entry
