"""Send the queued mail to customers: the worker's outbound job (send_due).

Each account's mail goes through its own server if it has one, else through [outbound]
smtp_url, with exponential backoff per message.

Exactly once, as far as SMTP allows: a worker first claims a message in a committed
transaction (its next_attempt_at moves ahead, compare-and-set), so no two workers send it at
the same time. A claim lasts [outbound] session_seconds plus CLAIM_MARGIN_SECONDS and every
session is ended at session_seconds (postroom.smtp_client), so no claim runs out while its
message is being sent. What is left is at-least-once: if the process dies after the server's
250 and before the "sent" commit, the claim expires and the mail goes out again, with the
same Message-ID (most clients then show it once).

One account never holds up another: each account's mail goes over one session in a thread of
its own (at most [outbound] parallel_accounts at once per process), with a short connect
timeout. A pass waits at most PASS_WAIT_SECONDS for the sessions it started; a slower one
goes on, and later passes leave its account alone until it ends, so the others' mail keeps
flowing. A server that cannot be reached backs its account off (ACCOUNT_BACKOFF) without
touching the others. An account's own server is checked against [outbound] allowed_ports and
allow_private_hosts before every connection, which goes to the checked addresses only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import smtplib
import threading
import time
from dataclasses import dataclass, field

from peewee import DatabaseError

from domain.bounces import bounce_address
from domain.categories import category
from domain.open_rules import defaults_of
from domain.routing import Rule
from postroom.config import Settings
from postroom.outbound import build_mime, sender_of_account, sender_of_mail
from postroom.outbound_checks import OutboundError, check_smtp_host
from postroom.smtp_client import (
    Session,
    SmtpServer,
    connect,
    failure_words,
    parse_smtp_url,
    permanent,
    reached_the_server,
)
from storage.models import OutboundMessage, database, utcnow
from storage.outbound import (
    claim,
    due_accounts,
    due_messages,
    mark_failed,
    mark_retry,
    mark_sent,
)

log = logging.getLogger("postroom.outbound")

CLAIM_MARGIN_SECONDS = 300  # a claim outlasts the longest session by this much
PASS_WAIT_SECONDS = 5.0  # a pass reports the sessions that end in this time; the rest go on
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
ACCOUNT_BACKOFF = (30, 600)  # seconds an unreachable server is left alone: first, at most
MESSAGES_PER_PASS = 50  # of one account; the rest wait for the next pass


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


@dataclass
class _Session:
    """One account's sending in a thread of its own."""

    key: tuple[str, int]
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[int, int] = (0, 0)  # (sent, failed attempts)
    pass_over: bool = False  # the pass that started it has returned (a later one reports it)


_sessions: dict[tuple[str, int], _Session] = {}  # in flight, per process
_unreported: list[_Session] = []  # ended after their pass returned
_sessions_lock = threading.Lock()


def _key(account_id: int) -> tuple[str, int]:
    return str(database.database), account_id


def send_due(
    settings: Settings, now: dt.datetime | None = None, *, wait: float = PASS_WAIT_SECONDS
) -> tuple[int, int]:
    """Start sending the queued mail that is due; for the worker.

    Returns (sent, failed attempts) of the sessions that ended in this call: those it started
    that end within `wait` seconds, and earlier ones that ended after their pass returned.
    Accounts whose session is still running are left alone.
    """
    now = now or utcnow()
    default = default_server(settings)
    exclude = _paused_accounts(now, settings, default) + _busy_accounts()
    started = []
    for account_id in due_accounts(now, default_route=default is not None, exclude=exclude):
        route = _route(account_id, settings, default)
        if route is None or _paused(account_id, route.server, now):
            continue
        session = _start(route, settings, now)
        if session is not None:
            started.append(session)
        elif _full(settings):
            break  # every slot is taken; the rest waits for a later pass
    until = time.monotonic() + wait
    for session in started:
        session.done.wait(max(0.0, until - time.monotonic()))
    return _report(started)


