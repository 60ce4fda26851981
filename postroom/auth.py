"""Team members, passwords, API tokens and login throttling, shared by the CLI and the web UI."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from storage.db import write_transaction
from storage.models import ApiToken, AppSetting, LoginAttempt, User, utcnow

ROLES = ("owner", "admin", "member", "read-only")
MIN_PASSWORD = 10
THROTTLE_WINDOW = dt.timedelta(minutes=15)
THROTTLE_FREE_FAILURES = 5


@functools.cache
def dummy_hash() -> str:
    """A hash to check against when the email is unknown, so both cases take the same time.

    Made when the web server starts (make_server), not at import: scrypt would slow the start
    of every command."""
    return generate_password_hash("postroom-dummy-password", method="scrypt")


class AuthError(ValueError):
    """A team or token change cannot be made; the message says why."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
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


# --- throttling ------------------------------------------------------------------------------
def login_delay(keys: list[str]) -> float:
    """Seconds to wait before trying these keys again (email and client address)."""
    now = utcnow()
    worst = 0.0
    for row in LoginAttempt.select().where(LoginAttempt.key.in_(keys)):
        if now - row.window_start > THROTTLE_WINDOW:
            continue
        extra = row.failures - THROTTLE_FREE_FAILURES
        if extra >= 0:
            worst = max(worst, min(2.0**extra, 300.0))
    return worst


def record_failure(keys: list[str]) -> None:
    now = utcnow()
    with write_transaction():
        for key in keys:
            row = LoginAttempt.get_or_none(LoginAttempt.key == key)
            if row is None or now - row.window_start > THROTTLE_WINDOW:
                LoginAttempt.insert(key=key, failures=1, window_start=now).on_conflict(
                    conflict_target=[LoginAttempt.key],
                    update={LoginAttempt.failures: 1, LoginAttempt.window_start: now},
                ).execute()
            else:
                LoginAttempt.update(failures=LoginAttempt.failures + 1).where(
                    LoginAttempt.key == key
                ).execute()


def clear_failures(keys: list[str]) -> None:
    LoginAttempt.delete().where(LoginAttempt.key.in_(keys)).execute()


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
    return shared_secret("setup_token")


def check_setup_token(candidate: str) -> bool:
    expected = setup_token()
    return expected is not None and hmac.compare_digest(candidate.encode(), expected.encode())
