"""A private Postfix instance for tests, delivering one domain to an LMTP target.

The machine's own Postfix is left as it is: its main.cf, master.cf, queue, log setting and
whether it runs are never touched. Each PostfixInstance is a second Postfix of its own, run
with ``postfix -c DIR`` from a temporary folder: its own config_directory (a main.cf written
from scratch, so nothing the machine's main.cf says, maillog_file included, reaches it; the
machine's master.cf as the list of services, without chroot, inet services off), its own
queue_directory and data_directory, and its log in a file of its own. Mail for the test
domain goes by a transport map to the LMTP target (``inet:HOST:PORT`` or ``unix:/path``).
Mail is submitted with ``sendmail -C DIR`` (pickup). On exit, also when the test failed,
the instance is stopped and its folder removed; an atexit hook does the same if the test
process ends without leaving the ``with`` block, and an instance left by a process that is
gone (killed) is stopped by the next one that starts. Instances of parallel test workers are
independent. Needs root (the private master runs its daemons as the machine's mail_owner).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pytest

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
POSTMAP = "/usr/sbin/postmap"
SENDMAIL = "/usr/sbin/sendmail"
REQUIRED_BINARIES = (POSTFIX, POSTCONF, POSTQUEUE, POSTMAP, SENDMAIL)
MACHINE_CONFIG = Path("/etc/postfix")

PREFIX = "postroom-postfix-"
TRANSPORT_SERVICE = "postroom-lmtp"
HARNESS_HOSTNAME = "mta.postroom-harness.test"
_LIVE: set[Path] = set()  # folders of this process's instances not stopped yet


def postfix_available() -> str | None:
    """Return None if a private Postfix can be run here, else the reason it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the Postfix harness must run as root (a Postfix master runs as root)"
    missing = [path for path in REQUIRED_BINARIES if not os.access(path, os.X_OK)]
    if missing:
        return "Postfix binaries missing: " + ", ".join(missing)
    if not (MACHINE_CONFIG / "master.cf").is_file():
        return f"{MACHINE_CONFIG / 'master.cf'} is missing"
    return None


def require_postfix() -> None:
    """Skip the calling test if Postfix is unusable; fail instead when CI=true."""
    reason = postfix_available()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Postfix is required on CI: {reason}")
    pytest.skip(reason)


def _run(*args: str, input_bytes: bytes | None = None, timeout: float = 60) -> str:
    """Run a command, raise with its output if it fails, return its stdout as text."""
    proc = subprocess.run(args, input=input_bytes, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout.decode(errors='replace')}\n"
            f"stderr: {proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout.decode(errors="replace")


def machine_state() -> dict[str, object]:
    """What the harness must leave as it found it: the machine's `postconf -n`, its main.cf
    and master.cf, and whether its Postfix runs."""
    running = subprocess.run([POSTFIX, "status"], capture_output=True, timeout=30)
    return {
        "postconf -n": _run(POSTCONF, "-n"),
        "postconf -M": _run(POSTCONF, "-M"),
        "main.cf": (MACHINE_CONFIG / "main.cf").read_bytes(),
        "master.cf": (MACHINE_CONFIG / "master.cf").read_bytes(),
        "running": running.returncode == 0,
    }


def _private_master_cf(smtp_port: int | None = None) -> str:
    """The machine's master.cf with every service unchrooted (column 5 = n): a private
    queue has none of the files a chroot needs, and LMTP to unix:/path must see the path.
    With smtp_port, the machine's inet services are left out and one SMTP server listens on
    127.0.0.1:smtp_port instead (never port 25, which the machine's Postfix may use)."""
    lines = []
    for line in (MACHINE_CONFIG / "master.cf").read_text().splitlines():
        fields = line.split()
        if line[:1].isspace() or line.startswith("#") or len(fields) < 8:
            lines.append(line)
            continue
        if smtp_port is not None and fields[1] == "inet":
            continue
        fields[4] = "n"
        lines.append(" ".join(fields))
    lines.append(f"{TRANSPORT_SERVICE} unix - - n - - lmtp")
    if smtp_port is not None:
        lines.append(f"127.0.0.1:{smtp_port} inet n - n - - smtpd")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for the instance's SMTP server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_instance(folder: Path) -> None:
    """Stop the private Postfix in `folder` if it runs, and remove the folder."""
    config = folder / "etc"
    if (config / "main.cf").exists():
        status = subprocess.run([POSTFIX, "-c", str(config), "status"], capture_output=True)
        if status.returncode == 0:
            subprocess.run([POSTFIX, "-c", str(config), "stop"], capture_output=True, timeout=60)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _master_runs(config):
                time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)


