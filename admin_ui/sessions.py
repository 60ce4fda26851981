"""Server-side sessions in the database, so every web process knows every login.

A session ends after `idle_timeout` without a request, after `max_age` since its login
whatever the activity, and when its user's credential generation moved on (password change,
deactivation, reactivation, "sign out everywhere": domain.users.end_sessions). Those rules and
the stored rows are domain.sessions'; this module carries a session between Flask and it.
"""

from __future__ import annotations

import datetime as dt
import json

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from domain import sessions

COOKIE = "postroom_session"


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


class DbSessionInterface(SessionInterface):
    def __init__(self, idle_timeout: dt.timedelta, max_age: dt.timedelta) -> None:
        self.idle_timeout = idle_timeout
        self.max_age = max_age

    def open_session(self, app, request):
        token = request.cookies.get(COOKIE)
        if not token:
            return DbSession(new=True)
        row = sessions.open_session(token, self.idle_timeout, self.max_age)
        if row is None:
            return DbSession(new=True)
        session = DbSession(json.loads(row.data), token=token)
        session.opened_user, session.generation = row.user_id, row.auth_generation
        return session

    def _generation_for(self, session: DbSession) -> int:
        """The generation a session is stored under: the one it was opened, logged in (with
        the password check) or reissued with; else the user's current one."""
        user_id = session.get("user_id")
        if user_id is None:
            return 0
        if user_id == session.opened_user and session.generation is not None:
            return session.generation
        return sessions.current_generation(user_id)

    def save_session(self, app, session, response):
        secure = app.config.get("SESSION_COOKIE_SECURE", False)
        if not session and not session.new and session.token:
            sessions.end_session(session.token)
            response.delete_cookie(COOKIE, path="/")
            return
        if not session or not (session.modified or session.new):
            return
        if session.rotate and session.token:
            sessions.end_session(session.token)
            session.token = None
        data = json.dumps(dict(session))
        user_id = session.get("user_id")
        generation = self._generation_for(session)
        if session.token is None:
            session.token = sessions.start_session(data, user_id, generation)
        else:  # a session ended meanwhile stays ended
            sessions.save_session(session.token, data, user_id, generation)
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            secure=secure,
            samesite="Lax",
            path="/",
        )
