"""Team members, passwords, API tokens and the one-time setup, shared by the CLI and web UI."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from postroom.mail_headers import one_line
from postroom.passwords import password_problem
from storage.db import write_transaction
from storage.models import ApiToken, AppSetting, User, WebSession, utcnow

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
    email, name = email.strip().lower(), name.strip()
    if "@" not in email or one_line(email) != email or " " in email:
        raise AuthError(f"not an email address: {email!r}")
    if one_line(name) != name:  # it goes into mail headers (postroom.mail_headers)
        raise AuthError("the name must be one line, without line breaks or control characters")
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
    """Set a new password and end every session and API token of the user."""
    hashed = hash_password(password)
    with write_transaction():
        User.update(password_hash=hashed).where(User.id == user.id).execute()
        user.auth_generation = revoke_credentials(user.id)
    user.password_hash = hashed


def check_login(email: str, password: str) -> User | None:
    """Return the active user whose password matches, else None (in constant-ish time).

    The user's auth_generation is the one read in the same row as the hash checked: a login
    stored under it ends if the password changes while the check runs (admin_ui.sessions)."""
    user = find_user(email)
    stored = user.password_hash if user is not None and user.password_hash else dummy_hash()
    ok = check_password_hash(stored, password)
    if not ok or user is None or not user.is_active or not user.password_hash:
        return None
    return user


# --- sessions and API tokens ------------------------------------------------------------------
TOKEN_TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often
MAX_TOKEN_NAME = 100


def revoke_credentials(user_id: int, *, tokens: bool = True) -> int:
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


def set_active(user: User, active: bool) -> None:
    """Deactivate or reactivate a member; either way their sessions and API tokens end."""
    with write_transaction():
        User.update(is_active=active).where(User.id == user.id).execute()
        user.auth_generation = revoke_credentials(user.id)
    user.is_active = active


class WrongPassword(AuthError):
    """The current password given to confirm a change is wrong."""


def change_own_password(user: User, current: str, new: str) -> int:
    """Change a user's password after checking the current one; return the new generation."""
    if not user.password_hash or not check_password_hash(user.password_hash, current):
        raise WrongPassword("the current password is wrong")
    set_password(user, new)
    return user.auth_generation


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str = "", *, expires_days: int | None = None) -> str:
    """Create a token for the API; only its hash is stored, the token is shown once."""
    name = name.strip()
    if len(name) > MAX_TOKEN_NAME or any(not ch.isprintable() for ch in name):
        raise AuthError(f"a token name is up to {MAX_TOKEN_NAME} printable characters")
    expires_at = None
    if expires_days is not None:
        if not 1 <= expires_days <= 3650:
            raise AuthError("a token expires after 1 to 3650 days")
        expires_at = utcnow() + dt.timedelta(days=expires_days)
    token = "prt_" + secrets.token_urlsafe(32)
    ApiToken.create(user=user.id, token_hash=_digest(token), name=name, expires_at=expires_at)
    return token


def user_for_token(token: str) -> User | None:
    """Return the active user of a token that is neither revoked nor expired, else None."""
    row = ApiToken.get_or_none(ApiToken.token_hash == _digest(token))
    now = utcnow()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    user = User.get_or_none(User.id == row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_EVERY:
        ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
    return user


def api_tokens(*, user_id: int | None = None, account_id: int | None = None) -> list[ApiToken]:
    """The tokens of one user or of one account's users (None: all), oldest first, with .user."""
    query = ApiToken.select(ApiToken, User).join(User)
    if user_id is not None:
        query = query.where(ApiToken.user == user_id)
    if account_id is not None:
        query = query.where(User.account == account_id)
    return list(query.order_by(ApiToken.id))


def revoke_api_token(token_id: int, *, user_id: int | None = None) -> bool:
    """Delete one token (only if it belongs to user_id, when given); False if there is none."""
    query = ApiToken.delete().where(ApiToken.id == token_id)
    if user_id is not None:
        query = query.where(ApiToken.user == user_id)
    return query.execute() > 0


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
