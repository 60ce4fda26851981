"""Mail to customers: check and queue it as an outbound entry, build the MIME, send it.

queue_message stores everything at once (entry, attachments, index row, queue row); the worker
calls send_due, which sends through the account's own server if it has one, else through
[outbound] smtp_url, with exponential backoff.

Exactly once, as far as SMTP allows: a worker first claims a message in a committed
transaction (its next_attempt_at moves CLAIM_SECONDS ahead, compare-and-set), so no two
workers send it at the same time. What is left is at-least-once: if the process dies after
the server's 250 and before the "sent" commit, the claim expires and the mail goes out again,
with the same Message-ID (most clients then show it once).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr
from urllib.parse import parse_qs, unquote, urlsplit

from postroom.config import Settings
from postroom.mail_templates import TemplateError, render, variables_for
from postroom.outbound_checks import (
    MAX_BODY_CHARS,
    OutboundError,
    Upload,
    check_attachments,
    check_recipient,
    check_subject,
    markdown_to_html,
)
from storage.accounts import inbox_local_part, project_reply_detail
from storage.models import Account, Attachment, Entry, OutboundMessage, Project, User, utcnow
from storage.outbound import (
    OutboundRecord,
    account_smtp,
    claim,
    due_messages,
    mark_failed,
    mark_retry,
    mark_sent,
    store_outbound,
    template_of_account,
)

log = logging.getLogger(__name__)

MAX_REFERENCES = 20  # the newest ids of a long thread are enough to find it
CLAIM_SECONDS = 900  # longer than any SMTP conversation; a dead worker's claim runs out
SMTP_TIMEOUT = 60
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
SECURITIES = ("starttls", "tls", "none")


# --- where mail comes from and goes back to --------------------------------------------------
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


def default_sender(settings: Settings) -> tuple[str, str]:
    """(name, address) of mail sent through [outbound] smtp_url."""
    address = settings.outbound.from_address or f"no-reply@{settings.ingest.domains[0]}"
    return settings.outbound.from_name, address


def sender_of_account(account_id: int, settings: Settings) -> tuple[str, str, SmtpServer | None]:
    """(name, address, server) the account's mail goes out with; server None: the default."""
    own = account_smtp(account_id)
    if own is not None:
        server = SmtpServer(own.host, own.port, own.security, own.username, own.password)
        name = own.from_name or Account.get_by_id(account_id).name
        return name, own.from_address, server
    name, address = default_sender(settings)
    return name, address, None


def project_reply_address(project: Project, settings: Settings) -> str:
    """The address that files a reply under the project (our ingest routes it there)."""
    account = Account.get_by_id(project.account_id)
    detail = project_reply_detail(project)
    return f"{inbox_local_part(account)}.{detail}@{settings.ingest.domains[0]}"


# --- queue ---------------------------------------------------------------------------------
def queue_message(
    project: Project,
    author_user: User,
    to: str,
    subject: str,
    body_markdown: str,
    attachments: list[Upload] | tuple[Upload, ...] = (),
    template_id: int | None = None,
    answer_entry: Entry | None = None,
    *,
    settings: Settings,
) -> Entry:
    """Check a mail to the customer and store it as a queued outbound entry; return the entry.

    With template_id, the template fills in what subject or body leave empty (rendered for
    this project and recipient). Raises OutboundError (or TemplateError) and stores nothing
    if any part is wrong.
    """
    if author_user.role == "read-only" or author_user.account_id != project.account_id:
        raise OutboundError("you may not send mail for this project")
    to_address = check_recipient(to)
    note = ""
    if template_id is not None:
        template = template_of_account(project.account_id, template_id)
        if template is None:
            raise OutboundError("that template does not exist (any more)")
        rendered = render(template.subject, template.body,
                          variables_for(project, author_user, to_address))  # fmt: skip
        subject = subject if subject.strip() else rendered[0]
        body_markdown = body_markdown if body_markdown.strip() else rendered[1]
        note = f", template {template.name}"
    subject = check_subject(subject)
    if not body_markdown.strip():
        raise OutboundError("the message is empty")
    if len(body_markdown) > MAX_BODY_CHARS:
        raise OutboundError(f"the message is too long (at most {MAX_BODY_CHARS} characters)")
    files = check_attachments(attachments, settings.outbound.max_attachment_bytes)
    in_reply_to = references = ""
    if answer_entry is not None:
        if answer_entry.project_id != project.id:
            raise OutboundError("the mail you answer belongs to another project")
        in_reply_to, references = _thread_headers(answer_entry)
    from_name, from_address, _server = sender_of_account(project.account_id, settings)
    record = OutboundRecord(
        project=project,
        author_id=author_user.id,
        to_address=to_address,
        subject=subject,
        text=body_markdown.replace("\r\n", "\n"),
        html=markdown_to_html(body_markdown),
        from_address=from_address,
        from_name=from_name,
        reply_to=project_reply_address(project, settings),
        message_id=f"{uuid.uuid4().hex}@{settings.ingest.domains[0]}",
        in_reply_to=in_reply_to,
        references=references,
        attachments=files,
        note=note,
    )
    return store_outbound(record)


def _thread_headers(entry: Entry) -> tuple[str, str]:
    """In-Reply-To and References (ids without <>) for an answer to this entry (RFC 5322 3.6.4)."""
    if not entry.message_id:
        return "", ""
    parents = entry.references.split() or entry.in_reply_to.split()[:1]
    chain = [*dict.fromkeys([*parents, entry.message_id])]
    return entry.message_id, " ".join(chain[-MAX_REFERENCES:])


