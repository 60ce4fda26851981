"""Server-side sessions in the database, so every web process knows every login.

A session ends after `idle_timeout` without a request, after `max_age` since its login
whatever the activity, and when its user's credential generation moved on (password change,
deactivation, reactivation, "sign out everywhere": domain.users.end_sessions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from flask.sessions import SessionInterface, SessionMixin
from peewee import JOIN
from werkzeug.datastructures import CallbackDict

from storage.models import User, WebSession, utcnow

COOKIE = "postroom_session"
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often


class DbSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, token: str | None = None, new: bool = False):
        def on_update(session):
            session.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.new = new
        self.modified = False
        self.rotate = False
        # The user and generation this session was opened with (None: no login yet).
        self.opened_user: int | None = None
        self.generation: int | None = None

    def regenerate(self) -> None:
        """Give this browser a new session id (on login), dropping the old one."""
        self.rotate = True
        self.modified = True
        self.generation = None  # a login: stored under the user's generation of then

    def log_in(self, user_id: int, generation: int) -> None:
        """Start a login under the generation read together with the password that was checked.

        A password change that commits after that read (while the login is still under way)
        moves the generation on, so this session is refused at its next request."""
        self.clear()
        self.regenerate()
        self["user_id"] = user_id
        self.generation = generation
        self.opened_user = user_id

    def reissue(self, generation: int) -> None:
        """Keep this browser signed in under the user's new credential generation, with a new id."""
        self.regenerate()
        self.generation = generation
        self.opened_user = self.get("user_id")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _current_generation(user_id: int) -> int:
    return User.select(User.auth_generation).where(User.id == user_id).scalar() or 0


class DbSessionInterface(SessionInterface):
    def __init__(self, idle_timeout: dt.timedelta, max_age: dt.timedelta) -> None:
        self.idle_timeout = idle_timeout
        self.max_age = max_age

    def _still_valid(self, row: WebSession, now: dt.datetime) -> bool:
        if now - row.last_seen_at >= self.idle_timeout or now - row.created_at >= self.max_age:
            return False
        if row.user_id is None:
            return True
        user = row.user  # joined in open_session; None when the user is gone
        return user is not None and user.is_active and user.auth_generation == row.auth_generation

    def open_session(self, app, request):
        token = request.cookies.get(COOKIE)
        if not token:
            return DbSession(new=True)
        row = (
            WebSession.select(WebSession, User)
            .join(User, JOIN.LEFT_OUTER)
            .where(WebSession.token_hash == _digest(token))
            .first()
        )
        if row is None:
            return DbSession(new=True)
        now = utcnow()
        if not self._still_valid(row, now):
            WebSession.delete().where(WebSession.token_hash == row.token_hash).execute()
            return DbSession(new=True)
        session = DbSession(json.loads(row.data), token=token)
        session.opened_user, session.generation = row.user_id, row.auth_generation
        if now - row.last_seen_at > TOUCH_EVERY:
            WebSession.update(last_seen_at=now).where(
                WebSession.token_hash == row.token_hash
            ).execute()
        return session

    def _generation_for(self, session: DbSession) -> int:
        """The generation a session is stored under: the one it was opened, logged in (with
        the password check) or reissued with; else the user's current one."""
        user_id = session.get("user_id")
        if user_id is None:
            return 0
        if user_id == session.opened_user and session.generation is not None:
            return session.generation
        return _current_generation(user_id)

    def save_session(self, app, session, response):
        secure = app.config.get("SESSION_COOKIE_SECURE", False)
        if not session and not session.new and session.token:
            WebSession.delete().where(WebSession.token_hash == _digest(session.token)).execute()
            response.delete_cookie(COOKIE, path="/")
            return
        if not session or not (session.modified or session.new):
            return
        if session.rotate and session.token:
            WebSession.delete().where(WebSession.token_hash == _digest(session.token)).execute()
            session.token = None
        data = json.dumps(dict(session))
        user_id = session.get("user_id")
        generation = self._generation_for(session)
        if session.token is None:
            session.token = secrets.token_urlsafe(32)
            WebSession.create(
                token_hash=_digest(session.token),
                data=data,
                user=user_id,
                auth_generation=generation,
            )
        else:
            # An update of a row that was ended meanwhile changes nothing: it stays ended.
            WebSession.update(
                data=data, user=user_id, auth_generation=generation, last_seen_at=utcnow()
            ).where(WebSession.token_hash == _digest(session.token)).execute()
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            secure=secure,
            samesite="Lax",
            path="/",
        )
