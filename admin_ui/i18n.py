"""The UI in the reader's language: Flask-Babel, the locale chosen per request, the catalogs.

Which language (`select_locale`): the signed-in user's own (profile), else their account's
(Settings; every account has one, 'en' for accounts made before languages), else — before
anyone is signed in (login, setup) — the browser's Accept-Language (best match among
domain.languages.LANGUAGES), else English. `<html lang>` follows it (`current_language()`).

Catalogs: admin_ui/translations/<lang>/LC_MESSAGES/messages.po, compiled to messages.mo
(both committed and shipped in the wheel). English is the source language: no catalog.
tests/test_i18n_catalog.py fails for any extracted message id without a German translation.

RULES for every user-facing string (templates, views, flash messages, form errors):

1. Templates: `{{ _("Mark as done") }}`. Placeholders are named and passed as keywords:
   `{{ _("Filed in %(project)s.", project=entry.project.name) }}` (values are escaped; the
   msgid itself is trusted and NOT escaped, so never pass a variable as the msgid:
   `{{ _(error) }}` is forbidden — translate dynamic ids in Python, rule 4). In templates
   every `_()` string is a %-format string: write a literal percent sign as `%%`.
   Plurals: `{{ ngettext("%(num)d entry", "%(num)d entries", count) }}` (num is set for you).
   `{% trans %}…{% endtrans %}` works too, but prefer `_()`: one line, one msgid.
   A template that sets words at its top level (`{% set kinds = {"note": _("Note")} %}`,
   entry_labels.html) must be imported `with context`: Jinja caches a module imported
   without context, and its words would stay in the first reader's language. Never
   `{% set _ = … %}` in a template: it hides gettext for the rest of it.
2. Whole sentences only. Never build a sentence from fragments ("Filed in " + name + ".")
   nor translate a word and glue it; German word order differs. One msgid per sentence (or
   per short paragraph), with %(name)s placeholders for the parts that vary.
3. Python in admin_ui at request time: `from flask_babel import gettext as _` and
   `_("Saved.")`, `_("Moved %(count)d entries.", count=n)`. At import time (module
   constants, form field labels, dicts of phrases): `lazy_gettext` — it is translated when
   shown. flash(_("…")) in the view, not a constant string.
4. domain, storage, smtpd_ingest, postroom never import flask_babel. They return a code or a
   structured value that admin_ui turns into words, or an English message id marked with
   `from domain.translatable import N_` (`raise Invalid(N_("Choose a language from the
   list."))`). admin_ui shows such a message with `translate(str(error))` (this module):
   gettext of the id, the English itself when the catalog lacks it. An id built with values
   (f-strings) can never be translated: use a fixed id and format after translating:
   `translate(UNKNOWN, name=value)` with `UNKNOWN = N_("No project %(name)s.")`. When the
   domain must fill in values itself (str(error) is English for the API and the CLI), it
   raises `Invalid(Message(UNKNOWN, name=value))` (domain.translatable.Message: the English
   text, keeping message_id and values) and the view shows `translate_refusal(error)`.
5. Codes stay English and stable: URLs, form values, API error codes, CSS classes, role
   names in data. API error *messages* are translated like any other text.
6. German: du-form, the seed's words (docs/i18n.md has the glossary: Tickets, Nicht
   zugeordnet, Protokoll, Erledigt, + Neu, Intern, Nachricht vom Kunden, Nachricht an
   Kunden, Vorlagen verwalten, In Vorlagen suchen, Benachrichtigungen, Profil).
7. Adding strings: append a block of entries at the END of
   admin_ui/translations/de/LC_MESSAGES/messages.po by hand (grep for the msgid first:
   a duplicate breaks compiling), then `.venv/bin/pybabel compile -d admin_ui/translations`
   and commit the .po and .mo together. Never regenerate the whole .po while others edit it.
8. Dates and numbers: the filters of admin_ui.local_time (`|when`, `|time_tag`) format in
   the viewer's zone AND language; don't strftime in templates. Numbers: `|number`
   (babel.numbers.format_decimal in the reader's locale: 1.234 in German).
9. Language names are endonyms ("English", "Deutsch": domain.languages.NAMES), never
   translated. Role names: `role_name(code)` in templates.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, has_request_context, request
from flask_babel import Babel, format_decimal, get_locale, gettext, lazy_gettext

from domain.languages import DEFAULT, LANGUAGES, NAMES, effective_language

TRANSLATIONS = Path(__file__).parent / "translations"
# a role code (stored, in URLs and forms) -> its name as shown
ROLE_NAMES = {
    "owner": lazy_gettext("owner"),
    "admin": lazy_gettext("admin"),
    "member": lazy_gettext("member"),
    "read-only": lazy_gettext("read-only"),
}


def browser_language() -> str:
    """The best of our languages for the request's Accept-Language ("de-DE" picks "de")."""
    if not has_request_context():
        return DEFAULT
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT


def select_locale() -> str:
    """The request's language: the user's, else the account's, else the browser's, else en."""
    user = g.get("user") if has_request_context() else None
    if user is not None:
        return effective_language(user)
    chosen = g.get("language") if has_request_context() else None  # a page may set it (setup)
    return chosen if chosen in LANGUAGES else browser_language()


def current_language() -> str:
    """The language code the current request is rendered in ("en" outside a request)."""
    if not has_request_context():
        return DEFAULT
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT


def translate(message: str, **values) -> str:
    """A message id from domain code (rule 4) in the reader's language, values filled in.

    A domain.translatable.Message (English already filled in) is translated from its own
    message id and values."""
    message_id = getattr(message, "message_id", None)
    if message_id is not None:
        return gettext(message_id, **{**message.values, **values})
    return gettext(message, **values)


def translate_refusal(error: Exception) -> str:
    """A domain refusal in the reader's language: each of its messages translated (a
    Message by its id and values), joined with "; " as str(error) joins them."""
    return "; ".join(translate(arg) if isinstance(arg, str) else str(arg) for arg in error.args)


def role_name(role: str) -> str:
    """A role code as the reader's word for it (the code itself for one we don't know)."""
    return str(ROLE_NAMES.get(role, role))


def register(app: Flask) -> None:
    Babel(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(TRANSLATIONS),
    )
    app.add_template_global(current_language, "current_language")
    app.add_template_global(NAMES, "language_names")
    app.add_template_global(role_name, "role_name")
    app.add_template_filter(format_decimal, "number")


__all__ = [
    "TRANSLATIONS",
    "browser_language",
    "current_language",
    "register",
    "role_name",
    "translate",
    "translate_refusal",
]
