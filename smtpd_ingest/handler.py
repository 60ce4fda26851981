"""Decide every reply code of a mail transaction; hand accepted bytes to the intake writer."""

from __future__ import annotations

import datetime as dt
import errno
import hmac
import inspect
import logging
import random
import re
import time
from collections.abc import Callable

from aiosmtpd.lmtp import LMTP

from postroom.config import IngestSettings
from smtpd_ingest.spool import Received
from smtpd_ingest.writer import IntakeWriter
from storage.accounts import account_by_id, project_of_account
from storage.intake import Delivery, IntakeBatchItem

log = logging.getLogger("postroom.ingest")

# inbox+<account>.<token>[.<project>-<project token>]
_INBOX = re.compile(r"^inbox\+(\d{1,12})\.([a-z0-9]{4,64})(?:\.(\d{1,12})-([a-z0-9]{4,64}))?$")
TOKEN_CACHE_SECONDS = 5.0


def new_queue_id() -> str:
    """Return a short unique id that names one transaction in our log and the MTA's.

    The random part needs to be unique, not secret: Python's generator, not the system's
    (secrets read /dev/urandom with a system call for every message).
    """
    return f"{time.time_ns() // 1_000_000:x}".upper()[-8:] + f"{random.getrandbits(24):06X}"


def temporary_failure(error: BaseException) -> str:
    """Map our own fault to a 4xx reply, so the MTA keeps the mail and retries."""
    cause: BaseException | None = error
    while cause is not None:  # a failed rollback hides the original error in __context__
        text = str(cause).lower()
        if (
            (isinstance(cause, OSError) and cause.errno == errno.ENOSPC)
            or "disk is full" in text
            or "no space left" in text
            or cause.__class__.__name__ == "DiskFull"
        ):
            return "452 4.3.1 Insufficient system storage, try again later"
        cause = cause.__context__
    return "451 4.3.0 Temporary failure storing the message, try again later"


class IngestHandler:
    """aiosmtpd handler: validate recipients at RCPT, commit at DATA, then answer."""

    def __init__(
        self,
        settings: IngestSettings,
        writer: IntakeWriter,
        on_recorded: Callable[[list[int]], None],
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.on_recorded = on_recorded
        self._tokens: dict[tuple[str, int], tuple[str, float]] = {}  # short-lived RCPT cache

    def __dir__(self) -> list[str]:
        """Name only the hooks: aiosmtpd reflects on the handler for every connection."""
        return _HOOKS

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        target = self.resolve_recipient(address)
        if target is None:
            return "550 5.1.1 No such inbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if not hasattr(envelope, "targets"):
            envelope.targets = []
        envelope.targets.append(target)
        return "250 2.1.5 Recipient ok"

    def resolve_recipient(self, address: str) -> tuple[int, int | None] | None:
        """Return (account id, project id or None) for a valid inbox address, else None."""
        local, _, domain = address.rpartition("@")
        if domain.lower() not in self.settings.domains:
            return None
        match = _INBOX.match(local.lower())
        if not match:
            return None
        account_id, token, project_id, project_token = match.groups()
        expected = self._token("account", int(account_id), None)
        if expected is None or not hmac.compare_digest(token, expected):
            return None
        if project_id is None:
            return (int(account_id), None)
        expected = self._token("project", int(project_id), int(account_id))
        if expected is None or not hmac.compare_digest(project_token, expected):
            return None
        return (int(account_id), int(project_id))

    def _token(self, kind: str, key: int, account_id: int | None) -> str | None:
        """Return the stored token of an account or project, cached for a few seconds."""
        now = time.monotonic()
        cached = self._tokens.get((kind, key))
        if cached is not None and cached[1] > now:
            return cached[0]
        if kind == "account":
            row = account_by_id(key)
            token = row.inbox_token if row is not None else None
        else:
            row = project_of_account(account_id, key)
            token = row.reply_token if row is not None else None
        if token is not None:  # unknown ids are not cached, so a new account works at once
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[(kind, key)] = (token, now + TOKEN_CACHE_SECONDS)
        return token

    async def handle_DATA(self, server, session, envelope):
        started = time.monotonic()
        received: Received = envelope.received  # hashed while it arrived
        queue_id = new_queue_id()
        lmtp = isinstance(server, LMTP)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        peer = _peer_text(session.peer)
        deliveries = tuple(
            Delivery(
                queue_id=queue_id,
                account_id=account_id,
                recipient=rcpt.lower(),
                project_hint=project_id,
                mail_from=envelope.mail_from or "",
                peer=peer,
                helo=session.host_name or "",
                protocol="lmtp" if lmtp else "smtp",
                received_at=now,
            )
            for rcpt, (account_id, project_id) in zip(
                envelope.rcpt_tos, envelope.targets, strict=True
            )
        )
        try:
            item = IntakeBatchItem(received.sha256, received.size, received.raw, deliveries,
                                   spool=received.spool)  # fmt: skip
            recorded = await self.writer.record(item)
        except Exception as error:  # noqa: BLE001 - every fault of ours is a 4xx, never 5xx
            status = temporary_failure(error)
            log.error(
                "queue_id=%s peer=%s from=<%s> to=%s size=%d result=%r error=%s: %s",
                queue_id, peer, envelope.mail_from, ",".join(envelope.rcpt_tos), received.size,
                status[:9], error.__class__.__name__, error,
            )  # fmt: skip
            return "\r\n".join([status] * len(deliveries)) if lmtp else status
        finally:
            received.discard()  # stored, or refused with 4xx and sent again by the MTA
        new_ids = [r.intake_id for r in recorded if r.is_new]
        if new_ids:
            try:
                self.on_recorded(new_ids)
            except Exception:  # committed: the next start takes up pending intakes
                log.exception(
                    "queue_id=%s stored, but handing it to the processor failed", queue_id
                )
        duplicates = len(recorded) - len(new_ids)
        log.info(
            "queue_id=%s peer=%s proto=%s from=<%s> to=%s size=%d result=250%s time=%.1fms",
            queue_id, peer, deliveries[0].protocol, envelope.mail_from,
            ",".join(envelope.rcpt_tos), received.size,
            f" duplicates={duplicates}" if duplicates else "",
            (time.monotonic() - started) * 1000,
        )  # fmt: skip
        if lmtp:
            return "\r\n".join(
                f"250 2.1.5 <{rcpt}> Ok: queued as {queue_id}" for rcpt in envelope.rcpt_tos
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("session error: %s", error)
        return temporary_failure(error)


_HOOKS = sorted(name for name in dir(IngestHandler) if name.startswith(("handle_", "auth_")))
# aiosmtpd reads the EHLO hook's signature for every connection (to tell its two forms
# apart); worked out once here, inspect takes it from __signature__ (a third of the time).
IngestHandler.handle_EHLO.__signature__ = inspect.signature(IngestHandler.handle_EHLO)


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix")
