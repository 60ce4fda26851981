"""Mail to customers: check and queue it as an outbound entry, build the MIME, send it.

queue_message stores everything at once (entry, attachments, index row, queue row); the worker
calls send_due, which sends through the account's own server if it has one, else through
[outbound] smtp_url, with exponential backoff.

Exactly once, as far as SMTP allows: a worker first claims a message in a committed
transaction (its next_attempt_at moves CLAIM_SECONDS ahead, compare-and-set), so no two
workers send it at the same time. What is left is at-least-once: if the process dies after
the server's 250 and before the "sent" commit, the claim expires and the mail goes out again,
with the same Message-ID (most clients then show it once).

One account never holds up another: each pass sends the accounts' mail in parallel (at most
[outbound] parallel_accounts at once), each over one session with a short connect timeout;
a server that cannot be reached backs its account off (ACCOUNT_BACKOFF) without touching the
others. An account's own server is checked against [outbound] allowed_ports and
allow_private_hosts before every connection, which goes to the checked addresses only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import smtplib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage

from peewee import DatabaseError

from postroom.config import Settings
from postroom.mail_headers import (
    HeaderError,
    header_text,
    message_bytes,
    set_header,
    writable_ids,
)
from postroom.mail_templates import TemplateError, render, variables_for
from postroom.outbound_checks import (
    MAX_BODY_CHARS,
    OutboundError,
    Upload,
    check_attachments,
    check_recipient,
    check_smtp_host,
    check_subject,
    markdown_to_html,
)
from postroom.smtp_client import (
    SECURITIES,
    SmtpServer,
    connect,
    failure_words,
    parse_smtp_url,
    permanent,
    reached_the_server,
)
from storage.accounts import inbox_local_part, project_reply_detail
from storage.models import (
    Account,
    Attachment,
    Entry,
    OutboundMessage,
    Project,
    User,
    database,
    utcnow,
)
from storage.outbound import (
    OutboundRecord,
    account_smtp,
    claim,
    due_accounts,
    due_messages,
    mark_failed,
    mark_retry,
    mark_sent,
    store_outbound,
    template_of_account,
)

__all__ = ["SECURITIES", "SmtpServer", "parse_smtp_url", "queue_message", "send_due"]

log = logging.getLogger(__name__)

MAX_REFERENCES = 20  # the newest ids of a long thread are enough to find it
CLAIM_SECONDS = 900  # longer than any SMTP conversation; a dead worker's claim runs out
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
ACCOUNT_BACKOFF = (30, 600)  # seconds an unreachable server is left alone: first, at most
MESSAGES_PER_PASS = 50  # of one account; the rest wait for the next pass


# --- where mail comes from and goes back to --------------------------------------------------
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
        # the template's subject may hold a stranger's words (a display name): made one line
        subject = subject if subject.strip() else _one_line_subject(rendered[0])
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
    if not writable_ids([entry.message_id or ""]):
        return "", ""  # no id, or one (a stranger's) that cannot stand in a header
    parents = writable_ids(entry.references.split() or entry.in_reply_to.split()[:1])
    chain = [*dict.fromkeys([*parents, entry.message_id])]
    return entry.message_id, " ".join(chain[-MAX_REFERENCES:])


def _one_line_subject(text: str) -> str:
    try:
        return header_text(text[:MAX_BODY_CHARS])
    except HeaderError as error:
        raise OutboundError(str(error)) from None


# --- build ---------------------------------------------------------------------------------
def build_mime(outbound: OutboundMessage, sender: tuple[str, str] | None = None) -> bytes:
    """The message as it goes on the wire: text and HTML alternatives, then the attachments.

    sender (name, address) overrides the From stored at queue time (the account's own server
    may have been set up since). No Auto-Submitted: a person wrote this mail (RFC 3834).
    Every header goes through postroom.mail_headers; HeaderError if one cannot be written.
    """
    entry = Entry.get_by_id(outbound.entry_id)
    name, address = sender or (outbound.from_name, outbound.from_address)
    message = EmailMessage()
    set_header(message, "From", (name, address))
    set_header(message, "To", outbound.to_address)
    if outbound.cc:
        set_header(message, "Cc", [cc.strip() for cc in outbound.cc.split(",") if cc.strip()])
    set_header(message, "Subject", entry.subject)
    set_header(message, "Date", entry.occurred_at.replace(tzinfo=dt.UTC))
    set_header(message, "Message-ID", entry.message_id)
    in_reply_to = writable_ids(entry.in_reply_to.split())
    if in_reply_to:
        set_header(message, "In-Reply-To", in_reply_to[:1])
    references = writable_ids(entry.references.split())
    if references:
        set_header(message, "References", references)
    if outbound.reply_to:
        set_header(message, "Reply-To", outbound.reply_to)
    message.set_content(outbound.body_text)
    message.add_alternative(_html_document(outbound.body_html), subtype="html")
    for item in entry.attachments.order_by(Attachment.id):
        maintype, _, subtype = item.content_type.partition("/")
        if maintype in ("message", "multipart"):  # only as opaque bytes
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(bytes(item.data), maintype=maintype, subtype=subtype,
                               filename=header_text(item.filename, "file name"))  # fmt: skip
    return message_bytes(message)


def _html_document(body: str) -> str:
    return ('<!doctype html><html><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{body}</body></html>')  # fmt: skip


# --- send ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Route:
    """Where one account's mail goes in this pass."""

    account_id: int
    name: str
    address: str
    server: SmtpServer
    own: bool  # the account's own server (checked against the [outbound] host rules)