def _master_runs(config: Path) -> bool:
    return (
        subprocess.run([POSTFIX, "-c", str(config), "status"], capture_output=True).returncode == 0
    )


@atexit.register
def _stop_left_running() -> None:
    """The test process ends with an instance still up (it never left the `with`)."""
    for folder in list(_LIVE):
        _stop_instance(folder)


def _stop_abandoned() -> None:
    """Stop instances whose test process is gone (killed before it could clean up)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            _stop_instance(folder)
        except PermissionError:
            pass


class PostfixInstance:
    """Context manager: a private Postfix that routes one domain to an LMTP target."""

    def __init__(
        self,
        domain: str,
        lmtp_target: str,
        *,
        smtp_port: int | None = None,
        local_domains: tuple[str, ...] = (),
    ) -> None:
        """Remember the domain to route and the LMTP target (inet:HOST:PORT or unix:/path).

        smtp_port: also accept mail over SMTP on 127.0.0.1:smtp_port (from 127.0.0.0/8 only).
        local_domains: domains delivered locally, where every recipient is accepted first and
        one that has no account on the machine bounces (Postfix writes the DSN, local(8))."""
        if not lmtp_target.startswith(("inet:", "unix:")):
            raise ValueError(f"lmtp_target must start with inet: or unix:, got {lmtp_target!r}")
        self.domain = domain.lower()
        self.lmtp_target = lmtp_target
        self.smtp_port = smtp_port
        self.local_domains = tuple(d.lower() for d in local_domains)
        self.folder: Path | None = None
        self.config_dir = Path()
        self.maillog_file = ""
        self._entered = False

    # context manager -------------------------------------------------------------------------

    def __enter__(self) -> PostfixInstance:
        """Write the private instance's configuration, start it and wait until it is up."""
        reason = postfix_available()
        if reason is not None:
            raise RuntimeError(reason)
        if self.domain in (HARNESS_HOSTNAME, "localhost"):
            raise ValueError(f"{self.domain} would be a local destination")
        _stop_abandoned()
        self.folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        _LIVE.add(self.folder)
        self._entered = True
        try:
            self._configure()
            _run(POSTFIX, "-c", str(self.config_dir), "start")
            self._wait_for(lambda: _master_runs(self.config_dir), 30, "Postfix master to start")
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the private instance and remove it, queue and log included."""
        self._cleanup()

    def _cleanup(self) -> None:
        if self.folder is not None:
            _stop_instance(self.folder)
            _LIVE.discard(self.folder)
        self._entered = False
        self.folder = None

    def _configure(self) -> None:
        """Write main.cf (from scratch), master.cf and the transport map of the instance."""
        assert self.folder is not None
        os.chmod(self.folder, 0o755)  # noqa: S103 -- user "postfix" reaches its queue and map
        (self.folder / "owner.pid").write_text(str(os.getpid()))
        self.config_dir = self.folder / "etc"
        queue, data = self.folder / "spool", self.folder / "data"
        for path in (self.config_dir, queue, data):
            path.mkdir()
            os.chmod(path, 0o755)  # noqa: S103 - whatever the umask: user "postfix" reads them
        shutil.chown(data, user=_default("mail_owner"))
        self.maillog_file = str(self.folder / "maillog")
        db_type = _default("default_database_type")
        transport_file = self.config_dir / "transport"
        transport_file.write_text(f"{self.domain} {TRANSPORT_SERVICE}:{self.lmtp_target}\n")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(queue),
            "data_directory": str(data),
            "syslog_name": "postfix-postroom-test",
            "maillog_file": self.maillog_file,
            "maillog_file_prefixes": str(self.folder),
            "myhostname": HARNESS_HOSTNAME,  # no lookup of the machine's own name
            "mydomain": "postroom-harness.test",
            "myorigin": "$myhostname",
            # never the test domain; local_domains: accepted, delivered (or bounced) here
            "mydestination": ", ".join(["$myhostname", "localhost", *self.local_domains]),
            "local_recipient_maps": "",  # every local recipient accepted; unknown ones bounce
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",  # no /etc/aliases: the machine's alias database stays untouched
            "alias_database": "",
            "relay_domains": "",
            "relayhost": "",
            "transport_maps": f"{db_type}:{transport_file}",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            # no port 25; sendmail goes via pickup (smtp_port: master.cf lists only that one)
            "master_service_disable": "" if self.smtp_port is not None else "inet",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "queue_run_delay": "1s",
            "transport_retry_time": "1s",
            "delay_warning_time": "0h",
            "lmtp_connection_cache_on_demand": "no",  # no stale sessions across sink restarts
            "lmtp_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            "lmtp_dns_support_level": "disabled",
            "biff": "no",
        }
        main_cf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.config_dir / "main.cf").write_text(main_cf)
        (self.config_dir / "master.cf").write_text(_private_master_cf(self.smtp_port))
        # every Postfix program sleeps ~2 s reading a main.cf younger than 2 s: backdate it
        past = time.time() - 10
        os.utime(self.config_dir / "main.cf", (past, past))
        _run(POSTMAP, "-c", str(self.config_dir), f"{db_type}:{transport_file}")
        _run(POSTFIX, "-c", str(self.config_dir), "check")  # makes the queue's folders

    # sending and inspecting ------------------------------------------------------------------

    def send(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Submit a message through sendmail (pickup), a lone dot not ending it."""
        if not recipients:
            raise ValueError("at least one recipient is required")
        _run(
            SENDMAIL,
            "-C",
            str(self.config_dir),
            "-f",
            sender,
            "-i",
            "--",
            *recipients,
            input_bytes=message,
        )

    def queue(self) -> list[dict]:
        """Return the queue as parsed `postqueue -j` records."""
        out = _run(POSTQUEUE, "-c", str(self.config_dir), "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """Ask the queue manager to retry all queued mail now (`postqueue -f`)."""
        _run(POSTQUEUE, "-c", str(self.config_dir), "-f")

    def deferred_reasons(self) -> list[str]:
        """Return the delay reasons of all queued recipients."""
        return [
            rcpt["delay_reason"]
            for item in self.queue()
            for rcpt in item.get("recipients", [])
            if rcpt.get("delay_reason")
        ]

    def wait_until(self, predicate: Callable[[], object], timeout: float = 15) -> None:
        """Poll predicate until it is truthy; raise TimeoutError with the queue and log if not."""
        self._wait_for(predicate, timeout, getattr(predicate, "__name__", "condition"))

    def wait_for_empty_queue(self, timeout: float = 15) -> None:
        """Wait until Postfix's queue is empty."""
        self.wait_until(lambda: not self.queue(), timeout)

    def log_text(self) -> str:
        """Return what this instance logged (for assertions and their messages)."""
        try:
            return Path(self.maillog_file).read_bytes().decode(errors="replace")
        except (FileNotFoundError, IsADirectoryError):
            return ""

    def diagnostics(self) -> str:
        """Return the queue and the log, formatted for an assertion message."""
        try:
            queue = json.dumps(self.queue(), indent=1)
        except Exception as exc:  # noqa: BLE001 - diagnostics must never raise
            queue = f"<postqueue failed: {exc}>"
        return f"--- queue ---\n{queue}\n--- {self.maillog_file} ---\n{self.log_text()}"

    def _wait_for(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Poll predicate every 0.1s; raise TimeoutError with diagnostics after timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}\n"
                    + (self.diagnostics() if self._entered else "")
                )
            time.sleep(0.1)


def _default(name: str) -> str:
    """A parameter's built-in default (never the machine's main.cf setting)."""
    return _run(POSTCONF, "-dh", name).strip()
