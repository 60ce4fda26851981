"""API tokens and the one-time setup token: making, checking, listing and ending them.

An API token is shown once; only its SHA-256 is stored. Its name is up to MAX_TOKEN_NAME
printable characters; it expires after 1 to MAX_EXPIRY_DAYS days, or never. A member revokes
their own tokens; owners and admins revoke those of their account's members, an owner's only
an owner (domain.users.OWNER_ONLY).

The setup token opens the first login of a fresh installation: it exists while nobody has a
login, and claiming it is a state change that succeeds for exactly one caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from domain.errors import Forbidden, Invalid, NotFound
from domain.users import OWNER_ONLY, may_manage_team
from storage.models import MAX_ID, ApiToken, AppSetting, User, utcnow

TOKEN_PREFIX = "prt_"  # noqa: S105 - the mark of our tokens, no secret
TOKEN_TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often
MAX_TOKEN_NAME = 100
MAX_EXPIRY_DAYS = 3650
SETUP_TOKEN = "setup_token"  # noqa: S105 - the name of the AppSetting row that holds the token

BAD_NAME = f"a token name is up to {MAX_TOKEN_NAME} printable characters"
BAD_EXPIRY = f"a token expires after 1 to {MAX_EXPIRY_DAYS} days"
NO_TOKEN = "no API token {token_id}"  # noqa: S105 - a message


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token_name(name: str) -> str:
    """A token's name, trimmed, or Invalid."""
    name = name.strip()
    if len(name) > MAX_TOKEN_NAME or any(not ch.isprintable() for ch in name):
        raise Invalid(BAD_NAME)
    return name


def create_api_token(user: User, name: str = "", *, expires_days: int | None = None) -> str:
    """Create a token for the API; only its hash is stored, the token is shown once."""
    name = check_token_name(name)
    expires_at = None
    if expires_days is not None:
        if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise Invalid(BAD_EXPIRY)
        expires_at = utcnow() + dt.timedelta(days=expires_days)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.create(user=user.id, token_hash=_digest(token), name=name, expires_at=expires_at)
    return token


def user_for_token(token: str) -> User | None:
    """Return the active user of a token that is neither revoked nor expired, else None.

    Notes the token's last use (at most once per TOKEN_TOUCH_EVERY)."""
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


def revoke_api_token(token_id: int, *, by: User | None = None) -> ApiToken:
    """Revoke a token: `by` None is the operator (any token); a member revokes their own, an
    owner or admin those of the account's members (an owner's: only an owner). NotFound for a
    token that is not there or not `by`'s to see; Forbidden for one `by` may not revoke."""
    token = None
    if 0 < token_id <= MAX_ID:
        token = ApiToken.select(ApiToken, User).join(User).where(ApiToken.id == token_id).first()
    if token is not None and by is not None:
        own = token.user_id == by.id
        same_account = token.user.account_id == by.account_id
        if not own and not (same_account and may_manage_team(by)):
            token = None
        elif not own and token.user.role == "owner" and by.role != "owner":
            raise Forbidden(OWNER_ONLY)
    if token is None or not ApiToken.delete().where(ApiToken.id == token.id).execute():
        raise NotFound(NO_TOKEN.format(token_id=token_id))
    return token


def revoke_own_api_token(user: User, token_id: int) -> None:
    """Revoke one of the user's own tokens (the profile page), or NotFound."""
    query = ApiToken.delete().where((ApiToken.id == token_id) & (ApiToken.user == user.id))
    if not 0 < token_id <= MAX_ID or not query.execute():
        raise NotFound(NO_TOKEN.format(token_id=token_id))


# --- installation-wide secrets and the one-time setup -----------------------------------------
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
    """Tell whether `candidate` is the setup token and setup is still open."""
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
