"""An account's mail templates: what may be stored, saving, copying and deleting them.

A template has a name, a one-line subject and a text, each within LIMITS, none blank, no
NUL character. Whether subject and text are good template language (syntax, known variables,
nothing a template may not do) is the template language's rule, which lives with the
renderer in the shell (postroom.mail_templates.render, postroom.template_language): callers
pass it as `check_language(subject, body)`, raising ValueError with a sentence for the user;
domain asks it after its own rules and stores nothing it refuses.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.errors import Invalid, NotFound
from storage import outbound as store
from storage.models import MailTemplate

# The template language's bound on one source (postroom.template_language takes it from here).
MAX_SOURCE_CHARS = 20_000
LIMITS = {"name": 200, "subject": 500, "body": MAX_SOURCE_CHARS}
TOO_LONG = {
    "name": "The name is too long (at most {limit:,} characters).",
    "subject": "The subject is too long (at most {limit:,} characters).",
    "body": "The text is too long (at most {limit:,} characters).",
}
NEEDS_NAME = "Give the template a name."
SUBJECT_ONE_LINE = "The subject must be one line."
NEEDS_TEXT = "A template needs a subject and a text."
NO_NUL = "A template may not contain NUL characters."
NO_TEMPLATE = "no template {template_id} in this account"

LanguageCheck = Callable[[str, str], object]


def check_template(
    name: str, subject: str, body: str, *, check_language: LanguageCheck | None = None
) -> tuple[str, str, str]:
    """(name, subject, body) as stored (name and subject trimmed, line ends LF), or Invalid
    with the first problem."""
    name = name.replace("\r\n", "\n").strip()
    subject, body = subject.replace("\r\n", "\n"), body.replace("\r\n", "\n")
    if not name:
        raise Invalid(NEEDS_NAME)
    if "\x00" in name + subject + body:  # nothing a template needs; PostgreSQL refuses it
        raise Invalid(NO_NUL)
    for key, value in (("name", name), ("subject", subject), ("body", body)):
        if len(value) > LIMITS[key]:
            raise Invalid(TOO_LONG[key].format(limit=LIMITS[key]))
    if "\n" in subject or "\r" in subject:
        raise Invalid(SUBJECT_ONE_LINE)
    if not subject.strip() or not body.strip():
        raise Invalid(NEEDS_TEXT)
    if check_language is not None:
        try:
            check_language(subject, body)
        except ValueError as failure:
            raise Invalid(str(failure)) from None
    return name, subject.strip(), body


def template_of(account_id: int, template_id: int) -> MailTemplate:
    """The account's template with this id, or NotFound."""
    template = store.template_of_account(account_id, template_id)
    if template is None:
        raise NotFound(NO_TEMPLATE.format(template_id=template_id))
    return template


def save_template(
    account_id: int,
    name: str,
    subject: str,
    body: str,
    template_id: int | None = None,
    *,
    check_language: LanguageCheck | None = None,
) -> MailTemplate:
    """Create a template of the account, or change the one with template_id."""
    template = None if template_id is None else template_of(account_id, template_id)
    name, subject, body = check_template(name, subject, body, check_language=check_language)
    return store.save_template(account_id, name, subject, body, template)


def copy_template(account_id: int, template_id: int) -> MailTemplate:
    """A copy of the account's template, named "Copy of …"."""
    return store.copy_template(template_of(account_id, template_id))


def delete_template(account_id: int, template_id: int) -> None:
    store.delete_template(template_of(account_id, template_id))
