"""Turn a stored intake into a filed entry: load raw, parse, route, store."""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Future
from dataclasses import replace
from typing import Protocol

from domain.bounces import entry_of_bounce_address, is_bounce_local_part
from domain.open_rules import settle_inbound
from domain.routing import Decision, Inbound, Rule, decision_of, explain, route_many
from smtpd_ingest.parse import Address, ParsedMail, ParseError, header_fields
from storage.bounces import BounceMark, intake_recipients, match_outbound
from storage.db import database_unavailable, driver_error, drop_broken_connection
from storage.entries import mark_intake_failed
from storage.filing import AttachmentRecord, Filed, InboundRecord, file_inbound, refile
from storage.intake import (
    Waiting,
    count_attempts,
    load_raw,
    load_raws,
    uncount_attempts,
    waiting_intakes,
)
from storage.models import Entry, Intake, utcnow

log = logging.getLogger(__name__)
BATCH_BYTES = 8 << 20  # raw bytes routed and filed together, at most (one big mail alone)
OUT_OF_MEMORY = "parsing it needed more memory than a parser may use"
MAX_ATTEMPTS = 3  # tries of an intake that never finished (a crash) before it is quarantined
QUARANTINED = (
    "quarantined: processing it stopped {attempts} times before it finished (the filing"
    " process crashed or was stopped); stored raw, try again with `postroom reprocess`"
)
FILING_FAILED = (
    "quarantined: the database refused to file it ({reason}); stored raw, try again with"
    " `postroom reprocess`"
)
RETRY_SECONDS = (0.1, 0.2, 0.4, 0.8)  # waits before filing again while the database is busy


class Parser(Protocol):
    capacity: int  # parses that can run at once in workers
    inline_bytes: int  # mail up to this size is parsed in the calling process
    timeout: float  # seconds a parse in a worker may take

    def parse(self, raw: bytes) -> ParsedMail: ...

    def parse_here(self, raw: bytes) -> ParsedMail | ParseError | None: ...

    def start(self, raw: bytes) -> Future: ...

    def restart(self) -> None: ...

    def submit_many(self, raws: list[bytes]) -> list: ...

    def collect(self, pending: list) -> list[ParsedMail | ParseError]: ...


Result = ParsedMail | ParseError | Exception  # an Exception: parsing failed by a fault of ours


class Tries:
    """Count each try of an intake before it begins, so that a crash during it counts; a try
    that the database ended (away, busy, full: see database_unavailable) is given back, as
    it says nothing about the mail."""

    def __init__(self) -> None:
        self._owed: set[int] = set()  # given back while the database was away: not counted again

    def begin(self, intake_ids: list[int]) -> None:
        """Count a try of each intake (one owed a try back starts on the try it has)."""
        new = [i for i in intake_ids if i not in self._owed]
        if new:
            count_attempts(new)
        self._owed.difference_update(intake_ids)

    def give_back(self, intake_ids: list[int]) -> None:
        """Uncount the last try of each intake; if the database is away for that too, the
        next try of it in this process is not counted. Never raises."""
        if not intake_ids:
            return
        try:
            uncount_attempts(intake_ids)
        except Exception:
            log.warning(
                "intakes %s: giving back a try failed; their next try is not counted",
                intake_ids,
                exc_info=True,
            )
            self._owed.update(intake_ids)


def left_pending(intake_ids: list[int], error: BaseException, tries: Tries | None) -> None:
    """The database is away or busy: the intakes stay pending (for the sweep or the next
    start), their try given back."""
    log.warning(
        "intakes %s left pending, the database is away or busy: %s", intake_ids, _reason(error)
    )
    drop_broken_connection()
    if tries is not None:
        tries.give_back(intake_ids)


def _reason(error: BaseException) -> str:
    """The driver's exception in one short line, as an entry shows it."""
    cause = driver_error(error)
    text = str(cause).strip().splitlines()
    return f"{cause.__class__.__name__}: {text[0] if text else ''}"[:300]