# --- build ---------------------------------------------------------------------------------
def build_mime(outbound: OutboundMessage, sender: tuple[str, str] | None = None) -> bytes:
    """The message as it goes on the wire: text and HTML alternatives, then the attachments.

    sender (name, address) overrides the From stored at queue time (the account's own server
    may have been set up since). No Auto-Submitted: a person wrote this mail (RFC 3834).
    """
    entry = Entry.get_by_id(outbound.entry_id)
    name, address = sender or (outbound.from_name, outbound.from_address)
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = formataddr((name, address))
    message["To"] = outbound.to_address
    if outbound.cc:
        message["Cc"] = outbound.cc
    message["Subject"] = entry.subject
    message["Date"] = format_datetime(entry.occurred_at.replace(tzinfo=dt.UTC))
    message["Message-ID"] = f"<{entry.message_id}>"
    if entry.in_reply_to:
        message["In-Reply-To"] = " ".join(f"<{i}>" for i in entry.in_reply_to.split())
    if entry.references:
        message["References"] = " ".join(f"<{i}>" for i in entry.references.split())
    if outbound.reply_to:
        message["Reply-To"] = outbound.reply_to
    message.set_content(outbound.body_text)
    message.add_alternative(_html_document(outbound.body_html), subtype="html")
    for item in entry.attachments.order_by(Attachment.id):
        maintype, _, subtype = item.content_type.partition("/")
        if maintype in ("message", "multipart"):  # only as opaque bytes
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(bytes(item.data), maintype=maintype, subtype=subtype,
                               filename=item.filename)  # fmt: skip
    return message.as_bytes()


def _html_document(body: str) -> str:
    return ('<!doctype html><html><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{body}</body></html>')  # fmt: skip


# --- send ----------------------------------------------------------------------------------
def send_due(settings: Settings, now: dt.datetime | None = None) -> tuple[int, int]:
    """Send the queued mail that is due; return (sent, failed attempts). For the worker."""
    now = now or utcnow()
    default = None
    if settings.outbound.smtp_url:
        try:
            default = parse_smtp_url(settings.outbound.smtp_url)
        except OutboundError as error:
            log.error("outbound.smtp_url: %s; mail without an own server stays queued", error)
    sent = failed = 0
    for message_id, seen in due_messages(now, default_route=default is not None):
        if not claim(message_id, seen, now + dt.timedelta(seconds=CLAIM_SECONDS)):
            continue  # another worker has it
        outbound = OutboundMessage.get_by_id(message_id)
        name, address, server = sender_of_account(outbound.account_id, settings)
        # bounces of default-route mail come back to the project's reply address
        envelope_from = address if server else outbound.reply_to or address
        server = server or default
        if server is None:  # the account's own server was removed meanwhile
            OutboundMessage.update(next_attempt_at=now).where(
                OutboundMessage.id == message_id
            ).execute()
            continue
        try:
            raw = build_mime(outbound, (name, address))
            _deliver(server, envelope_from, outbound.to_address, raw, settings.ingest.hostname)
        except (OSError, smtplib.SMTPException, ValueError) as error:
            failed += 1
            _record_failure(outbound, error, now, settings.outbound.max_attempts)
            continue
        mark_sent(outbound, now, address, name)
        sent += 1
        log.info("outbound %s sent to %s via %s:%s", outbound.entry_id, outbound.to_address,
                 server.host, server.port)  # fmt: skip
    return sent, failed


def _deliver(server: SmtpServer, envelope_from: str, to: str, raw: bytes, helo: str) -> None:
    context = ssl.create_default_context()
    if server.security == "tls":
        client = smtplib.SMTP_SSL(server.host, server.port, local_hostname=helo,
                                  timeout=SMTP_TIMEOUT, context=context)  # fmt: skip
    else:
        client = smtplib.SMTP(server.host, server.port, local_hostname=helo,
                              timeout=SMTP_TIMEOUT)  # fmt: skip
    with client:
        client.ehlo()
        if server.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if server.username:
            client.login(server.username, server.password)
        client.sendmail(envelope_from, [to], raw)


def _record_failure(outbound: OutboundMessage, error: Exception, now: dt.datetime,
                    max_attempts: int) -> None:  # fmt: skip
    text = _error_text(error)
    attempts = outbound.attempts + 1
    if _permanent(error) or attempts >= max_attempts:
        mark_failed(outbound, text)
        log.warning("outbound %s to %s failed for good after %d attempts: %s",
                    outbound.entry_id, outbound.to_address, attempts, text)  # fmt: skip
        return
    delay = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    mark_retry(outbound, text, now + dt.timedelta(seconds=delay))
    log.info("outbound %s to %s failed (attempt %d), next in %ds: %s",
             outbound.entry_id, outbound.to_address, attempts, delay, text)  # fmt: skip


def _permanent(error: Exception) -> bool:
    """A 5xx refusal of the recipient or the content: trying again will not help."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def _error_text(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{rcpt}: {code} {_text(reply)}"
                         for rcpt, (code, reply) in error.recipients.items())  # fmt: skip
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused by the outgoing mail server"
    return f"{error.__class__.__name__}: {error}"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def template_preview(project: Project, user: User, to: str, template_id: int) -> tuple[str, str]:
    """The rendered (subject, body) of a template for the new-message form; TemplateError."""
    template = template_of_account(project.account_id, template_id)
    if template is None:
        raise TemplateError("that template does not exist (any more)")
    return render(template.subject, template.body, variables_for(project, user, to))