def wait_for_sessions(timeout: float) -> bool:
    """Wait until no session of this process is running; False if one still is."""
    until = time.monotonic() + timeout
    while True:
        with _sessions_lock:
            running = list(_sessions.values())
        if not running:
            return True
        if not running[0].done.wait(max(0.0, until - time.monotonic())):
            return False


def _busy_accounts() -> tuple[int, ...]:
    here = str(database.database)
    with _sessions_lock:
        return tuple(key[1] for key in _sessions if key[0] == here)


def _full(settings: Settings) -> bool:
    with _sessions_lock:
        return len(_sessions) >= settings.outbound.parallel_accounts


def _start(route: _Route, settings: Settings, now: dt.datetime) -> _Session | None:
    """Send the route's mail in a thread of its own; None if it is sending or slots are full."""
    session = _Session(_key(route.account_id))
    with _sessions_lock:
        if session.key in _sessions or len(_sessions) >= settings.outbound.parallel_accounts:
            return None
        _sessions[session.key] = session

    def run() -> None:
        result = (0, 0)
        try:
            result = _send_account(route, settings, now)
        finally:
            with _sessions_lock:
                session.result = result
                del _sessions[session.key]
                session.done.set()
                if session.pass_over:
                    _unreported.append(session)

    # a daemon: a stopping worker does not wait for a slow server; the claim runs out
    name = f"outbound-{route.account_id}"
    threading.Thread(target=run, name=name, daemon=True).start()
    return session


def _report(started: list[_Session]) -> tuple[int, int]:
    """Totals of the sessions started here that ended, and of earlier ones not yet told."""
    here = str(database.database)
    with _sessions_lock:
        for session in started:
            session.pass_over = True
        ended = [session for session in started if session.done.is_set()]
        ended += [session for session in _unreported if session.key[0] == here]
        _unreported[:] = [session for session in _unreported if session.key[0] != here]
    return sum(s.result[0] for s in ended), sum(s.result[1] for s in ended)


def default_server(settings: Settings) -> SmtpServer | None:
    """The [outbound] smtp_url server; None if there is none or it cannot be read (logged)."""
    if not settings.outbound.smtp_url:
        return None
    try:
        return parse_smtp_url(settings.outbound.smtp_url)
    except OutboundError as error:
        log.error("outbound.smtp_url: %s; mail without an own server stays queued", error)
        return None


# --- for other mail of an account (postroom.notify_mail): the same route, rules and pauses ---
Route = _Route


def account_route(account_id: int, settings: Settings) -> Route | None:
    """Where the account's mail goes now: its own server (Settings), else [outbound] smtp_url;
    None when it has neither."""
    return _route(account_id, settings, default_server(settings))


def open_route(route: Route, settings: Settings) -> Session:
    """A session with the route's server, its own server checked against the [outbound] rules
    (OutboundError), as for mail to customers."""
    return _open(route, settings)


def route_paused(route: Route, now: dt.datetime) -> bool:
    """True while the account's server backs off after it could not be reached."""
    return _paused(route.account_id, route.server, now)


def pause_route(route: Route, now: dt.datetime) -> None:
    """The account's server could not be reached: its mail (all of it) waits a while."""
    _pause(route, now)


def resume_route(route: Route) -> None:
    """The account's server took mail again: its back-off starts afresh next time."""
    _resume(route.account_id)


def _route(account_id: int, settings: Settings, default: SmtpServer | None) -> _Route | None:
    name, address, server = sender_of_account(account_id, settings)
    if server is None and default is None:
        return None
    return _Route(account_id, name, address, server or default, server is not None)


