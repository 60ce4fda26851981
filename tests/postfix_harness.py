"""Drive the machine's real Postfix so tests can check MTA behaviour against an LMTP listener.

The harness takes over the machine's own Postfix instance (no second instance): it saves
main.cf and master.cf, reconfigures Postfix with ``postconf``, starts it, and on exit stops it,
restores both files, empties the queue and restarts Postfix only if it was running before.
Mail for the test domain is routed by a transport map to a dedicated, non-chrooted copy of the
``lmtp`` delivery agent (Debian chroots the stock ``lmtp`` service, which would make
``unix:/path`` targets resolve inside /var/spool/postfix).  Only use it on test/CI machines:
it deletes every queued message on enter and on exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
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
POSTSUPER = "/usr/sbin/postsuper"
POSTMAP = "/usr/sbin/postmap"
SENDMAIL = "/usr/sbin/sendmail"
NEWALIASES = "/usr/bin/newaliases"
REQUIRED_BINARIES = (POSTFIX, POSTCONF, POSTQUEUE, POSTSUPER, POSTMAP, SENDMAIL)

MAILLOG_FILE = "/var/log/postfix-test.log"
LOCK_FILE = os.path.join(
    "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir(),
    "postroom-postfix-harness.lock",
)
TRANSPORT_SERVICE = "postroom-lmtp"
HARNESS_HOSTNAME = "mta.postroom-harness.test"
_DB_SUFFIXES = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}


def postfix_available() -> str | None:
    """Return None if the real Postfix can be driven here, else the reason it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the Postfix harness must run as root (it reconfigures the machine's Postfix)"
    missing = [path for path in REQUIRED_BINARIES if not os.access(path, os.X_OK)]
    if missing:
        return "Postfix binaries missing: " + ", ".join(missing)
    if not Path("/etc/postfix/main.cf").is_file():
        return "/etc/postfix/main.cf is missing"
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


def _postconf(name: str, *, default: bool = False) -> str:
    """Return the value of one main.cf parameter (or its built-in default)."""
    return _run(POSTCONF, "-dh" if default else "-h", name).strip()


def _postfix_running() -> bool:
    """Tell whether the Postfix master daemon is running."""
    return subprocess.run([POSTFIX, "status"], capture_output=True, timeout=30).returncode == 0


class PostfixInstance:
    """Context manager that points the machine's Postfix at an LMTP target for one domain."""

    def __init__(self, domain: str, lmtp_target: str) -> None:
        """Remember the domain to route and the LMTP target (inet:HOST:PORT or unix:/path)."""
        if not lmtp_target.startswith(("inet:", "unix:")):
            raise ValueError(f"lmtp_target must start with inet: or unix:, got {lmtp_target!r}")
        self.domain = domain.lower()
        self.lmtp_target = lmtp_target
        self.maillog_file = MAILLOG_FILE
        self._config_dir = Path("/etc/postfix")
        self._workdir: Path | None = None
        self._lock_fd: int | None = None
        self._was_running = False
        self._log_offset = 0
        self._entered = False

    # context manager -------------------------------------------------------------------------

    def __enter__(self) -> PostfixInstance:
        """Save the config, configure and start Postfix, and wait until it is up."""
        reason = postfix_available()
        if reason is not None:
            raise RuntimeError(reason)
        self._config_dir = Path(_postconf("config_directory"))
        self._lock_fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        self._acquire_lock(timeout=300)
        try:
            self._workdir = Path(tempfile.mkdtemp(prefix="postroom-postfix-"))
            for name in ("main.cf", "master.cf"):
                shutil.copy2(self._config_dir / name, self._workdir / name)
            self._entered = True
            self._was_running = _postfix_running()
            if self._was_running:
                # inet_interfaces/inet_protocols changes need a full restart, not a reload
                _run(POSTFIX, "stop")
                self._wait_for(lambda: not _postfix_running(), 30, "Postfix master to stop")
            # a fresh install whose Postfix never ran lacks queue folders (hold, trace) that
            # postsuper needs: `postfix check` creates them
            _run(POSTFIX, "check")
            # purge under the original config: with maillog_file set and postlogd down,
            # postsuper (running as mail_owner) would have to write the root-owned log itself
            _run(POSTSUPER, "-d", "ALL")
            self._configure()
            self._log_offset = self._log_size()
            _run(POSTFIX, "start")
            self._wait_for(_postfix_running, 30, "Postfix master to start")
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
        """Stop Postfix, restore the saved config and delete the queued mail."""
        self._cleanup()

    def _cleanup(self) -> None:
        """Undo everything __enter__ did, as far as it got; release the lock last."""
        try:
            if self._entered and self._workdir is not None:
                try:
                    if _postfix_running():
                        subprocess.run([POSTFIX, "stop"], capture_output=True, timeout=60)
                        self._wait_for(lambda: not _postfix_running(), 30, "Postfix to stop")
                finally:
                    for name in ("main.cf", "master.cf"):
                        # copy2 keeps the old mtime, so the next reader finds main.cf not "hot"
                        shutil.copy2(self._workdir / name, self._config_dir / name)
                subprocess.run([POSTSUPER, "-d", "ALL"], capture_output=True, timeout=60)
                if self._was_running:
                    subprocess.run([POSTFIX, "start"], capture_output=True, timeout=60)
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
        finally:
            self._entered = False
            self._workdir = None
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def _acquire_lock(self, timeout: float) -> None:
        """Serialise harness users across processes (there is only one Postfix per machine)."""
        assert self._lock_fd is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process holds {LOCK_FILE}") from None
                time.sleep(0.2)

    def _configure(self) -> None:
        """Write the test configuration into the machine's main.cf and master.cf."""
        assert self._workdir is not None
        if self.domain in (HARNESS_HOSTNAME, "localhost"):
            raise ValueError(f"{self.domain} would be a local destination")
        db_type = _postconf("default_database_type")
        transport_file = self._workdir / "transport"
        transport_file.write_text(f"{self.domain} {TRANSPORT_SERVICE}:{self.lmtp_target}\n")
        _run(POSTMAP, f"{db_type}:{transport_file}")
        os.chmod(self._workdir, 0o755)  # noqa: S103 -- user "postfix" reads the map

        settings = {
            "myhostname": HARNESS_HOSTNAME,  # no lookup of the machine's own name
            "mydomain": "postroom-harness.test",
            "myorigin": "$myhostname",
            "mydestination": "$myhostname, localhost",  # never the test domain
            "relay_domains": "",
            "virtual_alias_domains": "",
            "virtual_mailbox_domains": "",
            "relayhost": "",
            "transport_maps": f"{db_type}:{transport_file}",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "master_service_disable": "inet",  # stay off port 25; sendmail goes via pickup
            "maillog_file": self.maillog_file,
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "queue_run_delay": "1s",
            "transport_retry_time": "1s",
            "delay_warning_time": "0h",
            "lmtp_connection_cache_on_demand": "no",  # no stale sessions across sink restarts
            "lmtp_tls_security_level": "none",
            "biff": "no",
        }
        available = set(_run(POSTCONF, "-d").split("\n"))
        names = {line.split(" = ", 1)[0] for line in available if " = " in line}
        if "lmtp_dns_support_level" in names:
            settings["smtp_dns_support_level"] = "disabled"
            settings["lmtp_dns_support_level"] = "disabled"
        else:
            settings["disable_dns_lookups"] = "yes"
        _run(POSTCONF, "-e", *(f"{key}={value}" for key, value in settings.items()))
        # same program as the stock lmtp service, but not chrooted (column 5 = n)
        _run(POSTCONF, "-M", f"{TRANSPORT_SERVICE}/unix={TRANSPORT_SERVICE} unix - - n - - lmtp")
        self._cool_down_main_cf()
        self._ensure_aliases()
        _run(POSTFIX, "check")

    def _cool_down_main_cf(self) -> None:
        """Backdate main.cf: every Postfix program sleeps ~2s reading a main.cf < 2s old."""
        past = time.time() - 10
        os.utime(self._config_dir / "main.cf", (past, past))

    @staticmethod
    def _ensure_aliases() -> None:
        """Build the alias database if a fresh install never did (local bounces need it)."""
        for entry in _postconf("alias_database").replace(",", " ").split():
            db_type, _, path = entry.partition(":")
            suffix = _DB_SUFFIXES.get(db_type)
            if suffix and path and not Path(path + suffix).exists() and Path(path).exists():
                _run(NEWALIASES)
                return

    # sending and inspecting ------------------------------------------------------------------

    def send(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Submit a message through /usr/sbin/sendmail (pickup), a lone dot not ending it."""
        if not recipients:
            raise ValueError("at least one recipient is required")
        _run(SENDMAIL, "-f", sender, "-i", "--", *recipients, input_bytes=message)

    def queue(self) -> list[dict]:
        """Return the queue as parsed `postqueue -j` records."""
        out = _run(POSTQUEUE, "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """Ask the queue manager to retry all queued mail now (`postqueue -f`)."""
        _run(POSTQUEUE, "-f")

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
        """Return what Postfix logged since this instance started (for assertion messages)."""
        try:
            with open(self.maillog_file, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def diagnostics(self) -> str:
        """Return the queue and the log, formatted for an assertion message."""
        try:
            queue = json.dumps(self.queue(), indent=1)
        except Exception as exc:  # noqa: BLE001 - diagnostics must never raise
            queue = f"<postqueue failed: {exc}>"
        return f"--- queue ---\n{queue}\n--- {self.maillog_file} ---\n{self.log_text()}"

    def _log_size(self) -> int:
        """Return the maillog file's current size (0 if absent)."""
        with contextlib.suppress(FileNotFoundError):
            return os.path.getsize(self.maillog_file)
        return 0

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
