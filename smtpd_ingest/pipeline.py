"""Turn a stored intake into a filed entry: load raw, parse, route, store."""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Future
from typing import Protocol

from peewee import OperationalError

from smtpd_ingest.parse import Address, ParsedMail, ParseError
from smtpd_ingest.route import RouteDecision, route_many
from storage.entries import mark_intake_failed
from storage.filing import AttachmentRecord, Filed, InboundRecord, file_inbound
from storage.intake import Waiting, count_attempts, load_raws, waiting_intakes
from storage.models import Intake

log = logging.getLogger(__name__)
BATCH_BYTES = 8 << 20  # raw bytes routed and filed together, at most (one big mail alone)
OUT_OF_MEMORY = "parsing it needed more memory than a parser may use"
MAX_ATTEMPTS = 3  # tries of an intake that never finished (a crash) before it is quarantined
QUARANTINED = (
    "quarantined: processing it stopped {attempts} times before it finished (the filing"
    " process crashed or was stopped); stored raw, try again with `postroom reprocess`"
)


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


def process_intake(intake_id: int, parser: Parser) -> Filed | None:
    """Parse (in a worker, for the pool), route and file one intake now, however often it
    was tried before (reprocess); failures are recorded, never raised."""
    found = waiting_intakes([intake_id])
    if not found:
        return None
    intake = found[0]
    try:
        count_attempts([intake.id])
        raw = load_raws([intake.sha256])[intake.sha256]
    except OperationalError:
        log.exception("intake %s left pending", intake.id)
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
    filed = file_parsed([(intake, raw, parsed)])
    return filed[0] if filed else None


def file_parsed(items: list[tuple[Waiting, bytes, Result]]) -> list[Filed]:
    """Route parse results and file them in one transaction; never raises.

    A batch that cannot be filed is filed one by one, so one bad message fails alone; when
    the database is busy or away the intakes stay pending (for the sweep or the next start).
    """
    items = [i for i in items if not _failed(i)]
    if len(items) > 1 and sum(i.size for i, _, _ in items) > BATCH_BYTES:
        return [f for part in _by_size(items) for f in file_parsed(part)]
    if not items:
        return []
    intakes = [i for i, _, _ in items]
    try:
        records = assemble_records([(i.account_id, raw, i.project_hint, result)
                                    for i, raw, result in items])  # fmt: skip
        filed = _file_with_retries([(i.id, r) for i, r in zip(intakes, records, strict=True)])
    except OperationalError:
        log.exception("intakes %s left pending", [i.id for i in intakes])
        return []
    except Exception as error:
        if len(items) == 1:
            log.exception("intake %s: filing failed", intakes[0].id)
            _fail(intakes[0], error)
            return []
        log.warning("filing a batch of %d failed (%s); one by one", len(items), error)
        return [f for item in items for f in file_parsed([item])]
    _log_filed(intakes, filed)
    return filed


def _failed(item: tuple[Waiting, bytes, Result]) -> bool:
    """Record a parse that failed by a fault of ours (not the mail's); True if it did."""
    intake, _, result = item
    if not isinstance(result, Exception) or isinstance(result, ParseError):
        return False
    _fail(intake, result)
    return True


def _fail(intake: Waiting, error: Exception) -> None:
    try:
        if Intake.get_by_id(intake.id).state == "done":  # another ingest filed it meanwhile
            return
        log.error("queue_id=%s intake=%s processing failed: %s", intake.queue_id, intake.id,
                  error)  # fmt: skip
        mark_intake_failed(intake.id, f"{error.__class__.__name__}: {error}")
    except OperationalError:
        log.exception("intake %s left pending", intake.id)


