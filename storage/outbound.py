"""Mail to customers: the outbound entry and its sending state, mail templates, own SMTP server.

The worker claims a queued message by moving its next_attempt_at into the future with a
compare-and-set UPDATE, committed before it talks SMTP; so two workers never send one message
at the same time, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from peewee import fn

from storage.activity import as_params
from storage.db import write_transaction
from storage.entries import add_attachment
from storage.entry_updates import insert_system_entry
from storage.models import (
    MAX_ID,
    Account,
    AccountSmtp,
    Activity,
    CustomerAddress,
    Entry,
    Event,
    MailTemplate,
    OutboundMessage,
    Participant,
    Project,
    utcnow,
)
from storage.search import index_entry, remember_correspondents


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str  # already made safe
    original_filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutboundRecord:
    """A checked, rendered mail to a customer, ready to be stored and queued."""

    project: Project
    author_id: int
    to_address: str
    subject: str
    text: str
    html: str
    from_address: str
    from_name: str
    reply_to: str
    message_id: str  # without <>
    route_rule: str  # domain.routing.Rule.OUTBOUND
    category: str  # domain.categories: by the recipient's kind among the project's addresses
    in_reply_to: str = ""  # space-separated ids without <>
    references: str = ""
    attachments: tuple[OutboundAttachment, ...] = field(default=())
    note: str = ""  # for the activity log, e.g. the template used
    template: str = ""  # the name of the template used, if any (the activity's params)


def store_outbound(record: OutboundRecord) -> Entry:
    """Write the outbound entry (done: it is our own action), its parts and its queue row."""
    project = record.project
    now = utcnow()
    with write_transaction():
        entry = Entry.create(
            account=project.account_id,
            project=project.id,
            kind="outbound",
            status="done",
            done_by=record.author_id,
            done_at=now,
            route_rule=record.route_rule,
            route_detail="",
            subject=record.subject,
            from_address=record.from_address.lower(),
            from_name=record.from_name,
            to_addresses=json.dumps([{"name": "", "address": record.to_address}]),
            text=record.text,
            html=record.html,
            has_attachments=bool(record.attachments),
            occurred_at=now,
            received_at=now,
            message_id=record.message_id,
            in_reply_to=record.in_reply_to,
            references=record.references,
            author=record.author_id,
            project_status=project.status,
            category=record.category,
        )
        people = (
            ("from", record.from_address),
            ("to", record.to_address),
            ("reply_to", record.reply_to),
        )
        for role, address in people:
            Participant.create(entry=entry.id, role=role, address=address.lower())
        remember_correspondents((project.account_id, a.lower(), "") for _, a in people)
        for item in record.attachments:
            add_attachment(
                entry.id, item.filename, item.original_filename, item.content_type, item.data
            )
        index_entry(
            entry.id,
            subject=record.subject,
            body=record.text,
            addresses=f"{record.from_address} {record.to_address}".lower(),
            attachments=" ".join(a.filename for a in record.attachments),
        )
        OutboundMessage.create(
            entry=entry.id,
            account=project.account_id,
            to_address=record.to_address,
            from_address=record.from_address,
            from_name=record.from_name,
            reply_to=record.reply_to,
            body_text=record.text,
            body_html=record.html,
            next_attempt_at=now,
            created_at=now,
        )
        Activity.create(
            account=project.account_id,
            entry=entry.id,
            project=project.id,
            user=record.author_id,
            action="mail_queued",
            detail=f"to {record.to_address}{record.note}",
            params=as_params(
                {
                    "to": record.to_address,
                    **({"template": record.template} if record.template else {}),
                }
            ),
        )
    return entry


def recipient_kind(project_id: int, address: str) -> str | None:
    """The kind (customer, partner) of an address among the project's, None if not one."""
    row = CustomerAddress.get_or_none(
        (CustomerAddress.project == project_id) & (CustomerAddress.address == address.lower())
    )
    return row.kind if row is not None else None


def outbound_of_entry(entry_id: int) -> OutboundMessage | None:
    return OutboundMessage.get_or_none(OutboundMessage.entry == entry_id)


def customer_name_seen(account_id: int, address: str) -> str:
    """The display name this address used in its newest mail to the account, if any."""
    row = (  # through the participants' address index: an account may hold much mail
        Entry.select(Entry.from_name)
        .join(Participant, on=(Participant.entry == Entry.id))
        .where(
            (Participant.address == address.lower())
            & (Participant.role == "from")
            & (Entry.account == account_id)
            & (Entry.kind == "inbound")
            & (Entry.from_name != "")
        )
        .order_by(Entry.id.desc())
        .first()
    )
    return row.from_name if row is not None else ""


