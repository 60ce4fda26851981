"""Queries that ingest asks: inbox tokens at RCPT; threads by Message-ID, projects by address
or domain when routing."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from storage.db import native_sql, select_in
from storage.models import Account, database

INACTIVE_STATUSES = ("archived",)


class Tokens(NamedTuple):
    """An inbox or reply token, with the one it replaced and until when that one still works
    (naive UTC); previous and previous_until are None when it replaced none."""

    current: str
    previous: str | None
    previous_until: dt.datetime | None


def inbox_tokens(account_id: int) -> Tokens | None:
    """Return the inbox tokens of an account, or None if there is no such account."""
    return _tokens(_INBOX_BY_ID, account_id)


def reply_tokens(account_id: int, project_id: int) -> Tokens | None:
    """Return the reply tokens of the account's project, or None if it has no such project."""
    return _tokens(_PROJECT_REPLY_BY_ID, project_id, account_id)


class RoutingFacts:
    """What routing (domain.routing) needs to know about a batch of mails, read in a few
    queries for the whole batch: block rules, threads, customer addresses (with their kind,
    for the category), team members. Answers for the senders and Message-IDs given when
    loading; domains are asked lazily (only mail from unknown senders needs them).
    """

    def __init__(self, senders: set[tuple[int, str]], message_ids: set[tuple[int, str]]) -> None:
        self._blocks: set[tuple[int, str]] = set()
        self._threads: dict[tuple[int, str], tuple[int, int]] = {}
        self._addresses: dict[tuple[int, str], set[int]] = {}  # active projects only
        self._kinds: dict[tuple[int, str], str] = {}  # (project, address) -> customer, partner
        self._team: set[tuple[int, str]] = set()
        self._domains: dict[int, dict[str, set[int]]] = {}  # read when first asked
        for account_id in {a for a, _ in senders} | {a for a, _ in message_ids}:
            addresses = sorted({s.lower() for a, s in senders if a == account_id})
            self._load(
                account_id, addresses, sorted({m for a, m in message_ids if a == account_id})
            )

    def _load(self, account_id: int, addresses: list[str], message_ids: list[str]) -> None:
        """Read the facts of one account (every index used here leads with the account).

        Plain SQL: this runs for every batch that ingest files, and building the statements
        with peewee cost more than running them.
        """
        patterns = sorted(set(addresses) | {"@" + a.rpartition("@")[2] for a in addresses})
        for (pattern,) in select_in(_BLOCKS, patterns, account_id):
            self._blocks.add((account_id, pattern))
        for entry_id, message_id, project_id in select_in(_THREADS, message_ids, account_id):
            key = (account_id, message_id)
            if key not in self._threads or self._threads[key][0] < entry_id:
                self._threads[key] = (entry_id, project_id)
        for address, project_id, kind, status in select_in(_CUSTOMERS, addresses, account_id):
            self._kinds[(project_id, address)] = kind
            if status not in INACTIVE_STATUSES:
                self._addresses.setdefault((account_id, address), set()).add(project_id)
        for (address,) in select_in(_TEAM, addresses, account_id):
            self._team.add((account_id, address))

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

    def address_kind(self, account_id: int, project_id: int, address: str) -> str | None:
        """The kind (customer, partner) of a customer address of a project, None if it is none."""
        return self._kinds.get((project_id, address.lower()))

    def in_team(self, account_id: int, address: str) -> bool:
        """Whether a member of the account's team has this e-mail address."""
        return (account_id, address.lower()) in self._team

    def projects_with_domain(self, account_id: int, domain: str) -> list[int]:
        if account_id not in self._domains:
            self._domains[account_id] = _domains_of(account_id)
        return sorted(self._domains[account_id].get(domain.lower(), ()))


def _domains_of(account_id: int) -> dict[str, set[int]]:
    """Map each domain to the active projects at it (by project domain or customer address)."""
    domains: dict[str, set[int]] = {}
    for project_id, domain in _all_rows(_PROJECT_DOMAINS, account_id):
        domains.setdefault(domain.lower(), set()).add(project_id)
    for address, project_id in _all_rows(_CUSTOMERS_ALL, account_id):
        domains.setdefault(address.rpartition("@")[2], set()).add(project_id)
    return domains


_ACTIVE = f"project.status NOT IN ({', '.join(repr(s) for s in INACTIVE_STATUSES)})"
_BLOCKS = "SELECT pattern FROM block_rule WHERE account_id = ? AND pattern IN"
_THREADS = (
    "SELECT id, message_id, project_id FROM entry"
    " WHERE account_id = ? AND project_id IS NOT NULL AND message_id IN"
)
_CUSTOMERS_ALL = (
    "SELECT customer_address.address, customer_address.project_id FROM customer_address"  # noqa: S608
    f" JOIN project ON project.id = customer_address.project_id WHERE {_ACTIVE}"
    " AND customer_address.account_id = ?"
)
_CUSTOMERS = (
    "SELECT customer_address.address, customer_address.project_id, customer_address.kind,"
    " project.status FROM customer_address JOIN project ON project.id = customer_address.project_id"
    " WHERE customer_address.account_id = ? AND customer_address.address IN"
)
_TEAM = 'SELECT email FROM "user" WHERE account_id = ? AND email IN'
_PROJECT_DOMAINS = (
    f"SELECT id, domain FROM project WHERE {_ACTIVE} AND domain != '' AND account_id = ?"  # noqa: S608
)


_INBOX_BY_ID = (
    "SELECT inbox_token, previous_inbox_token, previous_inbox_token_until FROM account WHERE id = ?"
)
_PROJECT_REPLY_BY_ID = (
    "SELECT reply_token, previous_reply_token, previous_reply_token_until FROM project"
    " WHERE id = ? AND account_id = ?"
)


def _tokens(select: str, *params: int) -> Tokens | None:
    """The tokens of the one row a select by key finds, or None. Plain SQL, the same columns
    either way, so a missing row costs what a found one does."""
    row = database.execute_sql(native_sql(select), params).fetchone()
    if row is None:
        return None
    current, previous, until = row
    # SQLite hands a stored time back as text; the field reads it as peewee does
    until = Account.previous_inbox_token_until.python_value(until) if until else None
    return Tokens(current, previous, until)


def _all_rows(select: str, account_id: int) -> list[tuple]:
    return database.execute_sql(native_sql(select), (account_id,)).fetchall()
