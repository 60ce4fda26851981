"""Checking a login: the shell's part of authentication (the web UI's login form).

Everything that changes members, passwords, sessions and tokens, and every rule about them,
is the domain's (domain.users, domain.tokens); this module only compares a password given at
login with the stored hash, in about the same time whether the e-mail is known or not.
"""

from __future__ import annotations

import functools

from werkzeug.security import check_password_hash, generate_password_hash

from domain.users import find_user
from storage.models import User


@functools.cache
def dummy_hash() -> str:
    """A hash to check against when the email is unknown, so both cases take the same time.

    Made when the web server starts (make_server), not at import: scrypt would slow the start
    of every command."""
    return generate_password_hash("postroom-dummy-password", method="scrypt")


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