# --- the worker's side -------------------------------------------------------------------
def due_accounts(
    now: dt.datetime, *, default_route: bool, exclude: tuple[int, ...] = (), limit: int = 200
) -> list[int]:
    """Accounts with queued mail due now, the longest waiting first.

    Without a default route ([outbound] smtp_url empty) only accounts with their own server
    are due; the others' mail stays queued until one is configured. `exclude`: accounts
    whose server is backing off.
    """
    oldest = fn.MIN(OutboundMessage.next_attempt_at)
    query = OutboundMessage.select(OutboundMessage.account).where(
        (OutboundMessage.state == "queued") & (OutboundMessage.next_attempt_at <= now)
    )
    if not default_route:
        query = query.where(OutboundMessage.account.in_(AccountSmtp.select(AccountSmtp.account)))
    if exclude:
        query = query.where(OutboundMessage.account.not_in(list(exclude)))
    query = query.group_by(OutboundMessage.account).order_by(oldest, OutboundMessage.account)
    return [account_id for (account_id,) in query.limit(limit).tuples()]


def due_messages(now: dt.datetime, account_id: int, limit: int = 50) -> list[tuple]:
    """(id, next_attempt_at) of an account's queued messages due now, oldest first."""
    query = OutboundMessage.select(OutboundMessage.id, OutboundMessage.next_attempt_at).where(
        (OutboundMessage.state == "queued")
        & (OutboundMessage.next_attempt_at <= now)
        & (OutboundMessage.account == account_id)
    )
    query = query.order_by(OutboundMessage.next_attempt_at, OutboundMessage.id).limit(limit)
    return list(query.tuples())


def claim(message_id: int, seen_next_attempt: dt.datetime, until: dt.datetime) -> bool:
    """Take a due message for sending until `until`; False if another worker took it first."""
    with write_transaction():
        changed = (
            OutboundMessage.update(next_attempt_at=until)
            .where(
                (OutboundMessage.id == message_id)
                & (OutboundMessage.state == "queued")
                & (OutboundMessage.next_attempt_at == seen_next_attempt)
            )
            .execute()
        )
    return changed == 1


def mark_sent(
    outbound: OutboundMessage, now: dt.datetime, from_address: str, from_name: str
) -> None:
    """Record a delivery to the next server, and the sender it went out as."""
    with write_transaction():
        OutboundMessage.update(
            state="sent",
            sent_at=now,
            attempts=outbound.attempts + 1,
            last_error="",
            from_address=from_address,
            from_name=from_name,
        ).where(OutboundMessage.id == outbound.id).execute()
        Entry.update(from_address=from_address.lower(), from_name=from_name).where(
            Entry.id == outbound.entry_id
        ).execute()


def mark_retry(outbound: OutboundMessage, error: str, next_attempt_at: dt.datetime) -> None:
    OutboundMessage.update(
        attempts=outbound.attempts + 1, last_error=error[:2000], next_attempt_at=next_attempt_at
    ).where(OutboundMessage.id == outbound.id).execute()


def mark_failed(
    outbound: OutboundMessage,
    error: str,
    *,
    note_rule: str,
    note_category: str,
    note_status: str = "done",
) -> Entry:
    """Give up: the message fails and its entry is open again with a 'failed' badge, a system
    entry says so in the protocol, the author is told; the system entry's route_rule,
    category and status as domain.routing, domain.categories and domain.open_rules decide.

    The event (kind outbound_failed) names the author in its payload as user_id.
    """
    entry = Entry.get_by_id(outbound.entry_id)
    attempts = outbound.attempts + 1
    with write_transaction():
        OutboundMessage.update(state="failed", attempts=attempts, last_error=error[:2000]).where(
            OutboundMessage.id == outbound.id
        ).execute()
        # open with a badge: someone has to act on it, it is never counted as done
        Entry.update(status="open", done_by=None, done_at=None, send_problem="failed").where(
            Entry.id == entry.id
        ).execute()
        note = None
        if entry.project_id is not None:
            note = insert_system_entry(
                entry.project,
                f"Mail to {outbound.to_address} could not be sent: {entry.subject}"[:500],
                f"postroom gave up after {attempts} attempt{'s' if attempts != 1 else ''}.\n"
                f"Last error: {error[:2000]}\nThe mail is entry {entry.id} of this protocol.",
                route_rule=note_rule,
                category=note_category,
                status=note_status,
                event_kind="send_failed",
                event_params={
                    "to": outbound.to_address,
                    "subject": entry.subject,
                    "attempts": attempts,
                    "error": error[:2000],
                    "entry_id": entry.id,
                },
            )
        Activity.create(
            account=entry.account_id,
            entry=entry.id,
            project=entry.project_id,
            action="send_failed",
            detail=error[:500],
            params=as_params({"error": error[:500]}),
        )
        payload = {
            "user_id": entry.author_id,
            "to": outbound.to_address,
            "subject": entry.subject,
            "error": error[:2000],
            "attempts": attempts,
            "note_entry_id": note.id if note else None,
        }
        Event.create(
            account=entry.account_id,
            kind="outbound_failed",
            entry=entry.id,
            project=entry.project_id,
            payload=json.dumps(payload),
        )
    return entry


