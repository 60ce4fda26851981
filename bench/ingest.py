"""Ingest throughput: postroom (durable, parsed, routed, indexed) next to a no-op aiosmtpd server.

Usage: .venv/bin/python bench/ingest.py [--messages 3000] [--sessions 8] [--size 10240]
Both servers get the same load from Postfix's smtp-source in the same run; the figure that
matters is the ratio, since the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited:\n{path.read_text()}")
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    sys.exit(f"server did not start:\n{path.read_text()}")


def drive(port: int, args, lmtp: bool, recipient: str) -> float:
    """Send the load; return messages per second."""
    command = [SMTP_SOURCE, "-s", str(args.sessions), "-l", str(args.size)]
    command += ["-m", str(args.messages), "-f", "bench@sender.test", "-t", recipient, "-c"]
    if lmtp:
        command.append("-L")
    command.append(f"127.0.0.1:{port}")
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"smtp-source failed: {result.stderr}")
    return args.messages / elapsed


def start_postroom(folder: Path, smtp_port: int, lmtp_port: int, max_bytes: int = 26214400):
    config = folder / "postroom.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{folder / "data"}"\n'
        f'[ingest]\nsmtp_listen = "127.0.0.1:{smtp_port}"\nlmtp_listen = "127.0.0.1:{lmtp_port}"\n'
        f'domains = ["in.example"]\nmax_message_bytes = {max_bytes}\n[log]\nlevel = "warning"\n'
    )
    base = [sys.executable, "-m", "postroom", "-c", str(config)]
    subprocess.run([*base, "init"], check=True, capture_output=True)
    account = json.loads(
        subprocess.run(
            [*base, "account", "create", "Bench", "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    log = folder / "postroom.log"
    process = subprocess.Popen([*base, "ingest"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_for_line(log, "postroom ingest ready", process)
    return process, account["inbox_address"], config


def count_rows(config: Path) -> tuple[int, int]:
    """Return (intake rows, pending intakes) of the postroom under test."""
    from postroom.config import load_settings
    from storage.db import open_database
    from storage.models import Intake

    db = open_database(load_settings(config).storage.url)
    try:
        total = Intake.select().count()
        pending = Intake.select().where(Intake.state == "pending").count()
        return total, pending
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--size", type=int, default=10240)
    args = parser.parse_args()
    if not Path(SMTP_SOURCE).exists():
        sys.exit("smtp-source not found: install Debian's postfix package")
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        folder = Path(tmp)
        noop_ports = free_port(), free_port()
        noop_log = folder / "noop.log"
        noop = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "noop_server.py"), *map(str, noop_ports)],
            stdout=noop_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_line(noop_log, "noop ready", noop)
        ports = free_port(), free_port()
        postroom, inbox, config = start_postroom(folder, *ports)
        rows = []
        expected = 0
        try:
            for label, lmtp in (("SMTP", False), ("LMTP", True)):
                baseline = drive(noop_ports[lmtp], args, lmtp, "x@in.example")
                ours = drive(ports[lmtp], args, lmtp, inbox)
                expected += args.messages
                rows.append((label, baseline, ours))
            deadline = time.monotonic() + 600
            while count_rows(config)[1] and time.monotonic() < deadline:
                time.sleep(0.5)
            stored, pending = count_rows(config)
        finally:
            postroom.terminate()
            noop.terminate()
            postroom.wait()
            noop.wait()
    print(f"{args.messages} messages of {args.size} bytes, {args.sessions} sessions, smtp-source")
    print(f"{'protocol':<9}{'no-op msg/s':>12}{'postroom msg/s':>16}{'ratio':>8}")
    for label, baseline, ours in rows:
        print(f"{label:<9}{baseline:>12.0f}{ours:>16.0f}{ours / baseline:>8.2f}")
    print(f"acknowledged {expected}, stored {stored}, still pending parse {pending}")
    if stored != expected:
        sys.exit("MISSING MESSAGES")


if __name__ == "__main__":
    main()
