"""Decide every reply code of a mail transaction; hand accepted bytes to the intake writer."""

from __future__ import annotations

import datetime as dt
import errno
import hmac
import inspect
import logging
import random
import re
import secrets
import time
from collections.abc import Callable

from aiosmtpd.lmtp import LMTP

from domain.bounces import bounce_target, is_bounce_local_part
from postroom.config import IngestSettings
from smtpd_ingest.spool import Received
from smtpd_ingest.writer import IntakeWriter
from storage.intake import Delivery, IntakeBatchItem
from storage.lookup import Tokens, inbox_tokens, reply_tokens

log = logging.getLogger("postroom.ingest")

# inbox+<account>.<token>[.<project>-<project token>]
_INBOX = re.compile(r"^inbox\+(\d{1,12})\.([a-z0-9]{4,64})(?:\.(\d{1,12})-([a-z0-9]{4,64}))?$")
TOKEN_CACHE_SECONDS = 5.0
# C0 controls, DEL, and lone surrogates (bytes that were not UTF-8): no address or host name
# has them, and PostgreSQL refuses NUL; it is the client's fault, so a 5xx, not a 4xx loop
BAD_ENVELOPE_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


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


def _signature_kept(hook):
    """Keep a hook's signature on it, worked out once, where inspect looks first.

    aiosmtpd 1.4.6 reads the EHLO hook's signature for every connection (SMTP.__init__, to
    tell its two forms apart); from __signature__ that costs a third of working it out.
    """
    hook.__signature__ = inspect.signature(hook)
    return hook


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
        # short-lived RCPT cache: (kind, id, account id) -> (tokens or None, expiry)
        self._tokens: dict[tuple[str, int, int | None], tuple[Tokens | None, float]] = {}

    def __dir__(self) -> list[str]:
        """Name only the hooks: aiosmtpd reflects on the handler for every connection."""
        return _HOOKS

    @_signature_kept
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if BAD_ENVELOPE_TEXT.search(hostname):
            return [BAD_HOSTNAME]
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_HELO(self, server, session, envelope, hostname):
        if BAD_ENVELOPE_TEXT.search(hostname):
            return BAD_HOSTNAME
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if BAD_ENVELOPE_TEXT.search(address):
            return "501 5.1.7 Bad sender address syntax"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if BAD_ENVELOPE_TEXT.search(address):
            return "501 5.1.3 Bad recipient address syntax"
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        target = self.check_recipient(address)
        if isinstance(target, str):
            return target
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if not hasattr(envelope, "targets"):
            envelope.targets = []
        envelope.targets.append(target)
        return "250 2.1.5 Recipient ok"

    def resolve_recipient(self, address: str) -> tuple[int, int | None] | None:
        """Return (account id, project id or None) for a valid inbox address, else None."""
        target = self.check_recipient(address)
        return None if isinstance(target, str) else target

    def check_recipient(self, address: str) -> tuple[int, int | None] | str:
        """Return (account id, project id or None) for a valid inbox address, else the reply
        that refuses it: 550 5.1.1 for no such inbox, 550 5.1.6 for a replaced address whose
        grace period is over. A replaced address within its grace period is valid.

        An unknown id costs what a known one does (the same lookup, cached alike, and a
        comparison with a dummy token), so the time of the answer tells nothing about it.
        """
        local, _, domain = address.rpartition("@")
        if domain.lower() not in self.settings.domains:
            return NO_SUCH_INBOX
        if is_bounce_local_part(local):  # a bounce of our mail (domain.bounces): its project
            return bounce_target(local) or NO_SUCH_INBOX
        match = _INBOX.match(local.lower())
        if not match:
            return NO_SUCH_INBOX
        account_id, token, project_id, project_token = match.groups()
        verdicts = [self._token_verdict("account", int(account_id), None, token)]
        if verdicts[0] not in _VALID:
            return verdicts[0]
        if project_id is not None:
            key = (int(project_id), int(account_id))
            verdicts.append(self._token_verdict("project", *key, project_token))
            if verdicts[1] not in _VALID:
                return verdicts[1]
        if _OLD in verdicts:
            log.info("rcpt=<%s> is a replaced address, accepted within its grace period", address)
        return (int(account_id), None if project_id is None else int(project_id))

    def _token_verdict(self, kind: str, key: int, account_id: int | None, given: str) -> str:
        """Compare a given token with the stored ones of an account or project.

        What was read is cached for TOKEN_CACHE_SECONDS, for known and unknown ids alike; only
        a match with the current token is answered from the cache. Anything else (an old token,
        a wrong one) is read again first, so that no cached read refuses a token made since,
        or accepts an old one that has been replaced again since; an old token's grace period
        is compared with the clock at every RCPT, never cached.
        """
        tokens, fresh = self._cached_tokens(kind, key, account_id)
        verdict = _verdict(tokens, given)
        if verdict != _CURRENT and not fresh:
            tokens, _ = self._cached_tokens(kind, key, account_id, read=True)
            verdict = _verdict(tokens, given)
        return verdict

    def _cached_tokens(
        self, kind: str, key: int, account_id: int | None, *, read: bool = False
    ) -> tuple[Tokens | None, bool]:
        """The tokens of an account or project (None: no such id), and whether they were read
        just now (else they come from the cache)."""
        now = time.monotonic()
        cached = self._tokens.get((kind, key, account_id))
        if cached is not None and cached[1] > now and not read:
            return cached[0], False
        tokens = inbox_tokens(key) if kind == "account" else reply_tokens(account_id, key)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[(kind, key, account_id)] = (tokens, now + TOKEN_CACHE_SECONDS)
        return tokens, True

    async def handle_DATA(self, server, session, envelope):
        started = time.monotonic()
        received: Received = envelope.received  # hashed while it arrived
        queue_id = new_queue_id()
        lmtp = isinstance(server, LMTP)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        peer = peer_text(session.peer)
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
            item = IntakeBatchItem(
                received.sha256, received.size, received.raw, deliveries, spool=received.spool
            )
            recorded = await self.writer.record(item)
        except Exception as error:  # noqa: BLE001 - every fault of ours is a 4xx, never 5xx
            status = temporary_failure(error)
            log.error(
                "queue_id=%s peer=%s from=<%s> to=%s size=%d result=%r error=%s: %s",
                queue_id,
                peer,
                envelope.mail_from,
                ",".join(envelope.rcpt_tos),
                received.size,
                status[:9],
                error.__class__.__name__,
                error,
            )
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
            queue_id,
            peer,
            deliveries[0].protocol,
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            received.size,
            f" duplicates={duplicates}" if duplicates else "",
            (time.monotonic() - started) * 1000,
        )
        if lmtp:
            return "\r\n".join(
                f"250 2.1.5 <{rcpt}> Ok: queued as {queue_id}" for rcpt in envelope.rcpt_tos
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("session error: %s", error)
        return temporary_failure(error)


BAD_HOSTNAME = "501 5.5.4 Bad host name syntax"
NO_SUCH_INBOX = "550 5.1.1 No such inbox here"
# RFC 3463 X.1.6: the mailbox has moved, no forwarding address
REPLACED = "550 5.1.6 This address has been replaced by a new one and takes no more mail"
# what an unknown id's token, or a missing old one, is compared with
_DUMMY_TOKEN = secrets.token_hex(8)
# verdicts besides the two refusals: the token is the current one, or the old one within its
# grace period
_CURRENT, _OLD = "current", "old"
_VALID = (_CURRENT, _OLD)


def _verdict(tokens: Tokens | None, given: str) -> str:
    """What the given token is to these tokens: _CURRENT, _OLD (the replaced one, within its
    grace period), REPLACED (the replaced one, after it) or NO_SUCH_INBOX.

    Two comparisons whatever is stored (a random dummy stands in for a missing token), each
    with the given token second: compare_digest's time follows that argument's length.
    """
    current = hmac.compare_digest(tokens.current if tokens else _DUMMY_TOKEN, given)
    previous = tokens.previous if tokens and tokens.previous_until else None
    old = hmac.compare_digest(previous or _DUMMY_TOKEN, given)
    if tokens is None:
        return NO_SUCH_INBOX
    if current:
        return _CURRENT
    if old and previous is not None:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return _OLD if now < tokens.previous_until else REPLACED
    return NO_SUCH_INBOX


_HOOKS = sorted(name for name in dir(IngestHandler) if name.startswith(("handle_", "auth_")))


def peer_text(peer: object) -> str:
    """Return the client's address and port as the log shows them, or "unix"."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix")
