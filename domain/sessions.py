"""Login sessions of the web UI, kept in the database so every web process knows every login.

A session ends after `idle_timeout` without a request, after `max_age` since its login
whatever the activity, and when its user is deactivated or gone or their credential generation
moved on (password change, deactivation, reactivation, "sign out everywhere":
domain.users.end_sessions). Only a digest of the session id is stored. The web layer
(admin_ui.sessions) carries sessions between Flask and these functions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from peewee import JOIN

from storage.models import User, WebSession, utcnow

TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def still_valid(
    row: WebSession, now: dt.datetime, idle_timeout: dt.timedelta, max_age: dt.timedelta
) -> bool:
    """Whether a stored session (joined with its user) still counts at `now`."""
    if now - row.last_seen_at >= idle_timeout or now - row.created_at >= max_age:
        return False
    if row.user_id is None:
        return True
    user = row.user  # joined in open_session; None when the user is gone
    return user is not None and user.is_active and user.auth_generation == row.auth_generation


def open_session(
    token: str, idle_timeout: dt.timedelta, max_age: dt.timedelta
) -> WebSession | None:
    """The valid session with this id (its last use noted), else None; an ended one is removed."""
    row = (
        WebSession.select(WebSession, User)
        .join(User, JOIN.LEFT_OUTER)
        .where(WebSession.token_hash == _digest(token))
        .first()
    )
    if row is None:
        return None
    now = utcnow()
    if not still_valid(row, now, idle_timeout, max_age):
        WebSession.delete().where(WebSession.token_hash == row.token_hash).execute()
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        WebSession.update(last_seen_at=now).where(WebSession.token_hash == row.token_hash).execute()
    return row


def current_generation(user_id: int) -> int:
    """The user's credential generation now (0 for a user that is gone)."""
    return User.select(User.auth_generation).where(User.id == user_id).scalar() or 0


def end_session(token: str) -> None:
    """End one session (log out, or a new id given to the same browser)."""
    WebSession.delete().where(WebSession.token_hash == _digest(token)).execute()


def start_session(data: str, user_id: int | None, generation: int) -> str:
    """Store a new session under a fresh random id; return the id (the cookie's value)."""
    token = secrets.token_urlsafe(32)
    WebSession.create(
        token_hash=_digest(token), data=data, user=user_id, auth_generation=generation
    )
    return token


def save_session(token: str, data: str, user_id: int | None, generation: int) -> None:
    """Store what a session holds now; a session that was ended meanwhile stays ended."""
    WebSession.update(
        data=data, user=user_id, auth_generation=generation, last_seen_at=utcnow()
    ).where(WebSession.token_hash == _digest(token)).execute()
