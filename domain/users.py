"""Team members and their roles: who may do what, the password rule, adding and changing members.

The rules, each written once here for the CLI, the admin UI and the API:
- an e-mail is an address by domain.addresses (stored trimmed, lower-cased), unique per account;
- a role is one of ROLES (check_role); owners and admins manage the team and the account's
  settings; owners and admins may delete entries for good, members only discard mail as spam;
  read-only members may only read (and change their own profile);
- only an owner may hand out, take away or touch the owner role, and no change may leave an
  account without an active owner (when a member acts, `by`; the operator's CLI and the
  one-time setup act for the installation and are not asked);
- a password follows the password rule (password_problem): at least MIN_PASSWORD_LENGTH
  characters and not on the shipped list of common passwords (domain/data/README.md);
- a name is one line of at most MAX_NAME_CHARS (it goes into mail headers as the sender's
  name);
- a new password, deactivation and reactivation end every session and API token of the
  member (end_sessions raises auth_generation; admin_ui.sessions compares it).

Checking a login against the stored hash is the shell's (postroom.auth.check_login).
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from importlib import resources

from werkzeug.security import check_password_hash, generate_password_hash

from domain.addresses import normalise_address
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.translatable import N_, Message
from storage.db import is_postgres, write_transaction
from storage.models import MAX_ID, Account, ApiToken, User, WebSession, utcnow

ROLES = ("owner", "admin", "member", "read-only")
MANAGERS = ("owner", "admin")  # manage the team, the account's settings and others' tokens
MAY_DELETE_FOR_GOOD = ("owner", "admin")
READ_ONLY = "read-only"

MIN_PASSWORD_LENGTH = 10
COMMON_LIST = "data/common-passwords.txt.gz"  # Django's list, see domain/data/README.md

BAD_ROLE = N_("role must be one of %(roles)s")
TOO_SHORT = N_("a password needs at least %(n)d characters")
TOO_COMMON = N_(
    "this password is on a list of common passwords that attackers try first; choose another"
)
NOT_ONE_LINE = N_("the name must be one line, without line breaks or control characters")
MAX_NAME_CHARS = 200
NAME_TOO_LONG = Message(N_("a name has at most %(limit)d characters"), limit=MAX_NAME_CHARS)
ALREADY_MEMBER = N_("%(email)s is already a member of this account")
OWNER_ONLY = N_("Only an owner may give or take the owner role, or change an owner.")
LAST_OWNER = N_("The account needs an active owner: make another member owner first.")
NOT_A_MANAGER = N_("Only owners and admins may change the team.")
NO_MEMBER = "no member {member_id} in this account"
WRONG_PASSWORD = N_("the current password is wrong")


class WrongPassword(Invalid):
    """The current password given to confirm a change is wrong."""


# --- one rule per concept --------------------------------------------------------------------
def check_role(role: str) -> str:
    """The role, or Invalid naming the roles there are."""
    if role not in ROLES:
        raise Invalid(Message(BAD_ROLE, roles=", ".join(ROLES)))
    return role


def check_email(email: str) -> str:
    """A member's e-mail as stored (the one address rule), or Invalid."""
    return normalise_address(email)


def check_name(name: str) -> str:
    """A member's display name, trimmed; Invalid unless it is one line of at most
    MAX_NAME_CHARS without control characters (a line break or separator, a C0/C1 control or
    a lone surrogate)."""
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise Invalid(NAME_TOO_LONG)
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in name):
        raise Invalid(NOT_ONE_LINE)
    return name


@functools.cache
def common_passwords() -> frozenset[str]:
    """Load the shipped list of common passwords (lower-cased) once."""
    data = resources.files("domain").joinpath(COMMON_LIST).read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


def password_problem(password: str) -> str | None:
    """Say why a new password is refused, or None when it may be used."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return Message(TOO_SHORT, n=MIN_PASSWORD_LENGTH)
    if password.strip().lower() in common_passwords():
        return TOO_COMMON
    return None


def hash_password(password: str) -> str:
    """Hash a new password (scrypt), refusing one that breaks the password rule."""
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    return generate_password_hash(password, method="scrypt")


# --- what each role may do -------------------------------------------------------------------
def may_manage_team(user: User) -> bool:
    """Owners and admins add members, change roles and states, and revoke others' tokens."""
    return user.role in MANAGERS


def may_change_settings(user: User) -> bool:
    """Owners and admins change the account's settings (its outgoing server, the signature)."""
    return user.role in MANAGERS


def may_change_anything(user: User) -> bool:
    """Everyone but read-only members; those may only change their own profile."""
    return user.role != READ_ONLY


def may_delete_projects(user: User) -> bool:
    """Owners and admins delete projects (their mail stays, unassigned)."""
    return user.role in MANAGERS


def may_give_role(user: User, role: str) -> bool:
    """Only an owner hands out the owner role."""
    return role != "owner" or user.role == "owner"


def may_delete_entries(user: User) -> bool:
    """Whether a user may delete entries for good; members may only discard mail as spam."""
    return user.role in MAY_DELETE_FOR_GOOD


def roles_given_by(user: User) -> tuple[str, ...]:
    """The roles a member may hand out: an owner every one, an admin all but owner."""
    return tuple(role for role in ROLES if may_give_role(user, role))


# --- reading ---------------------------------------------------------------------------------
def find_user(email: str, account_id: int | None = None) -> User | None:
    """The member with this e-mail (in this account, when given), else None."""
    if "\x00" in email:  # no stored e-mail has one, and PostgreSQL refuses it in a query
        return None
    query = User.select().where(User.email == email.strip().lower())
    if account_id is not None:
        query = query.where(User.account == account_id)
    return query.order_by(User.id).first()


