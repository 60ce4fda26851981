"""aiosmtpd SMTP and LMTP sessions with postroom's rules for DATA, limits and reply codes.

aiosmtpd is used as a library: commands are its `smtp_*` methods, replies go out by `push`,
and the handler's hooks do the work. Where postroom goes beyond that, it is for streaming DATA
(no line-length limit, bounded memory, a deadline) or for a cost a profile measured, and each
place names the aiosmtpd version it was checked against (AIOSMTPD_CHECKED; pyproject.toml pins
the range). tests/test_aiosmtpd_contract.py holds a digest of the source of every aiosmtpd and
asyncio member these places override or lean on, so an upgrade that changes one fails there
first and names what to check again:

- `smtp_DATA` (a command of its own): reads DATA in large chunks, calls `_call_handler_hook`
  and `_set_post_data_state` as aiosmtpd's own does, and gives bytes pipelined after the end
  back to the session's reader (`StreamReader._buffer`, which aiosmtpd clears itself).
- `_getaddr`: the common `<local@domain>` path without aiosmtpd's general parser (a profile:
  a tenth of the listener's time); any other path still goes to aiosmtpd's.
- `_reset_timeout` / `_timeout_cb`: one idle timer per session instead of one per command and
  DATA chunk (3 % of the listener's time).
- `__dir__`: aiosmtpd builds its command table with dir() for every connection (a fifth).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from postroom.clients import client_network
from postroom.config import IngestSettings
from smtpd_ingest.handler import BAD_ENVELOPE_TEXT, peer_text
from smtpd_ingest.spool import Received, Sink, take_lines

log = logging.getLogger("postroom.ingest")

# Enhanced status codes (RFC 3463) for replies aiosmtpd writes without one.
_ENHANCED = {
    "221": "2.0.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.0.0",
    "421": "4.3.2",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "550": "5.1.1",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.3.0",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}\b")
# RFC 2034: the greeting and the EHLO/LHLO lines carry no enhanced code.
_EXEMPT = ("220", "250-", "250 HELP", "354", "334")
_END_OF_DATA = b"\r\n.\r\n"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# <dot-atom@domain>: what nearly every MAIL and RCPT carries; anything else takes aiosmtpd's parser
_PLAIN_PATH = re.compile(
    rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*"
)
_CHUNK = 256 * 1024
AIOSMTPD_CHECKED = "1.4.6"  # the aiosmtpd whose internals the overrides below were checked against


class ConnectionGate:
    """Count open sessions per protocol and per SMTP client address; refuse those over a limit.

    SMTP and LMTP have limits of their own, so strangers filling the SMTP port never keep
    the local MTA out; one SMTP client address (an IPv6 /64) may hold only a few sessions.
    """

    def __init__(self, settings: IngestSettings) -> None:
        self.open = {"smtp": 0, "lmtp": 0}
        self.per_address: dict[str, int] = {}
        self.sessions: set[IngestSession] = set()
        self.shutting_down = False
        self.configure(settings)

    def configure(self, settings: IngestSettings) -> None:
        """Take over the limits and deadlines (at start and on SIGHUP)."""
        self.limits = {"smtp": settings.max_smtp_connections, "lmtp": settings.max_lmtp_connections}
        self.address_limit = settings.max_connections_per_address
        self.data_timeout = settings.data_timeout_seconds
        self.session_timeout = settings.session_timeout_seconds

    def admit(self, session: IngestSession, address: str | None) -> str | None:
        """Count a new session in, or return the reply that refuses it."""
        if self.shutting_down:
            return "421 4.3.2 Service shutting down, try again later"
        if self.open[session.kind] >= self.limits[session.kind]:
            return "421 4.3.2 Too many connections, try again later"
        if address is not None:
            if self.per_address.get(address, 0) >= self.address_limit:
                return "421 4.7.0 Too many connections from your address, try again later"
            self.per_address[address] = self.per_address.get(address, 0) + 1
        self.open[session.kind] += 1
        self.sessions.add(session)
        return None

    def release(self, session: IngestSession, address: str | None) -> None:
        """Count a closed session out."""
        self.open[session.kind] -= 1
        self.sessions.discard(session)
        if address is not None:
            left = self.per_address.pop(address) - 1
            if left:
                self.per_address[address] = left

    def busy(self) -> int:
        """How many sessions are receiving or committing a message right now."""
        return sum(1 for session in self.sessions if session.busy)

    def close_idle(self) -> None:
        """Tell every session that we are going away (421), then close it."""
        for session in list(self.sessions):
            transport = getattr(session, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.write(b"421 4.3.2 Service shutting down, try again later\r\n")
                transport.close()


class IngestSession:
    """Behaviour shared by the SMTP and LMTP sessions."""

    kind = "smtp"  # which limit of the gate counts the session
    gate: ConnectionGate | None = None
    spool_dir: Path | None = None  # where big messages are received to; None: in memory
    busy = False  # receiving or committing a message: finished before a graceful stop
    _held: tuple[str, ...] = ()  # lines of a multi-line reply not sent yet
    _deadline = 0.0  # loop time at which an idle session is closed

    def __dir__(self) -> list[str]:
        """Name only the command and AUTH methods.

        aiosmtpd looks its commands up with dir() and inspect.getmembers() for every
        connection, which evaluates every attribute; a profile showed a fifth of the
        listener's time there. The list is the same for every session of a class.
        Checked against aiosmtpd 1.4.6 (SMTP.__init__).
        """
        return _command_names(type(self))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """Parse the path of MAIL or RCPT: a plain <local@domain> directly, others as aiosmtpd.

        A path with a control byte anywhere is handed on whole, for the handler to refuse
        with 501 (aiosmtpd's parser would turn a TAB into a space, or say 501 5.5.4).
        Overrides a private method: checked against aiosmtpd 1.4.6 (SMTP._getaddr).
        """
        if BAD_ENVELOPE_TEXT.search(arg):
            return arg, ""
        match = _PLAIN_PATH.match(arg)
        if match is not None:
            rest = arg[match.end() :]
            local = match.group(1).rpartition("@")[0]
            if not rest.startswith("(") and not (
                self.local_part_limit and len(local) > self.local_part_limit
            ):
                return match.group(1), rest
        return super()._getaddr(arg)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Move the idle deadline; the timer is moved only when it would fire too late.

        aiosmtpd cancels its timer and schedules a new one for every command and every chunk
        of DATA; the loop then also sifts the cancelled timers out of its heap. A profile
        showed that at 3 % of the listener's time. Here one timer serves the session: when it
        fires before the deadline (which moved on meanwhile), it is set for the deadline.
        Overrides a private method and uses `_timeout_handle`, `_timeout_duration` and
        `_timeout_cb`: checked against aiosmtpd 1.4.6 (SMTP._reset_timeout, SMTP._timeout_cb).
        """
        deadline = self.loop.time() + (duration or self._timeout_duration)
        self._deadline = deadline
        handle = self._timeout_handle
        if handle is None or handle.cancelled() or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._timeout_handle = self.loop.call_at(deadline, self._timeout_due)

    def _timeout_due(self) -> None:
        if self.loop.time() < self._deadline:
            self._timeout_handle = self.loop.call_at(self._deadline, self._timeout_due)
            return
        self._timeout_cb()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gate = self.gate
        self._refused = False
        if gate is not None:
            address = None
            if self.kind == "smtp":
                address = client_address(transport.get_extra_info("peername"))
            refusal = gate.admit(self, address)
            if refusal is not None:
                self._refused = True
                transport.write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self._address = address
            self._session_timer = self.loop.call_later(gate.session_timeout, self._session_over)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if getattr(self, "_refused", False):
            return
        if self.gate is not None and getattr(self, "session", None) is not None:
            self._session_timer.cancel()
            self.gate.release(self, self._address)
            self.gate = None  # count each session once
        super().connection_lost(error)

    def _close_with(self, reply: str) -> None:
        """Send a last reply and close; the session task is cancelled, nothing half-read is kept."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            log.info("peer=%s %s", peer_text(self.session.peer), reply)
            transport.write(reply.encode() + b"\r\n")
            transport.close()

    def _session_over(self) -> None:
        if self.busy:  # a transaction is in its DATA phase (itself bounded): let it end
            self._session_timer = self.loop.call_later(1.0, self._session_over)
            return
        self._close_with("421 4.4.2 Session lasted too long, closing connection")

    async def push(self, status: str | bytes) -> None:
        """Send a reply; the lines of a multi-line one (EHLO, LHLO) go out in one write.

        aiosmtpd pushes each line of the EHLO reply on its own, a system call each: for an
        LMTP client, which sends LHLO for every message, that was a tenth of the listener's
        time per message. A continuation line ("250-…") is held until the last line comes.
        """
        if isinstance(status, str) and not status.startswith(_EXEMPT):
            status = "\r\n".join(_with_enhanced_code(line) for line in status.split("\r\n"))
        if isinstance(status, str):
            if status[3:4] == "-" and "\r\n" not in status:
                self._held = (*self._held, status)
                return
            if self._held:
                status, self._held = "\r\n".join((*self._held, status)), ()
        await super().push(status)

    async def smtp_DATA(self, arg: str) -> None:
        """Read DATA without a line-length limit; only CRLF.CRLF ends it (no smuggling).

        Replaces aiosmtpd's DATA command (which keeps every line in memory and limits line
        length); the steps around the reading are aiosmtpd 1.4.6's own (SMTP.smtp_DATA):
        `_call_handler_hook("DATA")`, then `_set_post_data_state()`, then the reply.
        """
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self.busy = True
        try:
            received = await self._read_data()
            if received is None:
                await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
                self._set_post_data_state()
                return
            self.envelope.content = self.envelope.original_content = received.raw
            self.envelope.received = received
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)
        finally:
            self.busy = False

    async def _read_data(self) -> Received | None:
        """Return the unstuffed message, or None when it was over the size limit.

        The whole DATA phase has a deadline (however steadily bytes trickle in, each of
        which moves the idle timeout on): past it the client gets 421 and is cut off.
        """
        overdue = None
        if self.gate is not None:
            overdue = self.loop.call_later(
                self.gate.data_timeout,
                self._close_with,
                "421 4.4.2 Timeout: DATA took too long, closing connection",
            )
        try:
            return await self._read_message()
        finally:
            if overdue is not None:
                overdue.cancel()

    async def _read_message(self) -> Received | None:
        reader: asyncio.StreamReader = self._reader
        limit = self.data_size_limit or 0
        sink = Sink(self.spool_dir)
        buffer = bytearray(b"\r\n")  # a leading ".\r\n" then ends an empty message
        first = True  # the sentinel CRLF is still in the buffer
        received = 0
        too_big = False
        search_from = 0
        try:
            while True:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    raise ConnectionResetError("connection closed during DATA")
                self._reset_timeout()
                received += len(chunk)
                buffer += chunk
                end = buffer.find(_END_OF_DATA, search_from)
                if end >= 0:
                    leftover = bytes(buffer[end + len(_END_OF_DATA) :])
                    if leftover:  # pipelined commands after the message: give them back
                        # to the reader aiosmtpd reads commands from. StreamReader has no
                        # public unread; aiosmtpd 1.4.6 itself clears this buffer
                        # (SMTP.connection_made), so both lean on the same member.
                        reader._buffer[0:0] = leftover
                    del buffer[end + 2 :]
                    break
                if limit and received > limit + len(_END_OF_DATA):
                    too_big = True
                    sink.abandon()
                    del buffer[:-4]
                elif len(buffer) >= _CHUNK:  # hand over whole lines, keep memory bounded
                    data, first = take_lines(buffer, first)
                    await sink.feed(data)
                search_from = max(0, len(buffer) - 4)
            if too_big or (limit and sink.size + len(buffer) - 2 * first > limit):
                sink.abandon()
                return None
            buffer += b"\r\n"  # take_lines keeps the last CRLF: this one marks the end
            await sink.feed(take_lines(buffer, first)[0])
            return sink.finish()
        except BaseException:
            sink.abandon()
            raise


def client_address(peer: object) -> str | None:
    """Return what the per-address limit counts (postroom.clients): the IPv4 address or the
    IPv6 /64 of the peer; None for a unix socket."""
    if not isinstance(peer, tuple) or not peer:
        return None
    return client_network(str(peer[0]))


@functools.cache
def _command_names(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if name.startswith(("smtp_", "auth_")))


def _with_enhanced_code(line: str) -> str:
    code = line[:3]
    if _HAS_ENHANCED.match(line) or code not in _ENHANCED or len(line) < 4:
        return line
    return f"{line[:4]}{_ENHANCED[code]} {line[4:]}"


class IngestSMTP(IngestSession, SMTP):
    """An SMTP session of postroom."""


class IngestLMTP(IngestSession, LMTP):
    """An LMTP session of postroom (RFC 2033: one reply per recipient after DATA)."""

    kind = "lmtp"