def quarantine(intakes: list[Waiting]) -> list[Filed]:
    """File intakes whose processing never finished unparsed, with the reason; never raises."""
    if not intakes:
        return []
    for intake in intakes:
        log.warning("queue_id=%s intake=%s quarantined after %d tries", intake.queue_id,
                    intake.id, intake.attempts)  # fmt: skip
    try:
        raws = load_raws([i.sha256 for i in intakes])
        records = assemble_records(
            [
                (i.account_id, raws[i.sha256], i.project_hint,
                 ParseError(QUARANTINED.format(attempts=i.attempts)))
                for i in intakes
            ]
        )  # fmt: skip
        filed = _file_with_retries([(i.id, r) for i, r in zip(intakes, records, strict=True)])
    except Exception:  # the database is away: they stay pending for the next start
        log.exception("intakes %s left pending", [i.id for i in intakes])
        return []
    _log_filed(intakes, filed)
    return filed


def _log_filed(intakes: list[Waiting], filed: list[Filed]) -> None:
    queue_ids = {i.id: i.queue_id for i in intakes}
    for item in filed:
        log.info(
            "queue_id=%s entry=%s project=%s reason=%r%s",
            queue_ids[item.intake_id], item.entry_id, item.project_id, item.route_reason,
            f" parse_error={item.parse_error!r}" if item.parse_error else "",
        )  # fmt: skip


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


def _file_with_retries(items: list, attempts: int = 5) -> list[Filed]:
    for attempt in range(attempts):
        try:
            return file_inbound(items)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def build_record(
    account_id: int, raw: bytes, project_hint: int | None, parser: Parser
) -> InboundRecord:
    """Parse and route a raw message into what storage keeps."""
    try:
        parsed: ParsedMail | ParseError = parser.parse(raw)
    except ParseError as error:
        parsed = error
    return assemble_record(account_id, raw, project_hint, parsed)


def assemble_record(
    account_id: int, raw: bytes, project_hint: int | None, parsed: ParsedMail | ParseError
) -> InboundRecord:
    """Route a parse result (or its failure) into what storage keeps."""
    return assemble_records([(account_id, raw, project_hint, parsed)])[0]


def assemble_records(
    items: list[tuple[int, bytes, int | None, ParsedMail | ParseError]],
) -> list[InboundRecord]:
    """Route a batch of parse results (reading what routing needs once) into records."""
    mails = [None if isinstance(parsed, ParseError) else parsed for _, _, _, parsed in items]
    decisions = route_many(
        [
            (account_id, mail, hint)
            for (account_id, _, hint, _), mail in zip(items, mails, strict=True)
        ]
    )
    return [
        _record(raw, parsed, decision)
        for (_, raw, _, parsed), decision in zip(items, decisions, strict=True)
    ]


def _record(raw: bytes, parsed: ParsedMail | ParseError, decision: RouteDecision) -> InboundRecord:
    if isinstance(parsed, ParseError):
        mail, parse_error = None, str(parsed) or "unparseable message"
    else:
        mail, parse_error = parsed, None
    if mail is None:
        return InboundRecord(
            project_id=decision.project_id,
            route_reason=decision.reason,
            candidates=decision.candidates,
            parse_error=parse_error,
            subject=_clean(_fallback_subject(raw)),
            spam=decision.spam,
        )
    return InboundRecord(
        project_id=decision.project_id,
        route_reason=decision.reason,
        candidates=decision.candidates,
        spam=decision.spam,
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
        message_id=_clean(mail.message_id)[:998] if mail.message_id else None,
        in_reply_to=tuple(_clean(i) for i in mail.in_reply_to),
        references=tuple(_clean(i) for i in mail.references),
        auto_submitted=mail.auto_submitted,
        is_bounce=mail.is_bounce,
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


def _clean(value: str) -> str:
    """Drop NUL characters, which PostgreSQL text cannot hold."""
    return value.replace("\x00", "")


def _pairs(addresses: tuple[Address, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((_clean(a.name)[:255], _clean(a.address)[:255]) for a in addresses)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _fallback_subject(raw: bytes) -> str:
    """Pick the Subject line out of raw bytes for a message the parser could not read."""
    lines = raw[:65536].split(b"\n")
    for number, line in enumerate(lines):
        if line[:8].lower() != b"subject:":
            continue
        folded = [line[8:]]
        for following in lines[number + 1 :]:
            if following[:1] not in (b" ", b"\t"):
                break
            folded.append(following)
        return " ".join(b" ".join(folded).decode("utf-8", "replace").split())[:500]
    return ""
