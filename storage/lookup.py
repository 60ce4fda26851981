"""Queries that routing asks: threads by Message-ID, projects by address or domain."""

from __future__ import annotations

from storage.models import BlockRule, CustomerAddress, Entry, Project

INACTIVE_STATUSES = ("archived",)


def project_of_thread(account_id: int, message_ids: list[str]) -> tuple[int, int] | None:
    """Return (entry id, project id) of the newest filed entry whose Message-ID is listed."""
    if not message_ids:
        return None
    row = (
        Entry.select(Entry.id, Entry.project)
        .where(
            (Entry.account == account_id)
            & (Entry.message_id.in_(message_ids))
            & (Entry.project.is_null(False))
        )
        .order_by(Entry.id.desc())
        .first()
    )
    return (row.id, row.project_id) if row else None


def projects_with_address(account_id: int, address: str) -> list[int]:
    """Return ids of the account's active projects that list this customer address."""
    query = (
        CustomerAddress.select(CustomerAddress.project)
        .join(Project)
        .where(
            (CustomerAddress.account == account_id)
            & (CustomerAddress.address == address.lower())
            & (Project.status.not_in(INACTIVE_STATUSES))
        )
        .order_by(CustomerAddress.project)
    )
    return sorted({row.project_id for row in query})


def projects_with_domain(account_id: int, domain: str) -> list[int]:
    """Return ids of active projects whose domain or a customer address is at this domain."""
    domain = domain.lower()
    by_domain = Project.select(Project.id).where(
        (Project.account == account_id)
        & (Project.domain == domain)
        & (Project.status.not_in(INACTIVE_STATUSES))
    )
    by_address = (
        CustomerAddress.select(CustomerAddress.project)
        .join(Project)
        .where(
            (CustomerAddress.account == account_id)
            & (CustomerAddress.address.endswith("@" + domain))
            & (Project.status.not_in(INACTIVE_STATUSES))
        )
    )
    ids = {row.id for row in by_domain} | {row.project_id for row in by_address}
    return sorted(ids)


def block_rule_for(account_id: int, address: str) -> str | None:
    """Return the block rule (address or @domain) that matches a sender, if any."""
    address = address.lower()
    patterns = [address, "@" + address.rpartition("@")[2]]
    row = (
        BlockRule.select(BlockRule.pattern)
        .where((BlockRule.account == account_id) & BlockRule.pattern.in_(patterns))
        .first()
    )
    return row.pattern if row else None
