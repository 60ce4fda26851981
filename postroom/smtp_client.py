"""Talking to an outgoing mail server: its URL, a connection pinned to checked addresses, and
what went wrong in our own words.

A server's replies are never shown to users: a stranger's server could answer with anything
(and an account's own server setting could point at a service that is not a mail server at
all). Users read failure_words; the log keeps the reply for the operator.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from postroom.mail_headers import HeaderError
from postroom.outbound_checks import OutboundError

SECURITIES = ("starttls", "tls", "none")
REPLY_TIMEOUT = 60.0  # for each reply once the session is set up (DATA can take a while)


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
    return SmtpServer(parts.hostname, port, security, unquote(parts.username or ""),
                      unquote(parts.password or ""))  # fmt: skip


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


class _Pinned(smtplib.SMTP):
    """SMTP to addresses checked beforehand: the name is not looked up again (DNS rebinding),
    yet TLS still verifies the certificate against the host name."""

    addresses: tuple[str, ...] = ()

    def _get_socket(self, host, port, timeout):
        if not self.addresses:
            return super()._get_socket(host, port, timeout)
        last: OSError | None = None
        for address in self.addresses:
            try:
                return socket.create_connection((address, port), timeout, self.source_address)
            except OSError as error:
                last = error
        raise last  # type: ignore[misc]


class _PinnedSSL(smtplib.SMTP_SSL, _Pinned):
    pass


def connect(
    server: SmtpServer,
    *,
    helo: str | None = None,
    timeout: float,
    addresses: tuple[str, ...] = (),
) -> smtplib.SMTP:
    """An SMTP session, greeted, secured and logged in, each step within `timeout`.

    With `addresses`, only those are connected to. The caller closes the session.
    """
    context = ssl.create_default_context()
    if server.security == "tls":
        client: smtplib.SMTP = _PinnedSSL(local_hostname=helo, timeout=timeout, context=context)
    else:
        client = _Pinned(local_hostname=helo, timeout=timeout)
    client.addresses = addresses
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
        if client.sock is not None:
            client.sock.settimeout(max(timeout, REPLY_TIMEOUT))
    except BaseException:
        client.close()
        raise
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


def permanent(error: BaseException) -> bool:
    """A 5xx refusal of the recipient or the content: trying again will not help."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError | smtplib.SMTPSenderRefused):
        return error.smtp_code >= 500
    return False