def process_intake(intake_id: int, parser: Parser, holder: str | None = None) -> Filed | None:
    """Parse (in a worker, for the pool), route and file one intake now, however often it
    was tried before (reprocess); failures are recorded, never raised. With a holder, only
    while the intake is claimed by it (storage.intake)."""
    found = waiting_intakes([intake_id], holder)
    if not found:
        return None
    intake = found[0]
    tries = Tries()
    try:
        tries.begin([intake.id])
        raw = load_raws([intake.sha256])[intake.sha256]
    except Exception as error:
        if not database_unavailable(error):
            raise
        left_pending([intake.id], error, tries)
        return None
    try:
        parsed: Result = parser.parse(raw)
    except ParseError as error:
        parsed = error
    except MemoryError:
        parsed = ParseError(OUT_OF_MEMORY)
    except Exception as error:  # a fault of ours, not the mail's
        log.exception("intake %s: parsing failed", intake.id)
        parsed = error
    filed = file_parsed([(intake, raw, parsed)], tries, holder)
    return filed[0] if filed else None


def file_parsed(
    items: list[tuple[Waiting, bytes, Result]],
    tries: Tries | None = None,
    holder: str | None = None,
) -> list[Filed]:
    """Route parse results and file them in one transaction; never raises. With a holder
    (an ingest process), only the intakes it still claims are filed or marked failed.

    When the database is away or busy (database_unavailable), the intakes stay pending (for
    the sweep or the next start) and `tries` gives their try back. Any other error is the
    data's: a batch is filed again one by one, and a message that fails alone is filed raw
    with the database's reason (quarantined, for `postroom reprocess`).
    """
    items = [i for i in items if not _failed(i, holder)]
    if len(items) > 1 and sum(i.size for i, _, _ in items) > BATCH_BYTES:
        return [f for part in _by_size(items) for f in file_parsed(part, tries, holder)]
    if not items:
        return []
    intakes = [i for i, _, _ in items]
    try:
        records = assemble_records(
            [(i.account_id, raw, i.project_hint, result) for i, raw, result in items],
            verp=_verp_entries(items),
        )
        filed = _file_with_retries(
            [(i.id, r) for i, r in zip(intakes, records, strict=True)], holder
        )
    except Exception as error:
        if database_unavailable(error):
            left_pending([i.id for i in intakes], error, tries)
            return []
        if len(items) > 1:
            log.warning("filing a batch of %d failed (%s); one by one", len(items), _reason(error))
            return [f for item in items for f in file_parsed([item], tries, holder)]
        log.exception("intake %s: filing failed", intakes[0].id)
        return _file_raw(intakes[0], items[0][1], _reason(error), tries, holder)
    _log_filed(intakes, filed)
    return filed


def _file_raw(
    intake: Waiting, raw: bytes, reason: str, tries: Tries | None, holder: str | None
) -> list[Filed]:
    """File a message the database refused unparsed, with the reason; if even that fails,
    mark its intake failed (the raw message stays, for `postroom reprocess`)."""
    parsed = ParseError(FILING_FAILED.format(reason=reason))
    try:
        [record] = assemble_records([(intake.account_id, raw, intake.project_hint, parsed)])
        filed = _file_with_retries([(intake.id, record)], holder)
    except Exception as error:
        if database_unavailable(error):
            left_pending([intake.id], error, tries)
        else:
            log.exception("intake %s: filing it raw failed too", intake.id)
            _fail(intake, error, holder)
        return []
    _log_filed([intake], filed)
    return filed


def _failed(item: tuple[Waiting, bytes, Result], holder: str | None) -> bool:
    """Record a parse that failed by a fault of ours (not the mail's); True if it did."""
    intake, _, result = item
    if not isinstance(result, Exception) or isinstance(result, ParseError):
        return False
    _fail(intake, result, holder)
    return True


def _fail(intake: Waiting, error: Exception, holder: str | None) -> None:
    try:
        found = Intake.get_by_id(intake.id)
        if found.state == "done" or (holder is not None and found.claimed_by != holder):
            return  # another ingest filed it meanwhile, or claimed it (this one was slow)
        log.error("queue_id=%s intake=%s processing failed: %s", intake.queue_id, intake.id, error)
        mark_intake_failed(intake.id, _reason(error))
    except Exception:  # the database is away: it stays pending
        log.exception("intake %s left pending", intake.id)


