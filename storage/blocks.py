"""Block rules (mail from a stored address or @domain is filed as spam) and the spam list:
mail discarded as spam, kept until the retention job purges it (storage.housekeeping)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peewee import JOIN, fn

from storage.models import Activity, BlockRule, Entry, User

# The activity detail that names the rule a discard made (domain.entries.discard_spam).
BLOCKED_DETAIL = "blocked {pattern}"


@dataclass(frozen=True)
class ListedRule:
    """A block rule with who made it (None: not recorded, or the user is gone)."""

    rule: BlockRule
    made_by: User | None


def add_block_rule(account_id: int, pattern: str) -> None:
    """Store a (decided, lower-cased) pattern; storing it twice changes nothing."""
    BlockRule.insert(account=account_id, pattern=pattern).on_conflict_ignore().execute()


def block_rules_of_account(account_id: int) -> list[str]:
    """The account's patterns, in order."""
    query = BlockRule.select(BlockRule.pattern).where(BlockRule.account == account_id)
    return [row.pattern for row in query.order_by(BlockRule.pattern)]


def listed_block_rules(account_id: int) -> list[ListedRule]:
    """The account's rules, newest first, each with the user whose discard made it."""
    rules = list(
        BlockRule.select()
        .where(BlockRule.account == account_id)
        .order_by(BlockRule.created_at.desc(), BlockRule.id.desc())
    )
    listed = []
    for rule in rules:
        record = (
            Activity.select(Activity, User)
            .join(User, JOIN.LEFT_OUTER)
            .where(
                (Activity.account == account_id)
                & (Activity.action == "discarded")
                & (Activity.detail == BLOCKED_DETAIL.format(pattern=rule.pattern))
            )
            .order_by(Activity.id.desc())
            .first()
        )
        listed.append(ListedRule(rule, record.user if record and record.user_id else None))
    return listed


def block_rule_of_account(account_id: int, rule_id: int) -> BlockRule | None:
    """The rule of this id if it is the account's."""
    return BlockRule.get_or_none((BlockRule.id == rule_id) & (BlockRule.account == account_id))


def delete_block_rule(rule: BlockRule) -> None:
    """Delete the rule (in the caller's transaction)."""
    rule.delete_instance()


def spam_of_account(account_id: int, limit: int = 50, before: int | None = None) -> list[Entry]:
    """Mail discarded as spam, newest first (by id), `limit` after the id `before`."""
    query = Entry.select().where((Entry.account == account_id) & (Entry.spam == True))  # noqa: E712
    if before is not None:
        query = query.where(Entry.id < before)
    return list(query.order_by(Entry.id.desc()).limit(limit))


def discarded_at(entry_ids: list[int]) -> dict[int, dt.datetime]:
    """When each of these entries was last discarded as spam (none: filed as spam by a rule)."""
    if not entry_ids:
        return {}
    query = (
        Activity.select(Activity.entry, fn.MAX(Activity.created_at))
        .where((Activity.action == "discarded") & Activity.entry.in_(entry_ids))
        .group_by(Activity.entry)
        .tuples()
    )
    return {entry_id: when for entry_id, when in query}


def release_from_spam(entry: Entry, *, route_rule: str, route_detail: str) -> Entry:
    """No longer spam: open, in no project, filed for the reason given (domain.routing.Rule)."""
    entry.spam = False
    entry.project = None
    entry.status = "open"
    entry.done_by = None
    entry.done_at = None
    entry.route_rule = route_rule
    entry.route_detail = route_detail
    entry.save()
    return entry
