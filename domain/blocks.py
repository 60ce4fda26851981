"""Block rules: later mail from a blocked sender, or from anyone at a blocked domain, is
filed as spam (the routing reads them through storage.lookup).

A rule is the sender's address, lower-cased, or "@" and its domain. A large free-mail domain
(gmail.com, gmx.de …) is never blocked as a whole: that would send the mail of every customer
who writes from there to spam. The list is `[spam] free_mail_domains` (postroom.config); a
caller without the settings gets FREE_MAIL_DOMAINS, the same default. Owners and admins remove
rules; the activity log keeps who did.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.errors import Forbidden, Invalid, NotFound
from domain.users import may_change_settings
from storage.activity import log
from storage.blocks import add_block_rule, block_rule_of_account, delete_block_rule
from storage.db import write_transaction
from storage.models import User

SCOPES = ("sender", "domain")
# The default of `[spam] free_mail_domains`; postroom.config keeps the same list.
FREE_MAIL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "t-online.de",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "mail.de",
    "freenet.de",
)

BAD_SCOPE = "block must be sender or domain"
FREE_MAIL = (
    "@{domain} is a large free-mail domain: blocking it would send the mail of everyone who "
    "writes from there, customers too, to spam. Block the sender's address instead."
)
NO_RULE = "no such block rule"
MANAGERS_ONLY = "only an owner or admin may remove a block rule"


class FreeMailDomain(Invalid):
    """Refused: a whole free-mail domain may not be blocked."""


def domain_of(address: str) -> str:
    """The lower-cased domain of an address."""
    return address.strip().lower().rpartition("@")[2]


def is_free_mail(address: str, free_mail_domains: Iterable[str] = FREE_MAIL_DOMAINS) -> bool:
    """Whether the address is at one of the free-mail domains (so its domain is not blocked)."""
    return domain_of(address) in {d.strip().lower() for d in free_mail_domains}


def block_pattern(address: str, scope: str) -> str:
    """The rule that blocks this sender ("sender") or everyone at its domain ("domain")."""
    if scope not in SCOPES:
        raise Invalid(BAD_SCOPE)
    address = address.strip().lower()
    return address if scope == "sender" else "@" + address.rpartition("@")[2]


def block_sender(
    account_id: int,
    address: str,
    scope: str,
    free_mail_domains: Iterable[str] = FREE_MAIL_DOMAINS,
) -> str:
    """Store the rule for this sender (in the caller's transaction, if any); return it.

    FreeMailDomain if the scope is "domain" and the domain is a free-mail one.
    """
    pattern = block_pattern(address, scope)
    if scope == "domain" and is_free_mail(address, free_mail_domains):
        raise FreeMailDomain(FREE_MAIL.format(domain=domain_of(address)))
    add_block_rule(account_id, pattern)
    return pattern


def remove_block_rule(user: User, rule_id: int) -> str:
    """Remove one of the account's rules (owners and admins); return its pattern.

    Later mail from there is routed as any other; the activity log records who removed it.
    """
    if not may_change_settings(user):
        raise Forbidden(MANAGERS_ONLY)
    with write_transaction():
        rule = block_rule_of_account(user.account_id, rule_id)
        if rule is None:
            raise NotFound(NO_RULE)
        pattern = rule.pattern
        delete_block_rule(rule)
        log(
            user.account_id,
            "unblocked",
            user=user.id,
            detail=pattern,
            params={"pattern": pattern},
        )
    return pattern
