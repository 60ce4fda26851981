"""Replacing the account's inbox address or a project's reply address (their tokens).

Rules, for the CLI and the UI alike:
- an owner replaces the account's inbox address; an owner or an admin a project's reply
  address (the operator's CLI acts for the installation and is not asked);
- the replaced token keeps working for a grace period, `grace_days` (the shell's setting,
  [ingest] token_grace_days, 14 days unless changed: long enough for customers' address books
  and replies to mail already sent, short enough that a leaked address stops soon), and is
  refused with 550 after it (smtpd_ingest.handler); only the token replaced last is kept, so a
  second replacement ends the first old address at once;
- each replacement is written to the activity log, in words; never a token.
"""

from __future__ import annotations

import datetime as dt

from domain.errors import Forbidden, Invalid, NotFound
from domain.users import MANAGERS
from storage import accounts as account_store
from storage import projects as project_store
from storage.activity import log
from storage.db import write_transaction
from storage.models import Account, Project, User, utcnow

MAX_GRACE_DAYS = 365

NOT_OWNER = "Only an owner may replace the inbox address."
NOT_MANAGER = "Only an owner or an admin may replace a project's reply address."
NO_ACCOUNT = "no account {account_id}"
BAD_GRACE = f"The grace period is a whole number of days from 0 to {MAX_GRACE_DAYS}."


def may_replace_inbox_address(user: User) -> bool:
    """Only owners replace the account's inbox address (the MTA's forwarding names it)."""
    return user.role == "owner"


def may_replace_reply_address(user: User) -> bool:
    """Owners and admins replace a project's reply address."""
    return user.role in MANAGERS


def old_works_until(grace_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """Until when a token replaced now keeps working (naive UTC, to the second)."""
    if isinstance(grace_days, bool) or not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise Invalid(BAD_GRACE)
    start = (now or utcnow()).replace(microsecond=0)
    return start + dt.timedelta(days=grace_days)


def _words(until: dt.datetime) -> str:
    return f"the old address keeps working until {until:%Y-%m-%d %H:%M} UTC"


def replace_inbox_address(account_id: int, grace_days: int, *, by: User | None = None) -> Account:
    """Give the account a new inbox token; the old one works for grace_days more.

    `by` is the member who asks (None: the operator's CLI). Forbidden unless an owner of the
    account; NotFound when there is no such account."""
    if by is not None and (by.account_id != account_id or not may_replace_inbox_address(by)):
        raise Forbidden(NOT_OWNER)
    until = old_works_until(grace_days)
    with write_transaction():
        account = account_store.replace_inbox_token(account_id, until)
        if account is None:
            raise NotFound(NO_ACCOUNT.format(account_id=account_id))
        log(
            account_id,
            "inbox_address_replaced",
            user=by.id if by else None,
            detail=f"The inbox address was replaced; {_words(until)}.",
            params={"until": until.isoformat()},
        )
    return account


def replace_reply_address(project: Project, grace_days: int, *, by: User | None = None) -> Project:
    """Give the project a new reply token; the old one works for grace_days more.

    `by` is the member who asks (None: the operator's CLI); Forbidden unless an owner or an
    admin of the project's account."""
    if by is not None and (
        by.account_id != project.account_id or not may_replace_reply_address(by)
    ):
        raise Forbidden(NOT_MANAGER)
    until = old_works_until(grace_days)
    with write_transaction():
        replaced = project_store.replace_reply_token(project, until)
        log(
            project.account_id,
            "reply_address_replaced",
            project=project.id,
            user=by.id if by else None,
            detail=f"The reply address of {project.name} was replaced; {_words(until)}.",
            params={"project": project.name, "until": until.isoformat()},
        )
    return replaced