def _send_account(route: _Route, settings: Settings, now: dt.datetime) -> tuple[int, int]:
    """Send one account's due mail over one session; stop at a server that cannot be reached."""
    sent = failed = 0
    client: Session | None = None
    session_seconds = settings.outbound.session_seconds
    claim_for = dt.timedelta(seconds=session_seconds + CLAIM_MARGIN_SECONDS)
    try:
        for message_id, seen in due_messages(now, route.account_id, MESSAGES_PER_PASS):
            if client is not None and client.seconds_left() < session_seconds / 4:
                break  # no mail is begun in the session's last quarter; the next pass goes on
            # claimed past the session's end: no other worker sends it while this one may
            if not claim(message_id, seen, max(now, utcnow()) + claim_for):
                continue  # another worker has it
            outbound = OutboundMessage.get_by_id(message_id)
            try:
                sender = sender_of_mail(outbound, route.name, route.address)
                raw = build_mime(outbound, sender)
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
                _send(client, route, outbound, raw, settings.ingest.domains[0])
            except (OSError, smtplib.SMTPException, OutboundError) as error:
                failed += 1
                _record_failure(outbound, error, now, settings.outbound.max_attempts)
                if reached_the_server(error):
                    _reset(client)
                    continue
                _pause(route, now)
                break  # the rest of this account's mail waits; the other accounts go on
            _resume(route.account_id)
            mark_sent(outbound, now, route.address, sender[0])
            sent += 1
            log.info(
                "outbound %s sent to %s via %s:%s",
                outbound.entry_id,
                outbound.to_address,
                route.server.host,
                route.server.port,
            )
    except DatabaseError:
        log.exception(
            "outbound: account %s: database error; the next pass tries again", route.account_id
        )
    except Exception:  # one account's fault never stops the others'
        log.exception("outbound: account %s failed; the next pass tries again", route.account_id)
    finally:
        _close(client)
        if not database.is_closed():
            database.close()  # this thread's connection
    return sent, failed


def _open(route: _Route, settings: Settings) -> Session:
    """A session with the route's server; its own server only at addresses the rules allow."""
    addresses: tuple[str, ...] = ()
    if route.own:
        addresses = check_smtp_host(route.server.host, route.server.port, settings.outbound)
    return connect(
        route.server,
        helo=settings.ingest.hostname,
        addresses=addresses,
        timeout=settings.outbound.connect_timeout_seconds,
        session_seconds=settings.outbound.session_seconds,
    )


def _send(
    client: smtplib.SMTP, route: _Route, outbound: OutboundMessage, raw: bytes, domain: str
) -> None:
    """Send one mail. Through the account's own server its address is the envelope sender
    (that server may insist on it); through [outbound] a VERP address on the ingest domain
    (domain.bounces), so a bounce names the entry it answers and comes back to postroom."""
    envelope_from = route.address if route.own else bounce_address(outbound.entry_id, domain)
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
        candidates = [
            key[1] for key, pause in _backoffs.items() if key[0] == here and pause.until > now
        ]
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
    log.warning(
        "outbound: account %s: %s:%s cannot be reached; its mail waits %d s",
        route.account_id,
        route.server.host,
        route.server.port,
        seconds,
    )


def _resume(account_id: int) -> None:
    with _backoffs_lock:
        _backoffs.pop(_key(account_id), None)


def _record_failure(
    outbound: OutboundMessage, error: BaseException, now: dt.datetime, max_attempts: int
) -> None:
    """Store the failure in our own words (users see it); the log keeps the server's reply."""
    text = failure_words(error)
    attempts = outbound.attempts + 1
    log.info("outbound %s to %s: %s (%r)", outbound.entry_id, outbound.to_address, text, error)
    if permanent(error) or attempts >= max_attempts:
        system_open = defaults_of(outbound.account_id).system  # domain.open_rules
        mark_failed(
            outbound,
            text,
            note_rule=Rule.SYSTEM.value,
            note_category=category("system"),
            note_status="open" if system_open else "done",
        )
        log.warning(
            "outbound %s to %s failed for good after %d attempts: %s",
            outbound.entry_id,
            outbound.to_address,
            attempts,
            text,
        )
        return
    delay = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    mark_retry(outbound, text, now + dt.timedelta(seconds=delay))
    log.info(
        "outbound %s to %s failed (attempt %d), next in %ds: %s",
        outbound.entry_id,
        outbound.to_address,
        attempts,
        delay,
        text,
    )