@dataclass
class _Backoff:
    server: SmtpServer
    failures: int
    until: dt.datetime


# (database, account id) -> the pause of its unreachable server; per process
_backoffs: dict[tuple[str, int], _Backoff] = {}
_backoffs_lock = threading.Lock()


def _key(account_id: int) -> tuple[str, int]:
    return str(database.database), account_id


def send_due(settings: Settings, now: dt.datetime | None = None) -> tuple[int, int]:
    """Send the queued mail that is due; return (sent, failed attempts). For the worker."""
    now = now or utcnow()
    default = None
    if settings.outbound.smtp_url:
        try:
            default = parse_smtp_url(settings.outbound.smtp_url)
        except OutboundError as error:
            log.error("outbound.smtp_url: %s; mail without an own server stays queued", error)
    routes = []
    for account_id in due_accounts(now, default_route=default is not None,
                                   exclude=_paused_accounts(now, settings, default)):  # fmt: skip
        route = _route(account_id, settings, default)
        if route is not None and not _paused(account_id, route.server, now):
            routes.append(route)
    if not routes:
        return 0, 0
    workers = min(len(routes), settings.outbound.parallel_accounts)
    with ThreadPoolExecutor(workers, thread_name_prefix="outbound") as pool:
        results = list(pool.map(lambda route: _send_account(route, settings, now), routes))
    return sum(sent for sent, _ in results), sum(failed for _, failed in results)


def _route(account_id: int, settings: Settings, default: SmtpServer | None) -> _Route | None:
    name, address, server = sender_of_account(account_id, settings)
    if server is None and default is None:
        return None
    return _Route(account_id, name, address, server or default, server is not None)


def _send_account(route: _Route, settings: Settings, now: dt.datetime) -> tuple[int, int]:
    """Send one account's due mail over one session; stop at a server that cannot be reached."""
    sent = failed = 0
    client: smtplib.SMTP | None = None
    try:
        for message_id, seen in due_messages(now, route.account_id, MESSAGES_PER_PASS):
            if not claim(message_id, seen, now + dt.timedelta(seconds=CLAIM_SECONDS)):
                continue  # another worker has it
            outbound = OutboundMessage.get_by_id(message_id)
            try:
                raw = build_mime(outbound, (route.name, route.address))
            except DatabaseError:
                raise
            except Exception as error:  # this one mail fails, the rest go on
                log.exception("outbound %s cannot be built", outbound.entry_id)
                _record_failure(outbound, error, now, 1)  # it would fail the same way again
                failed += 1
                continue
            try:
                if client is None:
                    client = _open(route, settings)
                _send(client, route, outbound, raw)
            except (OSError, smtplib.SMTPException, OutboundError) as error:
                failed += 1
                _record_failure(outbound, error, now, settings.outbound.max_attempts)
                if reached_the_server(error):
                    _reset(client)
                    continue
                _pause(route, now)
                break  # the rest of this account's mail waits; the other accounts go on
            _resume(route.account_id)
            mark_sent(outbound, now, route.address, route.name)
            sent += 1
            log.info("outbound %s sent to %s via %s:%s", outbound.entry_id, outbound.to_address,
                     route.server.host, route.server.port)  # fmt: skip
    except DatabaseError:
        log.exception("outbound: account %s: database error; the next pass tries again",
                      route.account_id)  # fmt: skip
    except Exception:  # one account's fault never stops the others'
        log.exception("outbound: account %s failed; the next pass tries again", route.account_id)
    finally:
        _close(client)
        if not database.is_closed():
            database.close()  # this thread's connection
    return sent, failed


