"""The README's run command works on a clean clone: it installs, initialises and listens."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.daemon import bound_addresses, port_of

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_scripts_run_on_a_clean_clone_starts_postroom_that_accepts_mail(tmp_path):
    if not (REPO_ROOT / ".git").exists():
        pytest.fail("the quick-start test needs a git checkout of postroom")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    config = tmp_path / "postroom.toml"
    config.write_text(  # port 0: each listener takes a free port and names it when ready
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        '[ingest]\nsmtp_listen = "127.0.0.1:0"\nlmtp_listen = "127.0.0.1:0"\n'
        '[web]\nlisten = "127.0.0.1:0"\n'
    )
    output = tmp_path / "run.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            ["scripts/run"],
            cwd=clone,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "POSTROOM_CONFIG": str(config)},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while "postroom ingest ready" not in output.read_text(errors="replace"):
            assert process.poll() is None, output.read_text(errors="replace")
            assert time.monotonic() < deadline, output.read_text(errors="replace")
            time.sleep(0.5)
        text = output.read_text(errors="replace")
        smtp_port = port_of(bound_addresses(text)["smtp"])
        link = re.search(r"postroom setup: (\S+)", text).group(1)
        with urllib.request.urlopen(link) as page:  # noqa: S310 - our own local server
            assert "Welcome to postroom" in page.read().decode()
        created = subprocess.run(
            [str(clone / ".venv" / "bin" / "postroom"), "account", "create", "Quick", "--json"],
            cwd=clone,
            env={**os.environ, "POSTROOM_CONFIG": str(config)},
            capture_output=True,
            text=True,
            check=True,
        )
        inbox = json.loads(created.stdout)["inbox_address"]
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            refused = client.sendmail("a@b.test", [inbox], b"Subject: hello\r\n\r\nhi\r\n")
        assert refused == {}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
