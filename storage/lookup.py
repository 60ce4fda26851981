"""Queries that routing asks: threads by Message-ID, projects by address or domain."""

from __future__ import annotations

from storage.models import BlockRule, CustomerAddress, Entry, Project

INACTIVE_STATUSES = ("archived",)


def projects_with_address(account_id: int, address: str) -> list[int]:
    """Return ids of the account's active projects that list this customer address."""
    return RoutingFacts({(account_id, address)}, set()).projects_with_address(account_id, address)


def projects_with_domain(account_id: int, domain: str) -> list[int]:
    """Return ids of active projects whose domain or a customer address is at this domain."""
    return sorted(_domains_of(account_id).get(domain.lower(), ()))


def block_rule_for(account_id: int, address: str) -> str | None:
    """Return the block rule (address or @domain) that matches a sender, if any."""
    return RoutingFacts({(account_id, address)}, set()).block_rule_for(account_id, address)


class RoutingFacts:
    """What routing needs to know about a batch of mails, read in a few queries.

    Answers the same questions as the functions above, for the senders and Message-IDs
    given when loading; domains are asked lazily (only mail from unknown senders needs them).
    """

    def __init__(self, senders: set[tuple[int, str]], message_ids: set[tuple[int, str]]) -> None:
        self._blocks: set[tuple[int, str]] = set()
        self._threads: dict[tuple[int, str], tuple[int, int]] = {}
        self._addresses: dict[tuple[int, str], set[int]] = {}
        self._domains: dict[int, dict[str, set[int]]] = {}  # read when first asked
        for account_id in {a for a, _ in senders} | {a for a, _ in message_ids}:
            addresses = sorted({s.lower() for a, s in senders if a == account_id})
            self._load(
                account_id, addresses, sorted({m for a, m in message_ids if a == account_id})
            )

    def _load(self, account_id: int, addresses: list[str], message_ids: list[str]) -> None:
        """Read the facts of one account (every index used here leads with the account)."""
        patterns = sorted(set(addresses) | {"@" + a.rpartition("@")[2] for a in addresses})
        for chunk in _chunks(patterns):
            query = BlockRule.select(BlockRule.pattern).where(
                (BlockRule.account == account_id) & BlockRule.pattern.in_(chunk)
            )
            self._blocks |= {(account_id, row.pattern) for row in query}
        for chunk in _chunks(message_ids):
            query = Entry.select(Entry.id, Entry.message_id, Entry.project).where(
                (Entry.account == account_id)
                & Entry.message_id.in_(chunk)
                & Entry.project.is_null(False)
            )
            for row in query:
                key = (account_id, row.message_id)
                if key not in self._threads or self._threads[key][0] < row.id:
                    self._threads[key] = (row.id, row.project_id)
        for chunk in _chunks(addresses):
            query = (
                CustomerAddress.select(CustomerAddress.address, CustomerAddress.project)
                .join(Project)
                .where(
                    (CustomerAddress.account == account_id)
                    & CustomerAddress.address.in_(chunk)
                    & Project.status.not_in(INACTIVE_STATUSES)
                )
            )
            for row in query:
                self._addresses.setdefault((account_id, row.address), set()).add(row.project_id)

    def block_rule_for(self, account_id: int, address: str) -> str | None:
        address = address.lower()
        for pattern in (address, "@" + address.rpartition("@")[2]):
            if (account_id, pattern) in self._blocks:
                return pattern
        return None

    def project_of_thread(self, account_id: int, message_ids: list[str]) -> tuple[int, int] | None:
        found = [
            self._threads[(account_id, m)] for m in message_ids if (account_id, m) in self._threads
        ]
        return max(found) if found else None

    def projects_with_address(self, account_id: int, address: str) -> list[int]:
        return sorted(self._addresses.get((account_id, address.lower()), ()))

    def projects_with_domain(self, account_id: int, domain: str) -> list[int]:
        if account_id not in self._domains:
            self._domains[account_id] = _domains_of(account_id)
        return sorted(self._domains[account_id].get(domain.lower(), ()))


def _domains_of(account_id: int) -> dict[str, set[int]]:
    """Map each domain to the active projects at it (by project domain or customer address)."""
    domains: dict[str, set[int]] = {}
    projects = Project.select(Project.id, Project.domain).where(
        (Project.account == account_id)
        & (Project.domain != "")
        & Project.status.not_in(INACTIVE_STATUSES)
    )
    for row in projects:
        domains.setdefault(row.domain.lower(), set()).add(row.id)
    addresses = (
        CustomerAddress.select(CustomerAddress.address, CustomerAddress.project)
        .join(Project)
        .where((CustomerAddress.account == account_id) & Project.status.not_in(INACTIVE_STATUSES))
    )
    for row in addresses:
        domains.setdefault(row.address.rpartition("@")[2], set()).add(row.project_id)
    return domains


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]