def member_of(account_id: int, member_id: int) -> User | None:
    """The member of the account with this id, else None."""
    if not 0 < member_id <= MAX_ID:
        return None
    return User.get_or_none((User.id == member_id) & (User.account == account_id))


def shown_name(user: User) -> str:
    """How a member is named to others (in mail they send, in notifications): the name, else
    the e-mail."""
    return user.name or user.email


def _active_owner_count(account_id: int) -> int:
    owners = (User.account == account_id) & (User.role == "owner")
    return User.select().where(owners & (User.is_active == True)).count()  # noqa: E712


def _lock_team(account_id: int) -> None:
    """Serialise team changes of an account until commit (call inside write_transaction).

    SQLite's write transaction already holds the database's write lock; on PostgreSQL the
    account row is the lock, so two owners demoting each other cannot both see a second owner.
    """
    if is_postgres():
        Account.select(Account.id).where(Account.id == account_id).for_update().execute()


# --- changes ---------------------------------------------------------------------------------
def create_user(
    account_id: int, email: str, role: str, password: str, name: str = "", *, by: User | None = None
) -> User:
    """Add a team member; `by` is the member who adds (None: the operator or the setup)."""
    if by is not None:
        _check_manager(by, account_id)
        if not may_give_role(by, role):
            raise Forbidden(OWNER_ONLY)
    email, name, role = check_email(email), check_name(name), check_role(role)
    if find_user(email, account_id) is not None:
        raise Conflict(Message(ALREADY_MEMBER, email=email))
    hashed = hash_password(password)  # outside the lock: scrypt takes a while
    with write_transaction():
        _lock_team(account_id)
        if find_user(email, account_id) is not None:
            raise Conflict(Message(ALREADY_MEMBER, email=email))
        return User.create(
            account=account_id, email=email, role=role, name=name, password_hash=hashed
        )


def _check_manager(by: User, account_id: int) -> None:
    """Forbidden unless `by` is an owner or admin of this account."""
    if by.account_id != account_id or not may_manage_team(by):
        raise Forbidden(NOT_A_MANAGER)


def _check_change(by: User | None, member: User, *, role: str, active: bool) -> None:
    """Forbidden or Conflict unless `by` may give member this role and state."""
    if by is not None:
        _check_manager(by, member.account_id)
        if not (may_give_role(by, role) and may_give_role(by, member.role)):
            raise Forbidden(OWNER_ONLY)
    steps_down = member.role == "owner" and member.is_active and not (role == "owner" and active)
    if steps_down and _active_owner_count(member.account_id) <= 1:
        raise Conflict(LAST_OWNER)


def change_role(account_id: int, member_id: int, role: str, *, by: User | None = None) -> User:
    """Give a member of the account another role (the owner rules hold)."""
    check_role(role)
    with write_transaction():
        _lock_team(account_id)
        member = member_of(account_id, member_id)
        if member is None:
            raise NotFound(NO_MEMBER.format(member_id=member_id))
        _check_change(by, member, role=role, active=member.is_active)
        User.update(role=role).where(User.id == member.id).execute()  # never a stale copy
    member.role = role
    return member


def set_active(account_id: int, member_id: int, active: bool, *, by: User | None = None) -> User:
    """Deactivate or reactivate a member; either way their sessions and API tokens end."""
    with write_transaction():
        _lock_team(account_id)
        member = member_of(account_id, member_id)
        if member is None:
            raise NotFound(NO_MEMBER.format(member_id=member_id))
        _check_change(by, member, role=member.role, active=active)
        User.update(is_active=active).where(User.id == member.id).execute()
        member.auth_generation = end_sessions(member.id)
    member.is_active = active
    return member


def set_name(user: User, name: str) -> User:
    """Set a member's display name (their own, on the profile, or the operator's CLI); "" clears
    it. Mail they write from now on carries it; protocol entries keep the name they were made
    with."""
    name = check_name(name)
    with write_transaction():
        User.update(name=name).where(User.id == user.id).execute()  # never a stale copy
    user.name = name
    return user


def set_password(user: User, password: str) -> None:
    """Set a new password (the operator's reset) and end every session and API token."""
    hashed = hash_password(password)
    with write_transaction():
        User.update(password_hash=hashed).where(User.id == user.id).execute()
        user.auth_generation = end_sessions(user.id)
    user.password_hash = hashed


def change_own_password(user: User, current: str, new: str) -> int:
    """Change a user's password after checking the current one; return the new generation."""
    if not user.password_hash or not check_password_hash(user.password_hash, current):
        raise WrongPassword(WRONG_PASSWORD)
    set_password(user, new)
    return user.auth_generation


def end_sessions(user_id: int, *, tokens: bool = True) -> int:
    """End every session of a user, and every API token unless told not; return the new generation.

    Raising the generation refuses a session made under the old one even if its row outlives
    the delete (admin_ui.sessions compares them); the rows go so nothing stale is left.
    """
    with write_transaction():
        User.update(auth_generation=User.auth_generation + 1).where(User.id == user_id).execute()
        WebSession.delete().where(WebSession.user == user_id).execute()
        if tokens:
            ApiToken.delete().where(ApiToken.user == user_id).execute()
        return User.select(User.auth_generation).where(User.id == user_id).scalar() or 0


def record_login(user: User) -> None:
    """Note when the member logged in last (shown on the team page)."""
    User.update(last_login_at=utcnow()).where(User.id == user.id).execute()
