"""Projects and their customer addresses: create, change, delete; add and remove addresses.

Rules held here, for the CLI, the UI and the API alike:
- a project needs a name; name and contact name are one line of at most 200 characters;
- its domain is a host name (letters of any script, digits, hyphens; dot-separated labels,
  the last of two or more), stored lower-case; blank means none;
- its status is not blank and, where the caller names the configured statuses, one of them;
- its invitation link (the template variable {{ invitation_link }}, e.g. the customer's login
  to a preview) is blank or an http(s) URL with a host, of at most 255 characters, no spaces;
- a customer address is an address of domain.addresses, of kind customer or partner, and
  belongs to at most one project of the account (Conflict otherwise, also on its own project);
- a status change writes a system entry with a status_change event;
- deleting a project keeps its mail, as unassigned; its notes, calls and system entries go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from domain import entries
from domain.addresses import is_address, normalise_address
from domain.errors import Conflict, DomainError, Invalid
from domain.routing import Rule
from domain.translatable import N_, Message
from storage import projects as store
from storage.activity import keep_entry_history, log
from storage.db import write_transaction
from storage.models import CustomerAddress, Project

FIELDS = ("name", "domain", "status", "contact_name", "invitation_link")
ADDRESS_KINDS = ("customer", "partner")
MAX_FIELD_CHARS = 200
MAX_LINK_CHARS = 255  # the invitation link's column
# A host name: labels of letters (any script), digits and hyphens, separated by dots; the
# last label has two or more characters.
HOST_NAME = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W_][\w-]*[^\W_]")

NEEDS_NAME = "name must not be blank"
NEEDS_STATUS = "status must not be blank"
UNKNOWN_STATUS = "status must be one of {statuses}"
TOO_LONG = "{field} may have at most {limit} characters"
NOT_ONE_LINE = "{field} must be one line"
NOT_A_HOST = "domain is not a host name: {text!r}"
NOT_A_LINK = "invitation link must be a web address starting with https:// or http://"
BAD_KIND = N_("kind must be customer or partner")
TAKEN = N_("%(address)s is already a customer address of %(project)s")
TAKEN_HERE = N_("%(address)s is already a customer address of this project")
UNKNOWN_FIELDS = "unknown project fields: {fields}"


# --- one field at a time -------------------------------------------------------------------
def normalise_domain(text: str) -> str:
    """The project's domain as stored (trimmed, lower-case; "" for none), or Invalid."""
    domain = text.strip().lower()
    if domain and not (len(domain) <= MAX_FIELD_CHARS and HOST_NAME.fullmatch(domain)):
        raise Invalid(NOT_A_HOST.format(text=text.strip()[:80]))
    return domain


def normalise_link(text: str) -> str:
    """The invitation link as stored (trimmed; "" for none), or Invalid: an http or https
    URL with a host, without spaces or control characters, of at most MAX_LINK_CHARS."""
    link = str(text).strip()
    if not link:
        return ""
    if len(link) > MAX_LINK_CHARS:
        raise Invalid(TOO_LONG.format(field="invitation link", limit=MAX_LINK_CHARS))
    if any(ch <= " " or ch == "\x7f" or not ch.isprintable() for ch in link):
        raise Invalid(NOT_A_LINK)
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:
        raise Invalid(NOT_A_LINK) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise Invalid(NOT_A_LINK)
    return link


def _line(field: str, value: str) -> str:
    value = str(value).strip()
    if len(value) > MAX_FIELD_CHARS:
        raise Invalid(TOO_LONG.format(field=field, limit=MAX_FIELD_CHARS))
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise Invalid(NOT_ONE_LINE.format(field=field))
    return value


