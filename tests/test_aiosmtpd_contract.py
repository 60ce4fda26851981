"""aiosmtpd is used as a library: where smtpd_ingest/smtp_session.py goes past its public
surface, it was checked against one version, and an upgrade that changes any member it
overrides or leans on fails here, naming what to check again (docstring of smtp_session.py)."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from smtpd_ingest import smtp_session
from smtpd_ingest.smtp_session import AIOSMTPD_CHECKED, IngestLMTP, IngestSMTP
from tests.loops import in_own_thread

REPO_ROOT = Path(__file__).resolve().parents[1]

# Digest (first 16 hex digits of SHA-256) of each member's source in aiosmtpd 1.4.6, and why
# smtp_session.py depends on it. A new digest means: read the member's new source, check the
# override or use named here still holds, then record the new digest and version.
CHECKED_SOURCES = {
    # builds the command table with dir() (our __dir__), reads the EHLO hook's signature
    "SMTP.__init__": "8a9ca80f23ad9bf2",
    "SMTP._getaddr": "0aeb21c56ac1260e",  # overridden for plain <local@domain> paths
    "SMTP._reset_timeout": "fef19b94d28dff31",  # overridden: one idle timer per session
    "SMTP._timeout_cb": "10a7351f9bec2818",  # called when that timer is due
    "SMTP.smtp_DATA": "3a33f30d3fd6d02f",  # replaced: DATA streamed; same steps around it
    "SMTP._set_post_data_state": "1dc8a8abca2a8164",  # called after DATA, as aiosmtpd does
    "SMTP._call_handler_hook": "6ff23a6634ea0307",  # runs the handler's DATA hook
    "SMTP.push": "15f4f1de5e30c337",  # extended: multi-line replies in one write
    "SMTP.connection_made": "77a45df5065bba34",  # extended; clears reader._buffer itself
    "SMTP.connection_lost": "d3bf6349bc3c25c1",  # extended: the gate counts sessions out
    "SMTP._handle_client": "0e4d096403af6c74",  # reads commands from _reader after DATA
    "LMTP": "0ac5be904f80eeac",  # our LMTP session is SMTP's plus LMTP's own replies
}


def _digest(name: str) -> str:
    owner, _, member = name.partition(".")
    target = {"SMTP": SMTP, "LMTP": LMTP}[owner]
    if member:
        target = getattr(target, member)
    return hashlib.sha256(inspect.getsource(target).encode()).hexdigest()[:16]


def test_the_installed_aiosmtpd_is_the_checked_one_and_inside_the_pinned_range():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pin = next(dep for dep in project["dependencies"] if dep.startswith("aiosmtpd"))
    assert pin == "aiosmtpd>=1.4.6,<1.5"
    assert version("aiosmtpd") == AIOSMTPD_CHECKED


@pytest.mark.parametrize("name", sorted(CHECKED_SOURCES))
def test_every_aiosmtpd_member_the_session_overrides_or_uses_is_as_checked(name):
    assert _digest(name) == CHECKED_SOURCES[name], (
        f"aiosmtpd's {name} changed since {AIOSMTPD_CHECKED}: check smtpd_ingest/smtp_session.py"
    )


def test_the_overrides_are_the_listed_ones_and_each_names_the_checked_version():
    own = {
        name
        for name, value in vars(smtp_session.IngestSession).items()
        if callable(value) and hasattr(SMTP, name)
    }
    assert own == {
        "__dir__",
        "_getaddr",
        "_reset_timeout",
        "connection_made",
        "connection_lost",
        "push",
        "smtp_DATA",
    }
    private = {name for name in own if name.startswith("_") and not name.startswith("__")}
    for name in private | {"__dir__", "smtp_DATA"}:
        doc = inspect.getdoc(getattr(smtp_session.IngestSession, name)) or ""
        assert f"aiosmtpd {AIOSMTPD_CHECKED}" in doc, name
    assert IngestSMTP.__mro__[1:3] == (smtp_session.IngestSession, SMTP)
    assert IngestLMTP.__mro__[1:3] == (smtp_session.IngestSession, LMTP)


def test_bytes_given_back_to_a_stream_reader_are_read_first():
    """DATA gives pipelined commands back to the reader aiosmtpd reads commands from."""

    async def give_back() -> tuple[bytes, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"message\r\n.\r\nQUIT\r\n")
        first = await reader.read(9)
        reader._buffer[0:0] = b"RSET\r\n"
        reader.feed_eof()
        return first, await reader.read()

    answer = in_own_thread(lambda: asyncio.run(give_back()))  # a browser test's loop may run here
    assert answer == (b"message\r\n", b"RSET\r\n.\r\nQUIT\r\n")
