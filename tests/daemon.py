"""Start and drive a real postroom daemon in a subprocess for tests."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "in.example"
READY = "postroom ingest ready"
WEB_READY = "postroom web ready"
# what the daemon prints once it listens: the addresses it bound (port 0 asks for any free port)
READY_LINE = re.compile(r"^postroom ingest ready((?: \w+=\S+)*)\s*$", re.MULTILINE)
WEB_READY_LINE = re.compile(r"^postroom web ready on (\S+)\s*$", re.MULTILINE)
ANY_PORT = "127.0.0.1:0"
_RESERVED: list[socket.socket] = []


def bound_addresses(output: str) -> dict[str, str]:
    """The addresses a postroom process named in its ready lines (the last start's):
    {"smtp": "127.0.0.1:41234", "lmtp": "unix:/run/x.sock", "web": "http://127.0.0.1:41236"}."""
    found: dict[str, str] = {}
    if ready := READY_LINE.findall(output):
        found.update(item.split("=", 1) for item in ready[-1].split())
    if web := WEB_READY_LINE.findall(output):
        found["web"] = web[-1]
    return found


def port_of(address: str) -> int | None:
    """The TCP port of host:port or http://host:port (None for unix:/path)."""
    return None if address.startswith("unix:") else int(address.rsplit(":", 1)[1])


def reserve_port() -> int:
    """A port on 127.0.0.1 where nothing listens and that no other program is given.

    For a server a test starts later (a mail server that is down at first): the port stays
    bound, not listening, with SO_REUSEADDR, by this test process until it ends, so a
    connection to it is refused, and a server started there (asyncio's and aiosmtpd's set
    SO_REUSEADDR too) may listen on it. Daemons bind port 0 instead (Daemon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    return sock.getsockname()[1]


class Daemon:
    """A postroom ingest process with its own config, database and one account.

    Its listeners bind port 0: the ports are read from its ready lines at the first start
    (smtp_port, lmtp_port, web_port, web_url) and kept for every restart, so an MTA or a
    client pointed at them finds the daemon again."""

    def __init__(self, folder: Path, db_url: str, *, command: str = "ingest", **ingest: object):
        self.folder = folder
        self.db_url = db_url
        self.command = command  # "ingest", or "run" for listeners and admin UI together
        self.smtp_port: int | None = None  # known once started
        self.lmtp_port: int | None = None
        self.web_port: int | None = None
        self.web_url = ""
        self.web_listen = ANY_PORT
        self.config = folder / "postroom.toml"
        self.log_path = folder / "ingest.log"
        self.process: subprocess.Popen | None = None
        self.ingest: dict[str, object] = {
            "smtp_listen": ANY_PORT,
            "lmtp_listen": ANY_PORT,
            "domains": [DOMAIN],
            "parse_workers": 1,
            **ingest,
        }
        folder.mkdir(parents=True, exist_ok=True)
        self.storage: dict[str, object] = {"data_dir": str(folder / "data"), "url": db_url}
        self.write_config()

    def write_config(self) -> None:
        lines = [
            "[storage]",
            *(f"{k} = {json.dumps(v)}" for k, v in self.storage.items()),
            "[ingest]",
            *(f"{k} = {json.dumps(v)}" for k, v in self.ingest.items()),
            "[web]",
            f"listen = {json.dumps(self.web_listen)}",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    # --- command line -------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "postroom", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"postroom {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args, "--json").stdout)

    def create_account(self, name: str = "Agency") -> dict:
        return self.cli_json("account", "create", name)

    def create_user(
        self, email: str, role: str = "member", password: str = "correct horse battery"
    ):
        """Add a team member through the CLI; return the JSON the CLI printed."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "postroom",
                "-c",
                str(self.config),
                "user",
                "create",
                email,
                "--account",
                str(self.account["id"]),
                "--role",
                role,
                "--password-stdin",
                "--json",
            ],
            input=password + "\n",
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        )
        return json.loads(result.stdout)

    def create_project(self, account_id: int, name: str, *customers: str, domain: str = "") -> dict:
        args = ["project", "create", "--account", str(account_id), "--name", name]
        if domain:
            args += ["--domain", domain]
        for customer in customers:
            args += ["--customer", customer]
        return self.cli_json(*args)

    def entries(self, *args: str) -> list[dict]:
        return self.cli_json("entries", "list", *args)

    # --- process ------------------------------------------------------------------------
    def __enter__(self) -> Daemon:
        self.cli("init")
        if "--demo" not in self.command and not hasattr(self, "account"):
            self.account = self.create_account()
        self.start()
        return self

    def sibling(self, folder: Path, command: str = "ingest") -> Daemon:
        """Another process on the same database and account (scale-out)."""
        other = Daemon(folder, self.db_url, command=command)
        other.account = self.account
        return other

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_with(self, **ingest: object) -> None:
        """Start again with changed [ingest] settings."""
        self.ingest.update(ingest)
        self.start()

    def start(self) -> None:
        self.write_config()
        ready = WEB_READY if self.command == "web" else READY
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "postroom", "-c", str(self.config), *self.command.split()],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"postroom {self.command} exited:\n{self.log_text()}")
            output = self.log_text(offset)
            if ready in output:
                self._take_bound_addresses(output)
                return
            time.sleep(0.05)
        raise AssertionError(f"postroom {self.command} did not start:\n{self.log_text()}")

    def _take_bound_addresses(self, output: str) -> None:
        """Read the ports bound from the ready lines; keep them for the next start."""
        bound = bound_addresses(output)
        if "web" in bound:
            self.web_url = bound["web"]
            self.web_port = port_of(self.web_url)
            self.web_listen = f"127.0.0.1:{self.web_port}"
        if self.command != "web":
            for name in ("smtp", "lmtp"):
                address = bound.get(name, "unix:")
                setattr(self, f"{name}_port", port_of(address))
                if self.ingest.get(f"{name}_listen") == ANY_PORT:
                    self.ingest[f"{name}_listen"] = address

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
        self.process = None

    def wait_for_log(self, text: str, timeout: float = 30) -> str:
        """Wait until the daemon's output contains `text`; return the output."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log:\n{self.log_text()}")
            time.sleep(0.1)
        return self.log_text()

    def log_text(self, offset: int = 0) -> str:
        """The daemon's output (from byte `offset` on)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    # --- mail ---------------------------------------------------------------------------
    @property
    def inbox(self) -> str:
        return self.account["inbox_address"]

    def smtp(self) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=60)
        client.ehlo("client.test")
        return client

    def send(
        self, message: bytes, *, sender: str = "sender@customer.test", to: list[str] | None = None
    ):
        """Send over SMTP; return (code, reply text) of the end of DATA."""
        with self.smtp() as client:
            code, reply = client.mail(sender)
            assert code == 250, reply
            for rcpt in to or [self.inbox]:
                code, reply = client.rcpt(rcpt)
                assert code == 250, (rcpt, code, reply)
            return client.data(message)

    def wait_processed(self, timeout: float = 60) -> None:
        """Wait until no accepted delivery is waiting for parse and route."""
        from storage.db import open_database
        from storage.models import Intake

        deadline = time.monotonic() + timeout
        db = open_database(self.db_url)
        try:
            while time.monotonic() < deadline:
                if not Intake.select().where(Intake.state == "pending").exists():
                    return
                time.sleep(0.1)
        finally:
            db.close()

    def wait_for_entries(self, count: int, *args: str, timeout: float = 60) -> list[dict]:
        """Wait for processing, then return `entries list` (expecting at least `count`)."""
        deadline = time.monotonic() + timeout
        while True:
            self.wait_processed(max(0.0, deadline - time.monotonic()))
            found = self.entries(*args)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
