"""Mail to customers: check and queue it as an outbound entry, build the MIME, send it.

queue_message stores everything at once (entry, attachments, index row, queue row); the worker
calls postroom.outbound_send.send_due, which sends it through the account's own server if it
has one, else through [outbound] smtp_url. Every header is written by postroom.mail_headers.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from email.message import EmailMessage

from domain import messages as domain_messages
from domain.categories import category
from domain.routing import Rule
from domain.users import may_change_anything
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
    check_subject,
    markdown_to_html,
)
from postroom.smtp_client import (
    SECURITIES,
    SmtpServer,
    parse_smtp_url,
)
from storage.accounts import inbox_local_part, project_reply_detail
from storage.models import (
    Account,
    Attachment,
    Entry,
    MailTemplate,
    OutboundMessage,
    Project,
    User,
)
from storage.outbound import (
    OutboundRecord,
    account_smtp,
    recipient_kind,
    template_of_account,
)

__all__ = ["SECURITIES", "SmtpServer", "parse_smtp_url", "queue_message"]

log = logging.getLogger(__name__)

MAX_REFERENCES = 20  # the newest ids of a long thread are enough to find it
MAX_FROM_NAME_CHARS = 255  # an entry's from_name column (a member's name alone has at most 200)
LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# Message-IDs when no sender address, ingest domain or host name is a real domain name: RFC
# 2606's .invalid says so, where localhost would claim to be the receiver's own machine
FALLBACK_DOMAIN = "postroom.invalid"


# --- where mail comes from and goes back to --------------------------------------------------
def default_sender(settings: Settings, account_name: str = "") -> tuple[str, str]:
    """(name, address) of an account's mail sent through [outbound] smtp_url: the name is
    [outbound] from_name if the operator set one, else the account's (the agency's) name."""
    address = settings.outbound.from_address or f"no-reply@{settings.ingest.domains[0]}"
    return settings.outbound.from_name or account_name, address


def sender_of_account(account_id: int, settings: Settings) -> tuple[str, str, SmtpServer | None]:
    """(name, address, server) the account's mail (to customers and to its team) goes out
    with: its own server (Settings) if it has one, else the default (server None). The name is
    the one Settings gives, else the agency's (default_sender)."""
    own = account_smtp(account_id)
    account_name = Account.get_by_id(account_id).name
    if own is not None:
        server = SmtpServer(own.host, own.port, own.security, own.username, own.password)
        return own.from_name or account_name, own.from_address, server
    name, address = default_sender(settings, account_name)
    return name, address, None


def mail_can_go_out(account_id: int, settings: Settings) -> bool:
    """True when the account's mail has a server: its own (Settings) or [outbound] smtp_url."""
    return bool(settings.outbound.smtp_url) or account_smtp(account_id) is not None


def message_id_domain(sender_address: str, settings: Settings) -> str:
    """The right-hand side of the Message-IDs of mail sent as sender_address: its domain, else
    the first ingest domain, else the host name ([ingest] hostname), whichever first is a real
    domain name (_real_domain: a dot, no localhost); else FALLBACK_DOMAIN."""
    candidates = (
        sender_address.rpartition("@")[2],
        *settings.ingest.domains,
        settings.ingest.hostname,
    )
    for candidate in candidates:
        name = candidate.strip().rstrip(".").lower()
        if _real_domain(name):
            return name
    return FALLBACK_DOMAIN


def _real_domain(name: str) -> bool:
    """Two or more labels of ASCII letters, digits and hyphens; not localhost, a local-only
    top-level domain, or an IP address (which says nothing of the sender)."""
    labels = name.split(".")
    return (
        len(labels) >= 2
        and len(name) <= 200
        and all(
            0 < len(label) <= 63 and set(label) <= LABEL_CHARS and label.strip("-") == label
            for label in labels
        )
        and not labels[-1].isdigit()
        and "localhost" not in labels
        and labels[-1] not in ("localdomain", "local", "internal", "invalid")
    )


