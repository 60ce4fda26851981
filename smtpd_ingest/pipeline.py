"""Turn a stored intake into a filed entry: load raw, parse, route, store."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Protocol

from peewee import OperationalError

from smtpd_ingest.parse import Address, ParsedMail, ParseError
from smtpd_ingest.route import RouteDecision, route_many
from storage.entries import mark_intake_failed
from storage.filing import AttachmentRecord, Filed, InboundRecord, file_inbound
from storage.intake import Waiting, count_attempts, load_raws, waiting_intakes
from storage.models import Intake

log = logging.getLogger(__name__)
BATCH_BYTES = 8 << 20  # raw bytes parsed and filed together, at most (one big mail alone)
MAX_ATTEMPTS = 3  # tries of an intake that never finished (a crash) before it is quarantined
QUARANTINED = (
    "quarantined: processing it stopped {attempts} times before it finished (the filing"
    " process crashed or was stopped); stored raw, try again with `postroom reprocess`"
)


class Parser(Protocol):
    def parse(self, raw: bytes) -> ParsedMail: ...

    def parse_many(self, raws: list[bytes]) -> list[ParsedMail | ParseError]: ...

    def submit_many(self, raws: list[bytes]) -> list: ...

    def collect(self, pending: list) -> list[ParsedMail | ParseError]: ...


def process_intake(intake_id: int, parser: Parser) -> Filed | None:
    """Parse, route and file one intake now, however often it was tried before (reprocess);
    failures are recorded, never raised."""
    filed = process_intakes([intake_id], parser, retry=True)
    return filed[0] if filed else None


def process_intakes(intake_ids: list[int], parser: Parser, *, retry: bool = False) -> list[Filed]:
    """Parse a batch in parallel, route it, file it in one transaction; never raises.

    Each try is counted in the intake before it starts (a crash of this process counts
    too). An intake tried before is tried alone, parsed in a worker; one tried MAX_ATTEMPTS
    times is quarantined: filed unparsed with the reason, for `postroom reprocess` (retry).
    """
    intakes = waiting_intakes(intake_ids)
    if retry:
        return [f for i in intakes for f in _attempt([i], parser, alone=True)]
    worn = [i for i in intakes if i.attempts >= MAX_ATTEMPTS]
    tried = [i for i in intakes if 0 < i.attempts < MAX_ATTEMPTS]
    filed = _quarantine(worn)
    filed += _attempt([i for i in intakes if i.attempts == 0], parser)
    for intake in tried:
        filed += _attempt([intake], parser, alone=True)
    return filed


def _attempt(intakes: list[Waiting], parser: Parser, *, alone: bool = False) -> list[Filed]:
    """Count a try of the intakes, then parse, route and file them (see process_intakes).

    A batch that cannot be filed is filed one by one, so one bad message fails alone; when
    the database is busy or away the intakes stay pending for the next start.
    """
    if not intakes:
        return []
    if len(intakes) > 1 and sum(i.size for i in intakes) > BATCH_BYTES:
        return [f for part in _by_size(intakes) for f in _attempt(part, parser)]
    try:
        count_attempts([i.id for i in intakes])
        raws = load_raws([i.sha256 for i in intakes])
        mails = [raws[i.sha256] for i in intakes]
        parsed = [_parse_alone(parser, mails[0])] if alone else parser.parse_many(mails)
        records = assemble_records(
            [
                (i.account_id, raws[i.sha256], i.project_hint, result)
                for i, result in zip(intakes, parsed, strict=True)
            ]
        )
        filed = _file_with_retries([(i.id, r) for i, r in zip(intakes, records, strict=True)])
    except OperationalError:
        log.exception("intakes %s left pending", [i.id for i in intakes])
        return []
    except Exception as error:
        if len(intakes) == 1:
            intake = intakes[0]
            if Intake.get_by_id(intake.id).state == "done":  # another ingest filed it meanwhile
                return []
            log.exception("queue_id=%s intake=%s processing failed", intake.queue_id, intake.id)
            mark_intake_failed(intake.id, f"{error.__class__.__name__}: {error}")
            return []
        log.warning("processing a batch of %d failed (%s); one by one", len(intakes), error)
        return [f for i in intakes for f in _attempt([i], parser, alone=True)]
    _log_filed(intakes, filed)
    return filed


def _parse_alone(parser: Parser, raw: bytes) -> ParsedMail | ParseError:
    """Parse one message as parser.parse does (in a worker, for the pool)."""
    try:
        return parser.parse(raw)
    except ParseError as error:
        return error


def _quarantine(intakes: list[Waiting]) -> list[Filed]:
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


def _by_size(intakes: list[Waiting]) -> list[list[Waiting]]:
    """Split a batch so that big messages are parsed and filed one at a time."""
    parts: list[list[Waiting]] = [[]]
    held = 0
    for intake in intakes:
        if parts[-1] and held + intake.size > BATCH_BYTES:
            parts.append([])
            held = 0
        parts[-1].append(intake)
        held += intake.size
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
