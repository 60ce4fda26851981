"""Decide which project a received message belongs to, and say why."""

from __future__ import annotations

from dataclasses import dataclass

from smtpd_ingest.parse import ParsedMail
from storage.lookup import RoutingFacts


@dataclass(frozen=True)
class RouteDecision:
    project_id: int | None
    reason: str  # "<rule>: <detail>": thread, project_address, sender, unassigned, blocked
    candidates: tuple[int, ...] = ()
    spam: bool = False


def route(account_id: int, mail: ParsedMail | None, project_hint: int | None) -> RouteDecision:
    """Apply the routing rules in order: thread, project reply address, sender, unassigned."""
    return route_many([(account_id, mail, project_hint)])[0]


def route_many(
    items: list[tuple[int, ParsedMail | None, int | None]],
) -> list[RouteDecision]:
    """Route a batch of (account id, mail or None, project hint), reading the facts once."""
    senders, message_ids = set(), set()
    for account_id, mail, _ in items:
        if mail is not None:
            if mail.from_:
                senders.add((account_id, mail.from_.address.strip().lower()))
            message_ids |= {(account_id, m) for m in mail.in_reply_to + mail.references}
    facts = RoutingFacts(senders, message_ids)
    return [_route(account_id, mail, hint, facts) for account_id, mail, hint in items]


def _route(
    account_id: int, mail: ParsedMail | None, project_hint: int | None, facts: RoutingFacts
) -> RouteDecision:
    sender = mail.from_.address.strip().lower() if mail is not None and mail.from_ else ""
    blocked = facts.block_rule_for(account_id, sender) if sender else None
    if blocked:
        return RouteDecision(None, f"blocked: {blocked} is on the block list", spam=True)
    if mail is not None:
        thread_ids = list(dict.fromkeys(mail.in_reply_to + mail.references))
        found = facts.project_of_thread(account_id, thread_ids)
        if found:
            entry_id, project_id = found
            return RouteDecision(project_id, f"thread: reply to entry {entry_id}")
    if project_hint is not None:
        return RouteDecision(project_hint, "project_address: sent to the project's reply address")
    if mail is None:
        return RouteDecision(None, "unassigned: the message could not be parsed")
    if not sender:
        return RouteDecision(None, "unassigned: no From address")
    projects = facts.projects_with_address(account_id, sender)
    if len(projects) == 1:
        return RouteDecision(projects[0], f"sender: {sender} is a customer address")
    if len(projects) > 1:
        return RouteDecision(
            None,
            f"unassigned: {sender} is a customer address of {len(projects)} projects",
            tuple(projects),
        )
    domain = sender.rpartition("@")[2]
    by_domain = facts.projects_with_domain(account_id, domain) if domain else []
    if by_domain:
        return RouteDecision(
            None, f"unassigned: unknown sender, projects at {domain}", tuple(by_domain)
        )
    return RouteDecision(None, f"unassigned: unknown sender {sender}")
