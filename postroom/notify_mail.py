"""Email notifications to team members, through the account's outgoing mail server.

A team's notification mail goes the way its mail to customers goes (postroom.outbound_send's
route): through the account's own server when Settings holds one, else through `[outbound]
smtp_url`, with the same checks of the account's server (ports, public addresses) and the same
back-off when it cannot be reached. It comes from the same sender: the address Settings gives
(else the [outbound] default), named as Settings says or else after the agency (the account);
its Message-ID is on that sender's domain (postroom.outbound.message_id_domain), never
localhost. Its subject names the project and what happened (postroom.notify_subjects).
Subject, text and dates are in the recipient's language and time zone (postroom.mail_language:
their own, else their account's, else English).

Every mail says `Auto-Submitted: auto-generated` (RFC 3834), so no vacation responder answers
it and, should it come back to postroom's inbox, it never causes mail in turn. Its headers
are written by postroom.mail_headers: a user's name with a line break in it becomes one
line, and an address that cannot be written raises HeaderError for that one mail.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from email.message import EmailMessage

from domain.translatable import N_
from postroom.config import Settings
from postroom.mail_headers import message_bytes, one_line, set_header
from postroom.mail_language import ENGLISH, MailWords
from postroom.notify_text import texts_for
from postroom.outbound import new_message_id
from postroom.outbound_send import Route, open_route
from postroom.web import base_url
from storage.models import Notification, User

log = logging.getLogger("postroom.notify")

MAX_LISTED = 100
HELLO = N_("Hello %(name)s,")
AND_MORE = N_("… and %(count)d more: %(link)s")
AUTOMATIC = N_("postroom sent this automatically; replies are not read.")
CHOOSE = N_("Choose what you get by email: %(link)s")


def link_of(settings: Settings, notification: Notification) -> str:
    """Where a notification leads in the UI: its entry, else its project's protocol."""
    base = base_url(settings)
    if notification.entry_id:
        return f"{base}/entries/{notification.entry_id}"
    if notification.project_id:
        return f"{base}/projects/{notification.project_id}/protocol"
    return f"{base}/notifications"


def compose(
    settings: Settings,
    user: User,
    notifications: list[Notification],
    *,
    sender: tuple[str, str],
    subject: str,
    intro: str,
    words: MailWords = ENGLISH,
) -> EmailMessage:
    """One plain-text mail from sender (name, address) listing the notifications, each with
    when it happened and its link back, in the reader's words (intro is a message id)."""
    name, address = sender
    message = EmailMessage()
    set_header(message, "From", (name, address))
    set_header(message, "To", (user.name, user.email))
    set_header(message, "Subject", subject)
    set_header(message, "Date", dt.datetime.now(dt.UTC))
    set_header(message, "Message-ID", f"notify.{new_message_id(address, settings)}")
    set_header(message, "Auto-Submitted", "auto-generated")
    set_header(message, "X-Auto-Response-Suppress", "All")  # Exchange: no out-of-office replies
    lines = [words(HELLO, name=one_line(user.name) or user.email), "", words(intro), ""]
    listed = notifications[:MAX_LISTED]
    for notification, said in zip(listed, texts_for(listed, words), strict=True):
        text = " ".join(said.split())
        lines += [
            f"* {text}",
            f"  {words.when(notification.created_at)} · {link_of(settings, notification)}",
        ]
    if len(notifications) > MAX_LISTED:
        more = len(notifications) - MAX_LISTED
        lines += ["", words(AND_MORE, count=more, link=f"{base_url(settings)}/notifications")]
    lines += [
        "",
        "-- ",
        words(AUTOMATIC),
        words(CHOOSE, link=f"{base_url(settings)}/profile"),
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


SENT, FAILED, LATER = "sent", "failed", "later"  # what became of one mail (Mailer.send)


class Mailer:
    """One SMTP session over a route (an account's own server, or the default) for a run's
    mails; opened on first use, renewed before its deadline, closed on exit."""

    def __init__(self, route: Route, settings: Settings) -> None:
        self.route = route
        self.settings = settings
        self.envelope_from = route.address
        self.session_seconds = settings.outbound.session_seconds
        self._client = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc) -> None:
        self._quit()

    def close(self) -> None:
        """End the session, if one is open (a later send opens a new one)."""
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
        session's deadline; OutboundError: the account's server is not allowed): then no other
        mail would get through either.
        """
        from postroom.smtp_client import permanent, refusal_codes

        raw = message_bytes(message)
        if self._client is not None and self._client.seconds_left() < self.session_seconds / 4:
            self._quit()  # a fresh session rather than one ended half way through a mail
        if self._client is None:  # OutboundError: the account's server breaks the rules
            self._client = open_route(self.route, self.settings)
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
