"""Talking to an outgoing mail server: its URL, a connection pinned to checked addresses, and
what went wrong in our own words.

A server's replies are never shown to users: a stranger's server could answer with anything
(and an account's own server setting could point at a service that is not a mail server at
all). Users read failure_words; the log keeps the reply for the operator.

Every session has a wall-clock deadline, whatever the server does: a timer shuts the socket
down when it is reached, and each read and write may only take the time left. A server that
drips a reply a line a second, or sends lines without end, is cut off (SessionTimeout,
ReplyTooLong) instead of holding the caller for ever.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from domain.accounts import SECURITIES
from postroom.mail_headers import HeaderError
from postroom.outbound_checks import OutboundError

REPLY_TIMEOUT = 60.0  # for each reply once the session is set up (DATA can take a while)
SESSION_SECONDS = 600.0  # a whole session at most, unless the caller says otherwise
SETUP_STEPS = 3  # connect, greeting, TLS and login together: at most 3 connect timeouts
MAX_REPLY_LINES = 100  # of one (multi-line) reply; an EHLO answer has about a dozen
MAX_REPLY_BYTES = 32_768


class SessionTimeout(smtplib.SMTPServerDisconnected):
    """The session reached its deadline and postroom ended it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the session was ended after {seconds:.0f} s")
        self.seconds = seconds


class ReplyTooLong(smtplib.SMTPServerDisconnected):
    """A reply had more lines or bytes than any mail server needs."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # starttls, tls or none
    username: str = ""
    password: str = ""


def parse_smtp_url(url: str) -> SmtpServer:
    """Read smtp://[user:password@]host[:port][?security=starttls|tls|none].

    The default security is starttls; the default port 587, or 465 for tls, 25 for none.
    """
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise OutboundError(f"not an smtp:// URL with a host: {_hide_password(url)!r}")
    options = parse_qs(parts.query)
    security = options.get("security", ["starttls"])[0]
    if security not in SECURITIES or set(options) - {"security"}:
        raise OutboundError(f"smtp_url takes only ?security={'|'.join(SECURITIES)}")
    try:
        port = parts.port or {"tls": 465, "none": 25}.get(security, 587)
    except ValueError:
        raise OutboundError("the port of smtp_url is not a number from 1 to 65535") from None
    return SmtpServer(
        parts.hostname, port, security, unquote(parts.username or ""), unquote(parts.password or "")
    )


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


class Session(smtplib.SMTP):
    """SMTP to addresses checked beforehand: the name is not looked up again (DNS rebinding),
    yet TLS still verifies the certificate against the host name. Bounded: see the module."""

    addresses: tuple[str, ...] = ()
    deadline = float("inf")  # time.monotonic() by which every step must be done
    seconds = 0.0  # the session's length, for the error
    step_timeout = REPLY_TIMEOUT  # one read at most
    expired = False
    _timer: threading.Timer | None = None

    def bound(self, deadline: float, seconds: float) -> None:
        """End the session at `deadline` (monotonic): the timer shuts the socket down."""
        if self._timer is not None:
            self._timer.cancel()
        self.deadline, self.seconds = deadline, seconds
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def seconds_left(self) -> float:
        """Time left before the deadline; 0 once it has passed."""
        return 0.0 if self.expired else max(0.0, self.deadline - time.monotonic())

    def _expire(self) -> None:
        self.expired = True
        sock = self.sock
        if sock is not None:  # wakes a blocked read or write in the sending thread
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # also under a TLS socket

    def _left(self) -> float:
        """The time left, or SessionTimeout (the session is closed)."""
        left = self.seconds_left()
        if left <= 0:
            self.expired = True
            self.close()
            raise SessionTimeout(self.seconds)
        return left

    def _deadline_error(self) -> SessionTimeout | None:
        """SessionTimeout (the session closed) if the deadline has passed, else None."""
        if self.seconds_left() > 0:
            return None
        self.close()
        return SessionTimeout(self.seconds)

    def _get_socket(self, host, port, timeout):
        timeout = min(timeout, self._left())
        if not self.addresses:
            return super()._get_socket(host, port, timeout)
        last: OSError | None = None
        for address in self.addresses:
            try:
                return socket.create_connection(
                    (address, port), min(timeout, self._left()), self.source_address
                )
            except OSError as error:
                last = error
        raise last  # type: ignore[misc]

    def send(self, s) -> None:
        if self.sock is not None:  # a large DATA may take until the deadline
            self.sock.settimeout(self._left())
        try:
            super().send(s)
        except smtplib.SMTPServerDisconnected as error:
            timeout = self._deadline_error()
            if timeout is None:
                raise
            raise timeout from error

    def getreply(self):
        """smtplib's getreply, each read within the time left, at most MAX_REPLY_LINES."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if self.file is None:
            self.file = self.sock.makefile("rb")
        lines: list[bytes] = []
        size = 0
        while True:
            self.sock.settimeout(min(self.step_timeout, self._left()))
            try:
                line = self.file.readline(smtplib._MAXLINE + 1)
            except OSError as error:
                timeout = self._deadline_error()
                if timeout is not None:
                    raise timeout from error
                self.close()  # __context__: TimeoutError if this one read took too long
                raise smtplib.SMTPServerDisconnected(
                    f"Connection unexpectedly closed: {error}"
                ) from error
            if not line:
                timeout = self._deadline_error()
                if timeout is not None:
                    raise timeout
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if len(line) > smtplib._MAXLINE:
                self.close()
                raise smtplib.SMTPResponseException(500, "Line too long.")
            size += len(line)
            lines.append(line[4:].strip(b" \t\r\n"))
            if len(lines) > MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                self.close()
                raise ReplyTooLong(f"a reply of more than {len(lines) - 1} lines, {size} bytes")
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
                break
            if line[3:4] != b"-":
                break
        if self.sock is not None:  # the deadline still holds between replies
            self.sock.settimeout(min(self.step_timeout, self._left()))
        return code, b"\n".join(lines)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().close()


