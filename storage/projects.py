"""Projects and their customer addresses: rows in, rows out, lookups.

The rules (a name is needed, an address belongs to at most one project, what a status change
writes) are domain/projects.py's; this module persists what it decided.
"""

from __future__ import annotations

import datetime as dt

from peewee import fn

from storage.accounts import new_token
from storage.db import is_postgres
from storage.models import MAX_ID, Account, CustomerAddress, Entry, Project
from storage.search import unindex_entry

MAIL_KINDS = ("inbound", "outbound")  # entries that are mail: kept when their project goes


# --- lookups -------------------------------------------------------------------------------
def project_of_account(account_id: int, project_id: int) -> Project | None:
    """Return the project if it belongs to the account."""
    if not 0 < project_id <= MAX_ID:
        return None
    return Project.get_or_none((Project.id == project_id) & (Project.account == account_id))


def projects_of_account(account_id: int, words: str = "", limit: int = 200) -> list[Project]:
    """Projects by name or domain words, active first, by name."""
    query = Project.select().where(Project.account == account_id)
    for word in words.split():
        pattern = f"%{_like_escape(word.lower())}%"
        query = query.where((fn.LOWER(Project.name) ** pattern) | (Project.domain**pattern))
    archived = Project.status == "archived"
    return list(query.order_by(archived, fn.LOWER(Project.name)).limit(limit))


def _like_escape(text: str) -> str:
    """Drop LIKE wildcards from user words (a search for names needs none)."""
    return text.replace("\\", "").replace("%", "").replace("_", "")


def projects_by_ids(account_id: int, project_ids: list[int]) -> dict[int, Project]:
    """The account's projects among these ids (candidates of unassigned mail), by id."""
    if not project_ids:
        return {}
    query = Project.select().where(
        (Project.account == account_id) & Project.id.in_(sorted(set(project_ids)))
    )
    return {project.id: project for project in query}


def address_row(account_id: int, address: str) -> CustomerAddress | None:
    """The account's row of a stored (lower-cased) address, with its project loaded."""
    return (
        CustomerAddress.select(CustomerAddress, Project)
        .join(Project)
        .where((CustomerAddress.account == account_id) & (CustomerAddress.address == address))
        .first()
    )


def project_of_address(account_id: int, address: str) -> Project | None:
    """Return the project of the account that stores this customer address, if any."""
    row = address_row(account_id, address.strip().lower())
    return row.project if row is not None else None


def addresses_of_project(project: Project) -> list[CustomerAddress]:
    """The project's addresses, customers first, by address."""
    query = project.customer_addresses.order_by(CustomerAddress.kind, CustomerAddress.address)
    return list(query)


def has_address(project_id: int, address: str) -> bool:
    return (
        CustomerAddress.select()
        .where((CustomerAddress.project == project_id) & (CustomerAddress.address == address))
        .exists()
    )


def addresses_by_project(project_ids: list[int]) -> dict[int, list[CustomerAddress]]:
    """Customer addresses per project id, by address, in one query."""
    found: dict[int, list[CustomerAddress]] = {project_id: [] for project_id in project_ids}
    if project_ids:
        query = (
            CustomerAddress.select()
            .where(CustomerAddress.project.in_(project_ids))
            .order_by(CustomerAddress.address)
        )
        for row in query:
            found[row.project_id].append(row)
    return found


# --- changes (in the caller's transaction) ---------------------------------------------------
def lock_addresses(account_id: int) -> None:
    """Serialise changes of the account's customer addresses until commit.

    SQLite's write transaction already holds the database's write lock; on PostgreSQL the
    account row is the lock, so two requests cannot both find an address free and store it
    on two projects.
    """
    if is_postgres():
        Account.select(Account.id).where(Account.id == account_id).for_update().execute()


def insert_project(
    account_id: int, name: str, *, domain: str, status: str, contact_name: str
) -> Project:
    """A new project row with a fresh reply token."""
    return Project.create(
        account=account_id,
        name=name,
        domain=domain,
        status=status,
        contact_name=contact_name,
        reply_token=new_token(8),
    )


def replace_reply_token(project: Project, old_works_until: dt.datetime) -> Project:
    """Give the project a new reply token; the current one becomes its previous token, which
    keeps working until old_works_until (naive UTC). The token replaced before is forgotten.
    Return the project as stored."""
    Project.update(
        previous_reply_token=Project.reply_token,  # the row's value before this update
        previous_reply_token_until=old_works_until,
        reply_token=new_token(8),
    ).where(Project.id == project.id).execute()
    return Project.get_by_id(project.id)


def save_project(project: Project, fields: dict) -> Project:
    """Write these (decided) field values to the project."""
    for key, value in fields.items():
        setattr(project, key, value)
    project.save()
    return project


def insert_address(project: Project, address: str, kind: str) -> CustomerAddress:
    return CustomerAddress.create(
        account=project.account_id, project=project.id, address=address, kind=kind
    )


def delete_address(project: Project, address: str) -> bool:
    """Remove the address from the project; False if it was not there."""
    deleted = (
        CustomerAddress.delete()
        .where((CustomerAddress.project == project.id) & (CustomerAddress.address == address))
        .execute()
    )
    return bool(deleted)


def delete_project(project: Project, *, route_rule: str, route_detail: str) -> None:
    """Delete the project with its own entries (notes, calls, system entries); its mail
    stays, unassigned, with this route reason."""
    own = Entry.select(Entry.id).where(
        (Entry.project == project.id) & Entry.kind.not_in(MAIL_KINDS)
    )
    own_ids = [row.id for row in own]
    for entry_id in own_ids:
        unindex_entry(entry_id)
    if own_ids:
        Entry.delete().where(Entry.id.in_(own_ids)).execute()
    unassigned = {"route_rule": route_rule, "route_detail": route_detail, "candidates": "[]"}
    Entry.update(project=None, **unassigned).where(Entry.project == project.id).execute()
    project.delete_instance()
