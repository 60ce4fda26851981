"""Languages: the account's (chosen first on the setup page, an owner changes it in Settings)
and a user's own override (the profile; empty: the account's). Before anyone is signed in (the
login and setup pages) the browser's Accept-Language decides; admin_ui.i18n picks the locale.

A language is a code the UI has a catalog for: "en" (the source strings) or "de". A stored code
this postroom no longer knows reads as English rather than failing a page.
"""

from __future__ import annotations

from domain.errors import Invalid
from domain.translatable import N_
from storage.db import write_transaction
from storage.models import Account, User

DEFAULT = "en"
# code -> the language's own name (an endonym: shown untranslated in every chooser)
NAMES = {"en": "English", "de": "Deutsch"}
LANGUAGES = tuple(NAMES)
UNKNOWN_LANGUAGE = N_("Choose a language from the list.")


def check_language(code: str | None) -> str:
    """The known code for code (trimmed, any case), or Invalid."""
    code = (code or "").strip().lower()
    if code not in NAMES:
        raise Invalid(UNKNOWN_LANGUAGE)
    return code


def known(code: str | None) -> str | None:
    """code if it is a language this postroom speaks, else None."""
    return code if code in NAMES else None


def effective_language(user: User) -> str:
    """The language a user reads the UI in: their own, else their account's, else English."""
    return known(user.language) or known(user.account.language) or DEFAULT


def set_account_language(account_id: int, code: str) -> str:
    """Set the account's language (checked); return the stored code."""
    code = check_language(code)
    with write_transaction():
        Account.update(language=code).where(Account.id == account_id).execute()
    return code


def set_user_language(user: User, code: str | None) -> str | None:
    """Set a user's own language (checked); "" or None: use the account's again."""
    code = check_language(code) if code and code.strip() else None
    with write_transaction():
        User.update(language=code).where(User.id == user.id).execute()  # never a stale copy
    user.language = code
    return code