class _SessionSSL(smtplib.SMTP_SSL, Session):
    pass


def connect(
    server: SmtpServer,
    *,
    helo: str | None = None,
    timeout: float,
    session_seconds: float = SESSION_SECONDS,
    addresses: tuple[str, ...] = (),
) -> Session:
    """An SMTP session, greeted, secured and logged in, ended after `session_seconds`.

    Each step of the setup takes at most `timeout`, all of it at most SETUP_STEPS times that;
    later replies REPLY_TIMEOUT each. With `addresses`, only those are connected to. The
    caller closes the session; its seconds_left() says how long it may still be used.
    """
    context = ssl.create_default_context()
    if server.security == "tls":
        client: Session = _SessionSSL(local_hostname=helo, timeout=timeout, context=context)
    else:
        client = Session(local_hostname=helo, timeout=timeout)
    client.addresses = addresses
    client.step_timeout = timeout
    started = time.monotonic()
    setup = min(session_seconds, SETUP_STEPS * timeout)
    client.bound(started + setup, setup)
    try:
        code, greeting = client.connect(server.host, server.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, greeting)
        client.ehlo()
        if server.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if server.username:
            client.login(server.username, server.password)
        client._left()  # the TLS handshake is not read through getreply
    except SessionTimeout:
        client.close()
        raise
    except BaseException as error:
        client.close()
        if client.expired or time.monotonic() >= client.deadline:
            raise SessionTimeout(setup) from error
        raise
    client.step_timeout = max(timeout, REPLY_TIMEOUT)
    client.bound(started + session_seconds, session_seconds)
    return client


def failure_words(error: BaseException) -> str:
    """What went wrong, for users: our own words and the reply code, never the server's text."""
    if isinstance(error, OutboundError):
        return str(error)
    if isinstance(error, HeaderError):
        return f"the mail cannot be written: {error}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _reply in error.recipients.values()})
        return f"the outgoing mail server rejected the recipient{_codes(codes)}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        code = _codes([error.smtp_code])
        return f"the outgoing mail server refused the user name or password{code}"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"the outgoing mail server rejected the sender address{_codes([error.smtp_code])}"
    if isinstance(error, smtplib.SMTPDataError):
        return f"the outgoing mail server rejected the message{_codes([error.smtp_code])}"
    if isinstance(error, smtplib.SMTPConnectError):
        return f"the outgoing mail server refused the connection{_codes([error.smtp_code])}"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return "the outgoing mail server does not offer what is needed (STARTTLS or login)"
    if isinstance(error, SessionTimeout):
        return (
            f"the outgoing mail server was too slow; postroom ended the connection "
            f"(time limit: {error.seconds:.0f} s)"
        )
    if isinstance(error, ReplyTooLong):
        return "the outgoing mail server sent a reply longer than postroom accepts"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        if isinstance(error.__context__, TimeoutError):  # smtplib's name for a timed-out read
            return "the outgoing mail server did not answer in time"
        return "the outgoing mail server closed the connection"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the outgoing mail server answered with an error{_codes([error.smtp_code])}"
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return "the secure connection (TLS) to the outgoing mail server failed"
    if isinstance(error, TimeoutError | socket.timeout):
        return "the outgoing mail server did not answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "the outgoing mail server refused the connection"
    if isinstance(error, ConnectionError):
        return "the connection to the outgoing mail server broke off"
    if isinstance(error, socket.gaierror):
        return "the name of the outgoing mail server cannot be found"
    if isinstance(error, smtplib.SMTPException | OSError):
        return "the outgoing mail server cannot be reached"
    return "the mail could not be sent (an unexpected error; the log has the details)"


def _codes(codes) -> str:
    shown = [str(code) for code in codes if isinstance(code, int) and 100 <= code <= 599]
    return f" with code {', '.join(shown)}" if shown else ""


def reached_the_server(error: BaseException) -> bool:
    """True when the server itself answered (a refusal of this mail), not a broken session."""
    return isinstance(
        error,
        smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused | smtplib.SMTPDataError,
    )


def refusal_codes(error: BaseException) -> list[int]:
    """The reply codes with which the server refused this mail (none for other errors)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return [code for code, _ in error.recipients.values()]
    if isinstance(error, smtplib.SMTPDataError | smtplib.SMTPSenderRefused):
        return [error.smtp_code]
    return []


def permanent(error: BaseException) -> bool:
    """A 5xx refusal of the recipient or the content: trying again will not help."""
    codes = refusal_codes(error)
    return bool(codes) and all(code >= 500 for code in codes)