def new_message_id(sender_address: str, settings: Settings) -> str:
    """A fresh Message-ID (without <>) for mail sent as sender_address (message_id_domain)."""
    return f"{uuid.uuid4().hex}@{message_id_domain(sender_address, settings)}"


def from_name_of(author: User | None, sender_name: str) -> str:
    """The From display name of mail a member writes: "Sam Miller (Agency)", their display
    name with the sender's name (the account's); the sender's alone when they have none, their
    own alone when both would not fit the stored name (MAX_FROM_NAME_CHARS)."""
    name = author.name if author is not None else ""
    if not name:
        return sender_name
    both = f"{name} ({sender_name})"
    if not sender_name or sender_name == name or len(both) > MAX_FROM_NAME_CHARS:
        return name
    return both


def sender_of_mail(outbound: OutboundMessage, name: str, address: str) -> tuple[str, str]:
    """(name, address) this mail goes out as over a route sending as (name, address): the
    name is its author's (from_name_of)."""
    author = User.get_or_none(User.id == Entry.get_by_id(outbound.entry_id).author_id)
    return from_name_of(author, name), address


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
    if not may_change_anything(author_user) or author_user.account_id != project.account_id:
        raise OutboundError("you may not send mail for this project")
    to_address = check_recipient(to)
    note = template_name = ""
    if template_id is not None:
        template = template_of_account(project.account_id, template_id)
        if template is None:
            raise OutboundError("that template does not exist (any more)")
        rendered = rendered_template(template, project, author_user, to_address)
        subject = subject if subject.strip() else rendered[0]
        body_markdown = body_markdown if body_markdown.strip() else rendered[1]
        note = f", template {template.name}"
        template_name = template.name
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
        from_name=from_name_of(author_user, from_name),
        reply_to=project_reply_address(project, settings),
        message_id=new_message_id(from_address, settings),
        route_rule=Rule.OUTBOUND.value,
        category=category("outbound", address_kind=recipient_kind(project.id, to_address)),
        in_reply_to=in_reply_to,
        references=references,
        attachments=files,
        note=note,
        template=template_name,
    )
    return domain_messages.queue(record)


def _thread_headers(entry: Entry) -> tuple[str, str]:
    """In-Reply-To and References (ids without <>) for an answer to this entry (RFC 5322 3.6.4)."""
    if not writable_ids([entry.message_id or ""]):
        return "", ""  # no id, or one (a stranger's) that cannot stand in a header
    parents = writable_ids(entry.references.split() or entry.in_reply_to.split()[:1])
    chain = [*dict.fromkeys([*parents, entry.message_id])]
    return entry.message_id, " ".join(chain[-MAX_REFERENCES:])


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
        message.add_attachment(
            bytes(item.data),
            maintype=maintype,
            subtype=subtype,
            filename=header_text(item.filename, "file name"),
        )
    return message_bytes(message)


def _html_document(body: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif">{body}</body></html>'
    )


def rendered_template(
    template: MailTemplate, project: Project, user: User, to: str
) -> tuple[str, str]:
    """(subject, body) of a template as a mail from user to `to` about project says them:
    the one rendering of a real send (queue_message, the new-message form) and of the
    template editor's preview. A value the project lacks stays empty, as in the mail.
    TemplateError if it cannot be rendered."""
    subject, body = render(template.subject, template.body, variables_for(project, user, to))
    try:  # a variable may hold a stranger's words (a display name): made one line
        return header_text(subject[:MAX_BODY_CHARS]), body
    except HeaderError as error:
        raise TemplateError(str(error)) from None


def template_preview(project: Project, user: User, to: str, template_id: int) -> tuple[str, str]:
    """The rendered (subject, body) of a template for the new-message form; TemplateError."""
    template = template_of_account(project.account_id, template_id)
    if template is None:
        raise TemplateError("that template does not exist (any more)")
    return rendered_template(template, project, user, to)
