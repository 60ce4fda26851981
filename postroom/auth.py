"""Team members, passwords, API tokens and the one-time setup, shared by the CLI and web UI."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from postroom.passwords import password_problem
from storage.db import write_transaction
from storage.models import ApiToken, AppSetting, User, utcnow

ROLES = ("owner", "admin", "member", "read-only")
SETUP_TOKEN = "setup_token"  # noqa: S105 - the name of the AppSetting row that holds the token


@functools.cache
def dummy_hash() -> str:
    """A hash to check against when the email is unknown, so both cases take the same time.

    Made when the web server starts (make_server), not at import: scrypt would slow the start
    of every command."""
    return generate_password_hash("postroom-dummy-password", method="scrypt")


class AuthError(ValueError):
    """A team or token change cannot be made; the message says why."""


def hash_password(password: str) -> str:
    """Hash a new password, refusing one that breaks the rule in postroom.passwords."""
    problem = password_problem(password)
    if problem:
        raise AuthError(problem)
    return generate_password_hash(password, method="scrypt")


def create_user(account_id: int, email: str, role: str, password: str, name: str = "") -> User:
    """Add a team member; the email is stored lower-cased and unique per account."""
    email = email.strip().lower()
    if "@" not in email or " " in email:
        raise AuthError(f"not an email address: {email!r}")
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    if User.select().where((User.account == account_id) & (User.email == email)).exists():
        raise AuthError(f"{email} is already a member of this account")
    return User.create(
        account=account_id, email=email, role=role, name=name, password_hash=hash_password(password)
    )


def find_user(email: str, account_id: int | None = None) -> User | None:
    query = User.select().where(User.email == email.strip().lower())
    if account_id is not None:
        query = query.where(User.account == account_id)
    return query.order_by(User.id).first()


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.save()


def check_login(email: str, password: str) -> User | None:
    """Return the active user whose password matches, else None (in constant-ish time)."""
    user = find_user(email)
    stored = user.password_hash if user is not None and user.password_hash else dummy_hash()
    ok = check_password_hash(stored, password)
    if not ok or user is None or not user.is_active or not user.password_hash:
        return None
    return user


# --- API tokens ------------------------------------------------------------------------------
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str = "") -> str:
    """Create a token for the API; only its hash is stored, the token is shown once."""
    token = "prt_" + secrets.token_urlsafe(32)
    ApiToken.create(user=user.id, token_hash=_digest(token), name=name)
    return token


def user_for_token(token: str) -> User | None:
    row = ApiToken.get_or_none(ApiToken.token_hash == _digest(token))
    if row is None:
        return None
    user = User.get_or_none(User.id == row.user_id)
    if user is None or not user.is_active:
        return None
    ApiToken.update(last_used_at=utcnow()).where(ApiToken.id == row.id).execute()
    return user


# --- installation-wide secrets ----------------------------------------------------------------
def shared_secret(key: str) -> str:
    """Return an installation-wide random value, creating it once (shared by all processes)."""
    row = AppSetting.get_or_none(AppSetting.key == key)
    if row is None:
        AppSetting.insert(key=key, value=secrets.token_urlsafe(48)).on_conflict_ignore().execute()
        row = AppSetting.get(AppSetting.key == key)
    return row.value


def setup_token() -> str | None:
    """Return the one-time setup token while nobody has an account login yet."""
    if User.select().exists():
        return None
    return shared_secret(SETUP_TOKEN)


def check_setup_token(candidate: str) -> bool:
    """Tell whether `candidate` is the setup token and setup is still open (no write)."""
    expected = setup_token()
    return expected is not None and hmac.compare_digest(candidate.encode(), expected.encode())


def claim_setup(candidate: str) -> bool:
    """Spend the setup token; true for exactly one caller, however many run at once.

    Call it inside the write transaction that creates the first login: the conditional
    DELETE decides (SQLite runs one such transaction at a time; on PostgreSQL a second DELETE
    waits for the first to commit and then finds no row), and a rollback puts the token back.
    """
    if not check_setup_token(candidate):
        return False
    spent = (
        AppSetting.delete()
        .where((AppSetting.key == SETUP_TOKEN) & (AppSetting.value == candidate))
        .execute()
    )
    return spent == 1 and not User.select().exists()