def requeue(outbound: OutboundMessage, user_id: int | None) -> None:
    """Queue a failed message again, with a fresh attempt count."""
    with write_transaction():
        OutboundMessage.update(state="queued", attempts=0, next_attempt_at=utcnow()).where(
            (OutboundMessage.id == outbound.id) & (OutboundMessage.state == "failed")
        ).execute()
        Entry.update(send_problem="").where(
            (Entry.id == outbound.entry_id) & (Entry.send_problem == "failed")
        ).execute()
        Activity.create(
            account=outbound.account_id,
            entry=outbound.entry_id,
            user=user_id,
            action="mail_requeued",
        )


# --- templates -----------------------------------------------------------------------------
def templates_of_account(account_id: int, words: str = "", limit: int = 200) -> list[MailTemplate]:
    """The account's templates whose name or subject holds every word, by name."""
    query = MailTemplate.select().where(MailTemplate.account == account_id)
    for word in words.lower().split():
        pattern = "%" + word.replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(
            (fn.LOWER(MailTemplate.name) ** pattern) | (fn.LOWER(MailTemplate.subject) ** pattern)
        )
    return list(query.order_by(fn.LOWER(MailTemplate.name), MailTemplate.id).limit(limit))


def template_of_account(account_id: int, template_id: int) -> MailTemplate | None:
    if not 0 < template_id <= MAX_ID:
        return None
    return MailTemplate.get_or_none(
        (MailTemplate.id == template_id) & (MailTemplate.account == account_id)
    )


def save_template(
    account_id: int, name: str, subject: str, body: str, template: MailTemplate | None = None
) -> MailTemplate:
    """Create a template, or change the given one."""
    if template is None:
        return MailTemplate.create(account=account_id, name=name, subject=subject, body=body)
    template.name, template.subject, template.body = name, subject, body
    template.updated_at = utcnow()
    template.save()
    return template


def copy_template(template: MailTemplate) -> MailTemplate:
    name = f"Copy of {template.name}"[:200]
    return save_template(template.account_id, name, template.subject, template.body)


def delete_template(template: MailTemplate) -> None:
    template.delete_instance()


# --- account settings ----------------------------------------------------------------------
def account_smtp(account_id: int) -> AccountSmtp | None:
    return AccountSmtp.get_or_none(AccountSmtp.account == account_id)


def save_account_smtp(
    account_id: int,
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str | None,
    from_address: str,
    from_name: str,
    user_id: int | None = None,
) -> AccountSmtp:
    """Store the account's own server; password None keeps the stored one."""
    values = {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "from_address": from_address,
        "from_name": from_name,
    }
    with write_transaction():
        row = account_smtp(account_id)
        if row is None:
            row = AccountSmtp.create(account=account_id, password=password or "", **values)
        else:
            if password is not None:
                values["password"] = password
            AccountSmtp.update(**values).where(AccountSmtp.account == account_id).execute()
        Activity.create(
            account=account_id,
            user=user_id,
            action="smtp_saved",
            detail=f"{host}:{port} as {from_address}",
            params=as_params({"host": host, "port": port, "from_address": from_address}),
        )
    return account_smtp(account_id) or row


def remove_account_smtp(account_id: int, user_id: int | None = None) -> None:
    with write_transaction():
        if AccountSmtp.delete().where(AccountSmtp.account == account_id).execute():
            Activity.create(account=account_id, user=user_id, action="smtp_removed")


def set_signature(account_id: int, signature: str) -> None:
    Account.update(signature=signature).where(Account.id == account_id).execute()
