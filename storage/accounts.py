"""Create and look up accounts; the addresses of an account's inbox and its projects."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from storage.models import MAX_ID, Account, Project


def new_token(nbytes: int = 10) -> str:
    """Return a random lower-case token that survives MTAs folding the local part's case."""
    return base64.b32encode(secrets.token_bytes(nbytes)).decode().lower().rstrip("=")


def create_account(name: str) -> Account:
    """Create an account with a fresh inbox token."""
    return Account.create(name=name, inbox_token=new_token())


def inbox_local_part(account: Account) -> str:
    """Return the local part of the account's inbox address: inbox+<id>.<token>."""
    return f"inbox+{account.id}.{account.inbox_token}"


def project_reply_detail(project: Project) -> str:
    """Return the project part of a project reply address: <project-id>-<reply-token>."""
    return f"{project.id}-{project.reply_token}"


def account_by_id(account_id: int) -> Account | None:
    """Return the account or None."""
    if not 0 < account_id <= MAX_ID:
        return None
    return Account.get_or_none(Account.id == account_id)


def replace_inbox_token(account_id: int, old_works_until: dt.datetime) -> Account | None:
    """Give the account a new inbox token; the current one becomes its previous token, which
    keeps working until old_works_until (naive UTC). The token replaced before is forgotten.
    Return the account as stored, or None if there is no such account."""
    changed = (
        Account.update(
            previous_inbox_token=Account.inbox_token,  # the row's value before this update
            previous_inbox_token_until=old_works_until,
            inbox_token=new_token(),
        )
        .where(Account.id == account_id)
        .execute()
    )
    return Account.get_by_id(account_id) if changed else None
