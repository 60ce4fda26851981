"""Server-side sessions in the database, so every web process knows every login."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from storage.models import WebSession, utcnow

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

    def regenerate(self) -> None:
        """Give this browser a new session id (on login), dropping the old one."""
        self.rotate = True
        self.modified = True


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DbSessionInterface(SessionInterface):
    def __init__(self, idle_timeout: dt.timedelta) -> None:
        self.idle_timeout = idle_timeout

    def open_session(self, app, request):
        token = request.cookies.get(COOKIE)
        if token:
            row = WebSession.get_or_none(WebSession.token_hash == _digest(token))
            if row is not None and utcnow() - row.last_seen_at < self.idle_timeout:
                session = DbSession(json.loads(row.data), token=token)
                if utcnow() - row.last_seen_at > dt.timedelta(minutes=1):
                    WebSession.update(last_seen_at=utcnow()).where(
                        WebSession.token_hash == row.token_hash
                    ).execute()
                return session
            if row is not None:
                row.delete_instance()
        return DbSession(new=True)

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
        if session.token is None:
            session.token = secrets.token_urlsafe(32)
            WebSession.create(token_hash=_digest(session.token), data=data,
                              user=session.get("user_id"))  # fmt: skip
        else:
            WebSession.update(data=data, user=session.get("user_id"), last_seen_at=utcnow()).where(
                WebSession.token_hash == _digest(session.token)
            ).execute()
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            secure=secure,
            samesite="Lax",
            path="/",
        )
