"""Which project received mail belongs to, and why: a structured decision, and its words.

Routing is a pure function over the facts storage reads for a whole batch at once
(storage.lookup.RoutingFacts: a few queries per batch, none per message). Its rules, in order:

1. blocked: the sender or its @domain is on the account's block list (filed as spam; a
   bounce too, which then marks nothing);
2. bounce: a bounce matched to the outbound mail it returns (smtpd_ingest/pipeline.py,
   storage.bounces) goes to that mail's project;
3. thread: the mail answers (In-Reply-To, References) a message filed under a project, or
   one routed to a project earlier in the same batch (its entry's id is known once filed);
4. project reply address: it was sent to a project's own reply address;
5. sender: the sender is a customer address of exactly one active project;
6. unassigned, with candidates: the sender is a customer address of several projects, or
   unknown with projects at its domain; unassigned without: an unknown sender, no From
   address, or a message that could not be parsed.

An entry keeps its decision in three columns (route_rule, route_detail, candidates) beside
its project and category; other ways an entry comes to be or to move write theirs (assigned
by hand, added by hand, system, outbound, project deleted), and entries filed before
migration 0011 carry their old sentence as a `legacy` decision. `explain` turns a decision
into the one English sentence that the entry page, the API and the CLI show; nothing reads
that sentence back.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from domain.categories import category
from storage.lookup import RoutingFacts


class Rule(enum.StrEnum):
    """Why an entry is where it is (the value is what storage keeps in entry.route_rule)."""

    BLOCKED = "blocked"  # detail: the block rule that matched (address or @domain)
    THREAD = "thread"  # detail: the id of the entry answered
    PROJECT_ADDRESS = "project_address"  # sent to the project's reply address
    SENDER = "sender"  # detail: the sender, a customer address of the project
    SHARED_ADDRESS = "shared_address"  # unassigned; detail: the sender; candidates: its projects
    SAME_DOMAIN = "same_domain"  # unassigned; detail: the domain; candidates: projects at it
    UNKNOWN_SENDER = "unknown_sender"  # unassigned; detail: the sender
    NO_SENDER = "no_sender"  # unassigned: no From address
    UNPARSEABLE = "unparseable"  # unassigned: the message could not be parsed
    BY_HAND = "by_hand"  # assigned to its project by hand
    ADDED_BY_HAND = "added_by_hand"  # a note or call entered by hand
    SYSTEM = "system"  # written by postroom (a status change, a change request)
    OUTBOUND = "outbound"  # mail written in postroom
    PROJECT_DELETED = "project_deleted"  # unassigned; detail: the deleted project's name
    LEGACY = "legacy"  # filed before 0011; detail: the sentence stored then
    BOUNCE = "bounce"  # a bounce of our mail; detail: the id of the outbound entry it answers


@dataclass(frozen=True)
class Decision:
    """Where an entry goes and why; `detail` is the one fact the rule names (see Rule)."""

    rule: Rule
    detail: str = ""
    project_id: int | None = None
    candidates: tuple[int, ...] = ()
    category: str = "external"
    joins: str | None = None  # THREAD within a batch: the Message-ID of the mail answered

    @property
    def spam(self) -> bool:
        return self.rule is Rule.BLOCKED

    def as_json(self) -> dict:
        """The decision as the API and `postroom entries list --json` give it (`route`)."""
        return {
            "rule": self.rule.value,
            "detail": self.detail,
            "project_id": self.project_id,
            "candidates": list(self.candidates),
            "category": self.category,
        }


@dataclass(frozen=True)
class Inbound:
    """What routing looks at in one received message."""

    account_id: int
    sender: str = ""  # the From address as written, "" if there is none
    message_id: str | None = None
    answers: tuple[str, ...] = ()  # Message-IDs of In-Reply-To, then References
    project_hint: int | None = None  # sent to this project's reply address
    parsed: bool = True
    kept: Decision | None = None  # reprocess: the decision the entry has (kept if filed)
    # a bounce of our mail (storage.bounces.match_outbound): (outbound entry id, its project)
    bounce_of: tuple[int, int | None] | None = None


def route_many(items: Sequence[Inbound]) -> list[Decision]:
    """Route a batch in order, reading the facts once; a reply to a mail routed to a project
    earlier in the batch joins its thread, as it would had the two come in separate batches."""
    senders, message_ids = set(), set()
    for item in items:
        if item.sender:
            senders.add((item.account_id, _address(item.sender)))
        message_ids |= {(item.account_id, m) for m in item.answers}
    facts = RoutingFacts(senders, message_ids)
    threads: dict[tuple[int, str], int] = {}  # (account, Message-ID) -> project, this batch
    decisions = []
    for item in items:
        decision = _route(item, facts, threads)
        if item.message_id and decision.project_id is not None:
            threads.setdefault((item.account_id, item.message_id), decision.project_id)
        decisions.append(decision)
    return decisions


def _route(item: Inbound, facts: RoutingFacts, threads: dict) -> Decision:
    account_id, sender = item.account_id, _address(item.sender)

    def decided(rule: Rule, detail: str = "", project_id=None, candidates=(), joins=None):
        kind = facts.address_kind(account_id, project_id, sender) if project_id else None
        return Decision(
            rule,
            detail,
            project_id,
            tuple(candidates),
            category("inbound", address_kind=kind, team=facts.in_team(account_id, sender)),
            joins,
        )

    if item.kept is not None and item.kept.project_id is not None:
        kept = decided(item.kept.rule, item.kept.detail, item.kept.project_id)
        return replace(kept, candidates=item.kept.candidates)
    blocked = facts.block_rule_for(account_id, sender) if sender else None
    if blocked:  # before the bounce rule: mail shaped as a bounce does not get past a block
        return decided(Rule.BLOCKED, blocked)
    if item.bounce_of is not None and item.bounce_of[1] is not None:
        return decided(Rule.BOUNCE, str(item.bounce_of[0]), item.bounce_of[1])
    found = facts.project_of_thread(account_id, list(dict.fromkeys(item.answers)))
    if found:
        entry_id, project_id = found
        return decided(Rule.THREAD, str(entry_id), project_id)
    for message_id in item.answers:
        project_id = threads.get((account_id, message_id))
        if project_id is not None:
            return decided(Rule.THREAD, "", project_id, joins=message_id)
    if item.project_hint is not None:
        return decided(Rule.PROJECT_ADDRESS, "", item.project_hint)
    if not item.parsed and not sender:  # its From, read from the header block, still routes
        return decided(Rule.UNPARSEABLE)
    if not sender:
        return decided(Rule.NO_SENDER)
    projects = facts.projects_with_address(account_id, sender)
    if len(projects) == 1:
        return decided(Rule.SENDER, sender, projects[0])
    if projects:
        return decided(Rule.SHARED_ADDRESS, sender, None, projects)
    domain = sender.rpartition("@")[2]
    by_domain = facts.projects_with_domain(account_id, domain) if domain else []
    if by_domain:
        return decided(Rule.SAME_DOMAIN, domain, None, by_domain)
    return decided(Rule.UNKNOWN_SENDER, sender)


def _address(sender: str) -> str:
    return sender.strip().lower()


# (heading, sentence): the heading names the rule before the sentence, as entries always
# showed it ("sender: anna@bakery.test is a customer address").
_WORDS: dict[Rule, tuple[str, str]] = {
    Rule.BLOCKED: ("blocked", "{detail} is on the block list"),
    Rule.THREAD: ("thread", "reply to entry {detail}"),
    Rule.PROJECT_ADDRESS: ("project_address", "sent to the project's reply address"),
    Rule.SENDER: ("sender", "{detail} is a customer address"),
    Rule.SHARED_ADDRESS: ("unassigned", "{detail} is a customer address of {count} projects"),
    Rule.SAME_DOMAIN: ("unassigned", "unknown sender, projects at {detail}"),
    Rule.UNKNOWN_SENDER: ("unassigned", "unknown sender {detail}"),
    Rule.NO_SENDER: ("unassigned", "no From address"),
    Rule.UNPARSEABLE: ("unassigned", "the message could not be parsed"),
    Rule.BY_HAND: ("", "assigned by hand"),
    Rule.ADDED_BY_HAND: ("", "added by hand"),
    Rule.SYSTEM: ("", "system"),
    Rule.OUTBOUND: ("outbound", "written in postroom"),
    Rule.PROJECT_DELETED: ("", "project {detail} was deleted"),
    Rule.LEGACY: ("", "{detail}"),
    Rule.BOUNCE: ("bounce", "returned mail of entry {detail}"),
}


def explain(decision: Decision, *, unassigned_list: bool = False) -> str:
    """The decision in words, as the entry page, the API and the CLI show it. The list of
    unassigned mail leaves out the heading "unassigned", which every entry there would have."""
    name, sentence = _WORDS[decision.rule]
    text = sentence.format(detail=decision.detail, count=len(decision.candidates))
    if not name or (unassigned_list and name == "unassigned"):
        return text
    return f"{name}: {text}"


def decision_of(entry) -> Decision:
    """The decision an entry (storage.models.Entry) keeps."""
    return Decision(
        Rule(entry.route_rule),
        entry.route_detail,
        entry.project_id,
        tuple(entry.candidate_ids),
        entry.category,
    )
