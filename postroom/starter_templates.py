"""The starter mail templates a new account gets, in the account's language.

They are shipped as data, one file per language: domain/data/starter-templates-<language>.toml
(in the wheel with domain's data), each a list of [[template]] tables with a key, a name, a
subject and a body in the template language (postroom.mail_templates). Every language ships the
same keys: request material, ask for feedback, present the draft for review, the site is live.
A language without a file gets the English ones. Only a new account gets them (the callers of
domain.accounts.create_account pass them in); an existing account keeps the templates it has.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

LANGUAGES = ("en", "de")  # the languages a file ships for
DEFAULT_LANGUAGE = "en"
KEYS = ("material", "feedback", "review", "live")

StarterTemplates = tuple[tuple[str, str, str], ...]  # (name, subject, body)


def starter_templates(language: str | None = DEFAULT_LANGUAGE) -> StarterTemplates:
    """(name, subject, body) of the four starter templates in this language (else English)."""
    language = (language or "").split("-")[0].split("_")[0].lower()
    return _load(language if language in LANGUAGES else DEFAULT_LANGUAGE)


@cache
def _load(language: str) -> StarterTemplates:
    source = resources.files("domain") / "data" / f"starter-templates-{language}.toml"
    entries = tomllib.loads(source.read_text(encoding="utf-8"))["template"]
    by_key = {entry["key"]: entry for entry in entries}
    if tuple(by_key) != KEYS:
        raise ValueError(f"starter-templates-{language}.toml has {tuple(by_key)}, not {KEYS}")
    return tuple((by_key[key]["name"], by_key[key]["subject"], by_key[key]["body"]) for key in KEYS)
