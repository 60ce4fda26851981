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


class Mailer:
    """One SMTP session for a run's mails; opened on first use, closed on exit."""

    def __init__(self, settings: Settings) -> None:
        from postroom.outbound import parse_smtp_url  # the same server as mail to customers

        self.server = parse_smtp_url(settings.outbound.smtp_url)
        self.envelope_from = sender(settings)[1]
        self.timeout = settings.outbound.connect_timeout_seconds
        self.helo = settings.ingest.hostname
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                self._client.close()
            self._client = None

    def send(self, message: EmailMessage, recipient: str) -> bool:
        """Deliver one mail. False: the server refused it for good (5xx); raise on the rest.

        A refusal for good is logged and not tried again, so one bad address never holds up
        the mail of everybody else; a temporary fault raises. HeaderError: this mail cannot
        be written (a bad stored address), before anything is sent.
        """
        from postroom.smtp_client import connect

        raw = message_bytes(message)
        if self._client is None:
            self._client = connect(self.server, helo=self.helo, timeout=self.timeout)
        try:
            self._client.sendmail(self.envelope_from, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = error.recipients.get(recipient, (0, b""))
            if 500 <= code < 600:
                log.warning("notification mail to %s refused: %s %r", recipient, code, reply)
                return False
            raise
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as error:
            if 500 <= error.smtp_code < 600:
                log.warning("notification mail to %s refused: %s %r", recipient,
                            error.smtp_code, error.smtp_error)  # fmt: skip
                self._client.rset()
                return False
            raise
        return True
