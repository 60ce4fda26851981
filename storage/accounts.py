"""Create and look up accounts, projects and customer addresses."""

from __future__ import annotations

import base64
import secrets

from storage.models import Account, CustomerAddress, Project, database


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


def create_project(
    account_id: int,
    name: str,
    *,
    domain: str = "",
    status: str = "lead",
    contact_name: str = "",
    customer_addresses: tuple[str, ...] | list[str] = (),
) -> Project:
    """Create a project with its customer addresses in one transaction."""
    with database.atomic():
        project = Project.create(
            account=account_id,
            name=name,
            domain=domain.strip().lower(),
            status=status,
            contact_name=contact_name,
            reply_token=new_token(8),
        )
        for address in customer_addresses:
            add_customer_address(project, address)
    return project


def add_customer_address(project: Project, address: str) -> CustomerAddress:
    """Store an address on a project, lower-cased; adding it twice is a no-op."""
    normalized = address.strip().lower()
    row, _ = CustomerAddress.get_or_create(
        project=project.id, address=normalized, defaults={"account": project.account_id}
    )
    return row


MAX_ID = 2**63 - 1  # the largest integer SQLite and PostgreSQL (bigint) store


def account_by_id(account_id: int) -> Account | None:
    """Return the account or None."""
    if not 0 < account_id <= MAX_ID:
        return None
    return Account.get_or_none(Account.id == account_id)


def project_of_account(account_id: int, project_id: int) -> Project | None:
    """Return the project if it belongs to the account."""
    if not 0 < project_id <= MAX_ID:
        return None
    return Project.get_or_none((Project.id == project_id) & (Project.account == account_id))
