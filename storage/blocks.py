"""Block rules: mail from a stored address (or @domain) is filed as spam."""

from __future__ import annotations

from storage.models import BlockRule


def add_block_rule(account_id: int, pattern: str) -> None:
    """Store a (decided, lower-cased) pattern; storing it twice changes nothing."""
    BlockRule.insert(account=account_id, pattern=pattern).on_conflict_ignore().execute()


def block_rules_of_account(account_id: int) -> list[str]:
    query = BlockRule.select(BlockRule.pattern).where(BlockRule.account == account_id)
    return [row.pattern for row in query.order_by(BlockRule.pattern)]
