"""README examples use only what the README's set-up installs (issue 17): scripts/run and
scripts/test make .venv (postroom and Python); nothing else is assumed on the machine. The
mail example, a Python smtplib one-liner, is run against a real listener."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.daemon import Daemon

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What a command line of the README may start with: the scripts, what they put in .venv, and
# `postroom` itself (the venv's, or an installed release's).
ALLOWED = {"scripts/run", "scripts/test", ".venv/bin/postroom", ".venv/bin/python", "postroom"}
# Tools the set-up does not install; no example of the README or docs/ may need them.
NOT_INSTALLED = ("swaks", "telnet", "nc", "netcat", "curl", "wget", "mutt", "sendmail")


def code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(section heading, lines) of each indented code block of a Markdown text."""
    blocks, section, current = [], "", []
    for line in [*text.splitlines(), ""]:
        if line.startswith("    ") and line.strip():
            current.append(line[4:])
            continue
        if current and line.strip():
            blocks.append((section, current))
            current = []
        if line.startswith("#"):
            section = line.lstrip("#").strip()
    return blocks


def commands(blocks) -> list[tuple[str, str]]:
    """(section, first word) of each command line; a block that starts with a comment naming a
    file (`# /etc/postfix/main.cf`) is that file's content, and the layout is a listing."""
    found = []
    for section, lines in blocks:
        if section == "Layout" or re.match(r"# /", lines[0]):
            continue
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            found.append((section, shlex.split(line, comments=True)[0]))
    return found


def test_the_readme_names_only_tools_its_set_up_installs():
    found = commands(code_blocks(README.read_text(encoding="utf-8")))
    assert {word for _, word in found} >= {"scripts/run", ".venv/bin/python"}
    for section, word in found:
        assert word in ALLOWED, f"README, {section}: {word} is not installed by the set-up"


def test_no_example_in_the_docs_needs_a_tool_the_set_up_does_not_install():
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for tool in NOT_INSTALLED:
                assert not re.search(rf"(^|[\s`(]){tool}\s", line), f"{path.name}:{number}: {tool}"


def test_the_readme_mail_example_delivers_a_mail(db_url, tmp_path):
    [line] = [
        line.strip()
        for _, lines in code_blocks(README.read_text(encoding="utf-8"))
        for line in lines
        if line.startswith(".venv/bin/python -c")
    ]
    code = shlex.split(line)[2]
    with Daemon(tmp_path, db_url) as daemon:
        assert "'127.0.0.1', 2525" in code and "inbox+1.k3…@localhost" in code
        code = code.replace("2525", str(daemon.smtp_port)).replace(
            "inbox+1.k3…@localhost", daemon.inbox
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        [entry] = daemon.wait_for_entries(1)
    assert entry["subject"] == "Opening hours"