def _open(route: _Route, settings: Settings) -> smtplib.SMTP:
    """A session with the route's server; its own server only at addresses the rules allow."""
    addresses: tuple[str, ...] = ()
    if route.own:
        addresses = check_smtp_host(route.server.host, route.server.port, settings.outbound)
    return connect(route.server, helo=settings.ingest.hostname, addresses=addresses,
                   timeout=settings.outbound.connect_timeout_seconds)  # fmt: skip


def _send(client: smtplib.SMTP, route: _Route, outbound: OutboundMessage, raw: bytes) -> None:
    # bounces of default-route mail come back to the project's reply address
    envelope_from = route.address if route.own else outbound.reply_to or route.address
    client.sendmail(envelope_from, [outbound.to_address], raw)


def _reset(client: smtplib.SMTP | None) -> None:
    if client is not None:  # if this fails, the next mail fails as "closed the connection"
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.rset()


def _close(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _paused_accounts(
    now: dt.datetime, settings: Settings, default: SmtpServer | None
) -> tuple[int, ...]:
    """Accounts whose server (as set now) backs off: their mail is not even looked at."""
    with _backoffs_lock:
        here = str(database.database)
        candidates = [key[1] for key, pause in _backoffs.items()
                      if key[0] == here and pause.until > now]  # fmt: skip
    paused = []
    for account_id in candidates:
        route = _route(account_id, settings, default)
        if route is not None and _paused(account_id, route.server, now):
            paused.append(account_id)
    return tuple(paused)


def _paused(account_id: int, server: SmtpServer, now: dt.datetime) -> bool:
    """True while the account's server backs off; a changed server setting ends the pause."""
    with _backoffs_lock:
        pause = _backoffs.get(_key(account_id))
        return pause is not None and pause.server == server and pause.until > now


def _pause(route: _Route, now: dt.datetime) -> None:
    with _backoffs_lock:
        pause = _backoffs.get(_key(route.account_id))
        failures = pause.failures + 1 if pause and pause.server == route.server else 1
        first, longest = ACCOUNT_BACKOFF
        seconds = min(first * 2 ** (failures - 1), longest)
        until = now + dt.timedelta(seconds=seconds)
        _backoffs[_key(route.account_id)] = _Backoff(route.server, failures, until)
    log.warning("outbound: account %s: %s:%s cannot be reached; its mail waits %d s",
                route.account_id, route.server.host, route.server.port, seconds)  # fmt: skip


def _resume(account_id: int) -> None:
    with _backoffs_lock:
        _backoffs.pop(_key(account_id), None)


def _record_failure(outbound: OutboundMessage, error: BaseException, now: dt.datetime,
                    max_attempts: int) -> None:  # fmt: skip
    """Store the failure in our own words (users see it); the log keeps the server's reply."""
    text = failure_words(error)
    attempts = outbound.attempts + 1
    log.info("outbound %s to %s: %s (%r)", outbound.entry_id, outbound.to_address, text,
             error)  # fmt: skip
    if permanent(error) or attempts >= max_attempts:
        mark_failed(outbound, text)
        log.warning("outbound %s to %s failed for good after %d attempts: %s",
                    outbound.entry_id, outbound.to_address, attempts, text)  # fmt: skip
        return
    delay = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    mark_retry(outbound, text, now + dt.timedelta(seconds=delay))
    log.info("outbound %s to %s failed (attempt %d), next in %ds: %s",
             outbound.entry_id, outbound.to_address, attempts, delay, text)  # fmt: skip


def template_preview(project: Project, user: User, to: str, template_id: int) -> tuple[str, str]:
    """The rendered (subject, body) of a template for the new-message form; TemplateError."""
    template = template_of_account(project.account_id, template_id)
    if template is None:
        raise TemplateError("that template does not exist (any more)")
    subject, body = render(template.subject, template.body, variables_for(project, user, to))
    try:  # a variable may hold a stranger's words (a display name): made one line
        return header_text(subject[:MAX_BODY_CHARS]), body
    except HeaderError as error:
        raise TemplateError(str(error)) from None
