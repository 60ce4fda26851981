"""Mail to a team member in their language: which language, its words, its dates.

A notification mail speaks the recipient's effective language: their own (profile), else
their account's, else English, as the UI does (domain.languages). Its words are the UI's:
the German catalog admin_ui/translations/de/LC_MESSAGES/messages.mo, read here with Babel's
gettext (no Flask, no request: the worker sends these mails), found through the admin_ui
package's path without importing it. A message id the catalog lacks stays English. Ids are
marked with N_ (domain.translatable) where they are written, so `pybabel extract` and
tests/test_i18n_catalog.py see them, and use named %(placeholders)s, filled in after
translating. Dates are in the recipient's locale and time zone (domain.time_zones).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from babel.dates import format_date, format_time, get_datetime_format
from babel.support import NullTranslations, Translations

from domain.languages import DEFAULT, LANGUAGES, effective_language
from domain.time_zones import effective_zone, local_time
from storage.models import User

ENGLISH_SHOWN = "%Y-%m-%d %H:%M"  # English dates as every page shows them


def _catalogs() -> Path:
    spec = find_spec("admin_ui")  # the package's place; admin_ui itself (Flask) is not loaded
    return Path(next(iter(spec.submodule_search_locations))) / "translations"


def language_of(user: User) -> str:
    """The recipient's language: their own, else their account's, else English."""
    return effective_language(user)


@cache
def translations(language: str) -> NullTranslations:
    """The catalog of a language (none for English, or when it is missing)."""
    if language == DEFAULT or language not in LANGUAGES:
        return NullTranslations()
    return Translations.load(str(_catalogs()), [language], domain="messages")


@dataclass(frozen=True)
class MailWords:
    """What a mail to one reader says, in their language and zone."""

    language: str = DEFAULT
    zone: dt.tzinfo = dt.UTC
    catalog: NullTranslations = field(default_factory=NullTranslations, compare=False)

    def __call__(self, message: str, **values) -> str:
        """The message id in the reader's language, the named values filled in."""
        text = self.catalog.gettext(message)
        return text % values if values else text

    def when(self, moment: dt.datetime) -> str:
        """A stored (naive UTC) moment as the reader reads it, as the UI shows it
        (admin_ui.local_time): "05.12.2026, 00:30" in German in Europe/Berlin, Babel's medium
        date and short time; "2026-12-04 23:30" in English in UTC."""
        local = local_time(moment, self.zone)
        if self.language == DEFAULT:
            return local.strftime(ENGLISH_SHOWN)
        pattern = get_datetime_format("medium", locale=self.language)
        date = format_date(local, "medium", locale=self.language)
        return pattern.replace("{1}", date).replace(
            "{0}", format_time(local, "short", locale=self.language)
        )


ENGLISH = MailWords()


def words_for(user: User) -> MailWords:
    """The words and dates of mail to this user."""
    language = language_of(user)
    return MailWords(language, effective_zone(user), translations(language))