def quarantine(intakes: list[Waiting], holder: str | None = None) -> list[Filed]:
    """File intakes whose processing never finished unparsed, with the reason; never raises."""
    if not intakes:
        return []
    for intake in intakes:
        log.warning(
            "queue_id=%s intake=%s quarantined after %d tries",
            intake.queue_id,
            intake.id,
            intake.attempts,
        )
    try:
        raws = load_raws([i.sha256 for i in intakes])
    except Exception:  # the database is away: they stay pending for the sweep
        log.exception("intakes %s left pending", [i.id for i in intakes])
        return []
    return file_parsed(
        [(i, raws[i.sha256], ParseError(QUARANTINED.format(attempts=i.attempts))) for i in intakes],
        holder=holder,
    )


def _log_filed(intakes: list[Waiting], filed: list[Filed]) -> None:
    queue_ids = {i.id: i.queue_id for i in intakes}
    for item in filed:
        log.info(
            "queue_id=%s entry=%s project=%s reason=%r%s",
            queue_ids[item.intake_id],
            item.entry_id,
            item.project_id,
            explain(Decision(Rule(item.route_rule), item.route_detail, candidates=item.candidates)),
            f" parse_error={item.parse_error!r}" if item.parse_error else "",
        )


def _by_size(items: list[tuple[Waiting, bytes, Result]]) -> list[list]:
    """Split a batch so that big messages are routed and filed one at a time."""
    parts: list[list] = [[]]
    held = 0
    for item in items:
        if parts[-1] and held + item[0].size > BATCH_BYTES:
            parts.append([])
            held = 0
        parts[-1].append(item)
        held += item[0].size
    return parts


def _file_with_retries(items: list, holder: str | None) -> list[Filed]:
    """File; while the database is busy, again a few times (a lock held a moment)."""
    for wait in RETRY_SECONDS:
        try:
            return file_inbound(items, holder)
        except Exception as error:
            if not database_unavailable(error):
                raise
            time.sleep(wait)
    return file_inbound(items, holder)


def reprocess_entry(entry: Entry, parser: Parser) -> InboundRecord:
    """Parse a filed entry's raw message again, route it (an entry filed under a project
    keeps its decision) and write it again through storage.filing, as live mail is filed."""
    intake = Intake.get_or_none(Intake.entry == entry.id)
    raw = load_raw(entry.raw_sha256)
    try:
        parsed: ParsedMail | ParseError = parser.parse(raw)
    except ParseError as error:
        parsed = error
    hint = intake.project_hint if intake else None
    [record] = assemble_records([(entry.account_id, raw, hint, parsed)], [decision_of(entry)])
    refile(entry.id, record)
    return record


def _verp_entries(items: list[tuple[Waiting, bytes, Result]]) -> list[int | None]:
    """The outbound entry each bounce was sent back to, named by its VERP recipient
    (domain.bounces; checked at RCPT, and again here); None for other mail."""
    bounces = [i.id for i, _, parsed in items if isinstance(parsed, ParsedMail) and parsed.bounce]
    recipients = intake_recipients(bounces) if bounces else {}
    found: list[int | None] = []
    for intake, _, _ in items:
        local = recipients.get(intake.id, "").rpartition("@")[0]
        found.append(entry_of_bounce_address(local) if is_bounce_local_part(local) else None)
    return found


def _bounce_of(
    account_id: int, mail: ParsedMail | ParseError, verp: int | None
) -> tuple[tuple[int, int | None] | None, BounceMark | None]:
    """The outbound mail a bounce returns ((entry id, project id), or None), and what to
    record on it (None unless a recipient failed for good)."""
    report = mail.bounce if isinstance(mail, ParsedMail) else None
    if report is None:
        return None, None
    found = match_outbound(
        account_id,
        entry_id=verp,
        message_ids=report.message_ids,
        recipients=report.recipients,
        now=utcnow(),
    )
    if found is None or not report.failed:
        return found, None
    recipient = report.recipients[0] if report.recipients else ""
    mark = BounceMark(found[0], report.status, report.diagnostic, recipient)
    return found, mark