def check_fields(fields: dict, *, statuses: Iterable[str] | None = None) -> dict:
    """The project fields as stored, or Invalid for the first that breaks a rule."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise Invalid(UNKNOWN_FIELDS.format(fields=", ".join(sorted(unknown))))
    checked = {}
    for key, value in fields.items():
        if key == "domain":
            checked[key] = normalise_domain(str(value))
        elif key == "invitation_link":
            checked[key] = normalise_link(str(value))
        else:
            checked[key] = _line(key.replace("_", " "), value)
    if "name" in checked and not checked["name"]:
        raise Invalid(NEEDS_NAME)
    if "status" in checked:
        if not checked["status"]:
            raise Invalid(NEEDS_STATUS)
        if statuses is not None and checked["status"] not in tuple(statuses):
            raise Invalid(UNKNOWN_STATUS.format(statuses=", ".join(statuses)))
    return checked


def check_kind(kind: str) -> str:
    if kind not in ADDRESS_KINDS:
        raise Invalid(BAD_KIND)
    return kind


def _refuse_taken(account_id: int, address: str, project: Project | None) -> None:
    """Conflict when the address belongs to a project of the account already."""
    row = store.address_row(account_id, address)
    if row is None:
        return
    if project is not None and row.project_id == project.id:
        raise Conflict(Message(TAKEN_HERE, address=address))
    raise Conflict(Message(TAKEN, address=address, project=row.project.name))


# --- projects ------------------------------------------------------------------------------
def create_project(
    account_id: int,
    name: str,
    *,
    domain: str = "",
    status: str = "lead",
    contact_name: str = "",
    customer_addresses: Iterable[str] = (),
    addresses: Iterable[tuple[str, str]] = (),
    user_id: int | None = None,
    statuses: Iterable[str] | None = None,
) -> Project:
    """Create a project with its addresses, all or nothing.

    customer_addresses are of kind customer; addresses are (address, kind) pairs. A refusal
    of addresses names every refused one: its args hold one message each (Invalid if any
    address is not one, else Conflict).
    """
    fields = check_fields(
        {"name": name, "domain": domain, "status": status, "contact_name": contact_name},
        statuses=statuses,
    )
    pairs = [(text, "customer") for text in customer_addresses] + list(addresses)
    with write_transaction():
        store.lock_addresses(account_id)
        wanted: dict[str, str] = {}
        invalid, taken = [], []
        for text, kind in pairs:
            try:
                address = normalise_address(text)
                check_kind(kind)
                _refuse_taken(account_id, address, None)
            except Conflict as error:
                taken.extend(error.args)
            except DomainError as error:
                invalid.extend(error.args)
            else:
                wanted.setdefault(address, kind)
        if invalid or taken:
            raise (Invalid if invalid else Conflict)(*invalid, *taken)
        project = store.insert_project(account_id, **fields)
        for address, kind in wanted.items():
            store.insert_address(project, address, kind)
            log(
                account_id,
                "address_added",
                project=project.id,
                user=user_id,
                detail=address,
                params={"address": address},
            )
        log(
            account_id,
            "project_created",
            project=project.id,
            user=user_id,
            detail=project.name,
            params={"name": project.name},
        )
    return project


def update_project(
    project: Project, user_id: int | None, *, statuses: Iterable[str] | None = None, **fields
) -> Project:
    """Change a project's fields; a status change writes a system entry."""
    checked = check_fields(fields, statuses=statuses)
    old_status = project.status
    with write_transaction():
        store.save_project(project, checked)
        if project.status != old_status:
            entries.system_entry(
                project,
                f"Status changed from {old_status} to {project.status}",
                user_id=user_id,
                event="status_change",
                payload={"from": old_status, "to": project.status},
                event_kind="status_change",
                event_params={"from": old_status, "to": project.status},
            )
    return project


def set_status(project: Project, status: str) -> Project:
    """Set the status another tool reports (its event writes the system entry)."""
    return store.save_project(project, check_fields({"status": status}))


def delete_project(project: Project, user_id: int | None) -> None:
    """Delete a project: its mail stays, as unassigned; its notes, calls and system entries go."""
    with write_transaction():
        # the kept mail keeps its history (done, assigned …), which would go with the project
        keep_entry_history(project.id)
        log(
            project.account_id,
            "project_deleted",
            user=user_id,
            detail=f"project {project.id}: {project.name[:200]}",
            params={"project_id": project.id, "name": project.name[:200]},
        )
        store.delete_project(
            project, route_rule=Rule.PROJECT_DELETED.value, route_detail=project.name[:200]
        )


# --- customer addresses --------------------------------------------------------------------
def add_customer_address(
    project: Project, address: str, *, kind: str = "customer", user_id: int | None = None
) -> CustomerAddress:
    """Store an address on the project; Invalid if it is none, Conflict if a project of the
    account (this one too) has it already."""
    normalised = normalise_address(address)
    check_kind(kind)
    with write_transaction():
        store.lock_addresses(project.account_id)
        _refuse_taken(project.account_id, normalised, project)
        row = store.insert_address(project, normalised, kind)
        log(
            project.account_id,
            "address_added",
            project=project.id,
            user=user_id,
            detail=normalised,
            params={"address": normalised},
        )
    return row


def remember_sender(project: Project, address: str, user_id: int | None) -> bool:
    """Store a sender as a customer address of the project (assigning mail by hand).

    True when it is stored now; False when the project has it already. Conflict when another
    project has it: an address belongs to at most one project.
    """
    normalised = normalise_address(address)
    with write_transaction():
        store.lock_addresses(project.account_id)
        row = store.address_row(project.account_id, normalised)
        if row is not None and row.project_id == project.id:
            return False
        _refuse_taken(project.account_id, normalised, project)
        store.insert_address(project, normalised, "customer")
        log(
            project.account_id,
            "address_added",
            project=project.id,
            user=user_id,
            detail=normalised,
            params={"address": normalised},
        )
    return True


def remove_customer_address(project: Project, address: str, user_id: int | None = None) -> bool:
    """Remove the address from the project; False when the project does not have it."""
    normalised = address.strip().lower()
    if not is_address(normalised):
        return False  # never stored: no need to ask the database (nor to pass it a NUL)
    with write_transaction():
        removed = store.delete_address(project, normalised)
        if removed:
            log(
                project.account_id,
                "address_removed",
                project=project.id,
                user=user_id,
                detail=normalised,
                params={"address": normalised},
            )
    return removed
