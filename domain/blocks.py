"""Block rules: later mail from a blocked sender, or from anyone at a blocked domain, is
filed as spam (the routing reads them through storage.lookup).

A rule is the sender's address, lower-cased, or "@" and its domain.
"""

from __future__ import annotations

from domain.errors import Invalid
from storage.blocks import add_block_rule

SCOPES = ("sender", "domain")
BAD_SCOPE = "block must be sender or domain"


def block_pattern(address: str, scope: str) -> str:
    """The rule that blocks this sender ("sender") or everyone at its domain ("domain")."""
    if scope not in SCOPES:
        raise Invalid(BAD_SCOPE)
    address = address.strip().lower()
    return address if scope == "sender" else "@" + address.rpartition("@")[2]


def block_sender(account_id: int, address: str, scope: str) -> str:
    """Store the rule for this sender (in the caller's transaction, if any); return it."""
    pattern = block_pattern(address, scope)
    add_block_rule(account_id, pattern)
    return pattern