def assemble_records(
    items: list[tuple[int, bytes, int | None, ParsedMail | ParseError]],
    kept: list[Decision] | None = None,
    verp: list[int | None] | None = None,
) -> list[InboundRecord]:
    """Route a batch of parse results (reading what routing needs once) into records;
    `kept`: the decisions the entries have, when filed again (reprocess); `verp`: the
    outbound entry each was sent back to as a bounce (_verp_entries)."""
    mails = [parsed for _, _, _, parsed in items]
    bounces = [
        _bounce_of(account_id, parsed, verp[number] if verp else None) if not kept else (None, None)
        for number, (account_id, _, _, parsed) in enumerate(items)
    ]
    for _, raw, _, parsed in items:
        if isinstance(parsed, ParseError) and not parsed.subject and parsed.sender is None:
            # a reason of ours (a timeout, quarantine): its header block is read here
            parsed.subject, parsed.sender = header_fields(raw)
    decisions = route_many(
        [
            replace(
                _inbound(account_id, mail, hint, kept[number] if kept else None),
                bounce_of=bounces[number][0],
            )
            for number, ((account_id, _, hint, _), mail) in enumerate(
                zip(items, mails, strict=True)
            )
        ]
    )
    records = [
        _record(raw, parsed, decision, bounce)
        for (_, raw, _, parsed), decision, (_, bounce) in zip(
            items, decisions, bounces, strict=True
        )
    ]
    # auto-replies start done, bounces open, as the account says (domain.open_rules)
    return settle_inbound(records, [account_id for account_id, _, _, _ in items])


def _inbound(
    account_id: int, mail: ParsedMail | ParseError | None, hint: int | None, kept: Decision | None
) -> Inbound:
    """What routing looks at in a parsed mail (a ParseError: only its sender is known)."""
    if not isinstance(mail, ParsedMail):
        sender = mail.sender if isinstance(mail, ParseError) else None
        return Inbound(
            account_id,
            sender=_clean(sender.address) if sender else "",
            project_hint=hint,
            parsed=False,
            kept=kept,
        )
    return Inbound(
        account_id,
        sender=_clean(mail.from_.address) if mail.from_ else "",
        message_id=_message_id(mail),
        answers=tuple(_clean(i) for i in mail.in_reply_to + mail.references),
        project_hint=hint,
        kept=kept,
    )


def _message_id(mail: ParsedMail) -> str | None:
    return _clean(mail.message_id)[:998] if mail.message_id else None


def _record(
    raw: bytes, parsed: ParsedMail | ParseError, decision: Decision, bounce: BounceMark | None
) -> InboundRecord:
    if isinstance(parsed, ParseError):
        subject, sender = parsed.subject, parsed.sender  # read in assemble_records
        return InboundRecord(
            **_route_fields(decision),
            parse_error=str(parsed) or "unparseable message",
            subject=_clean(subject),
            from_address=_clean(sender.address) if sender else "",
            from_name=_clean(sender.name) if sender else "",
        )
    mail = parsed
    return InboundRecord(
        **_route_fields(decision),
        parse_warnings=tuple((_clean(w.item), w.code, _clean(w.detail)) for w in mail.warnings),
        subject=_clean(mail.subject),
        from_address=_clean(mail.from_.address) if mail.from_ else "",
        from_name=_clean(mail.from_.name) if mail.from_ else "",
        to=_pairs(mail.to),
        cc=_pairs(mail.cc),
        reply_to=_pairs(mail.reply_to),
        text=_clean(mail.text or mail.html_text),
        html=_clean(mail.html),
        html_safe=_clean(mail.html_safe),
        html_note=mail.html_note,
        occurred_at=_naive_utc(mail.date),
        message_id=_message_id(mail),
        in_reply_to=tuple(_clean(i) for i in mail.in_reply_to),
        references=tuple(_clean(i) for i in mail.references),
        auto_submitted=mail.auto_submitted,
        is_bounce=mail.is_bounce or mail.bounce is not None,
        bounce=bounce,
        is_list=mail.is_list,
        attachments=tuple(
            AttachmentRecord(
                filename=_clean(a.filename),
                original_filename=_clean(a.original_filename),
                content_type=_clean(a.content_type),
                data=a.data,
                content_id=_clean(a.content_id)[:998] if a.content_id else None,
                inline=a.inline,
            )
            for a in mail.attachments
        ),
    )


def _route_fields(decision: Decision) -> dict:
    """The decision as storage keeps it."""
    return {
        "project_id": decision.project_id,
        "route_rule": decision.rule.value,
        "route_detail": decision.detail,
        "candidates": decision.candidates,
        "category": decision.category,
        "joins": decision.joins,
        "spam": decision.spam,
    }


def _clean(value: str) -> str:
    """Drop NUL characters, which PostgreSQL text cannot hold."""
    return value.replace("\x00", "")


def _pairs(addresses: tuple[Address, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((_clean(a.name), _clean(a.address)) for a in addresses)  # cut by filing


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
