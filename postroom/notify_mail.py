"""Email notifications to team members through the `[outbound] smtp_url` server.

Every mail says `Auto-Submitted: auto-generated` (RFC 3834), so no vacation responder answers
it and, should it come back to postroom's inbox, it never causes mail in turn. Its headers
are written by postroom.mail_headers: a user's name with a line break in it becomes one
line, and an address that cannot be written raises HeaderError for that one mail.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid
from email.message import EmailMessage

from postroom.config import Settings
from postroom.mail_headers import message_bytes, one_line, set_header
from postroom.web import base_url
from storage.models import Notification, User

log = logging.getLogger("postroom.notify")

MAX_LISTED = 100


def sender(settings: Settings) -> tuple[str, str]:
    """(name, address) that notification mail comes from: the [outbound] default sender."""
    from postroom.outbound import default_sender

    return default_sender(settings)


def link_of(settings: Settings, notification: Notification) -> str:
    """Where a notification leads in the UI: its entry, else its project's protocol."""
    base = base_url(settings)
    if notification.entry_id:
        return f"{base}/entries/{notification.entry_id}"
    if notification.project_id:
        return f"{base}/projects/{notification.project_id}/protocol"
    return f"{base}/notifications"


def compose(
    settings: Settings, user: User, notifications: list[Notification], *, subject: str, intro: str
) -> EmailMessage:
    """One plain-text mail listing the notifications, each with its link back."""
    name, address = sender(settings)
    message = EmailMessage()
    set_header(message, "From", (name, address))
    set_header(message, "To", (user.name, user.email))
    set_header(message, "Subject", subject)
    set_header(message, "Date", dt.datetime.now(dt.UTC))
    domain = address.rpartition("@")[2] or settings.ingest.domains[0]
    set_header(message, "Message-ID", f"notify.{uuid.uuid4().hex}@{domain}")
    set_header(message, "Auto-Submitted", "auto-generated")
    set_header(message, "X-Auto-Response-Suppress", "All")  # Exchange: no out-of-office replies
    lines = [f"Hello {one_line(user.name) or user.email},", "", intro, ""]
    for notification in notifications[:MAX_LISTED]:
        text = " ".join(notification.text.split())
        lines += [f"* {text}", f"  {link_of(settings, notification)}"]
    if len(notifications) > MAX_LISTED:
        more = len(notifications) - MAX_LISTED
        lines += ["", f"… and {more} more: {base_url(settings)}/notifications"]
    lines += [
        "",
        "-- ",
        "postroom sent this automatically; replies are not read.",
        f"Choose what you get by email: {base_url(settings)}/profile",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


SENT, FAILED, LATER = "sent", "failed", "later"  # what became of one mail (Mailer.send)


class Mailer:
    """One SMTP session for a run's mails; opened on first use, renewed before its deadline,
    closed on exit."""

    def __init__(self, settings: Settings) -> None:
        from postroom.outbound import parse_smtp_url  # the same server as mail to customers

        self.server = parse_smtp_url(settings.outbound.smtp_url)
        self.envelope_from = sender(settings)[1]
        self.timeout = settings.outbound.connect_timeout_seconds
        self.session_seconds = settings.outbound.session_seconds
        self.helo = settings.ingest.hostname
        self._client = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc) -> None:
        self._quit()

    def _quit(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                self._client.close()
            self._client = None

    def send(self, message: EmailMessage, recipient: str) -> str:
        """Deliver one mail: SENT; FAILED if it is refused for good (5xx) or cannot be written
        (HeaderError before anything is sent); LATER if it is refused for now (4xx).

        Raise on a fault of the server or the connection (cannot connect, 421, timeout, the
        session's deadline): then no other mail would get through either.
        """
        from postroom.smtp_client import connect, permanent, refusal_codes

        raw = message_bytes(message)
        if self._client is not None and self._client.seconds_left() < self.session_seconds / 4:
            self._quit()  # a fresh session rather than one ended half way through a mail
        if self._client is None:
            self._client = connect(
                self.server,
                helo=self.helo,
                timeout=self.timeout,
                session_seconds=self.session_seconds,
            )
        try:
            self._client.sendmail(self.envelope_from, [recipient], raw)
        except UnicodeError as error:  # an address SMTP cannot carry: this mail only
            log.warning("notification mail to %r cannot be sent: %s", recipient, error)
            self._reset()
            return FAILED
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPDataError,
            smtplib.SMTPSenderRefused,
        ) as error:
            codes = refusal_codes(error)
            if (
                self._client.sock is None
                or 421 in codes
                or not all(400 <= code < 600 for code in codes)
            ):
                raise  # the server ended the session or answered nonsense: not this mail's fault
            if permanent(error):
                log.warning("notification mail to %s refused: %r", recipient, error)
                return FAILED
            log.info("notification mail to %s deferred by the server: %r", recipient, error)
            return LATER
        return SENT

    def _reset(self) -> None:
        try:
            self._client.rset()
        except (smtplib.SMTPException, OSError):
            self._quit()
