"""Render mail templates: variables, a few filters and {% if %}, with bounded work.

A template's subject and body are the only template source; project data goes in as values
and is never parsed. Before a template is saved and again before every render (a template
stored by an older version may be hostile), postroom.template_language checks its parsed tree
against a short list: no loops, calls, attributes, arithmetic, {% set %}, macros or other
templates. What passes runs in Jinja2's sandbox with no globals (no range, lipsum, cycler,
joiner, namespace), each value cut to MAX_VALUE_CHARS, and an output longer than
MAX_RESULT_CHARS is refused (template_language's docstring states the bounds). An unknown
variable is an error instead of an empty string, so a typo shows before the mail leaves; any
other failure while rendering is a TemplateError too (logged), never an error page.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from domain.translatable import N_
from domain.users import shown_name
from postroom.starter_templates import starter_templates
from postroom.template_language import (
    FILTERS,
    MAX_VALUE_CHARS,
    TESTS,
    Refusal,
    checked,
)
from storage.models import Account, Project, User
from storage.outbound import customer_name_seen

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 200_000  # the full-text index keeps this much of a body

# name -> what it holds (a message id: admin_ui shows it translated), in the editor's order
VARIABLES = {
    "website_name": N_("the project's (website's) name"),
    "domain": N_("the website's domain"),
    "status": N_("the project's status"),
    "customer_name": N_("the recipient's name, as seen in their mail (else the contact person)"),
    "contact_person": N_("the project's contact person"),
    "customer_email": N_("the recipient's address"),
    "invitation_link": N_("the project's invitation link"),
    "sender_name": N_("your name"),
    "sender_email": N_("your email address"),
    "signature": N_("the agency's signature (Settings)"),
}


# What the person who wrote a template reads: whole sentences, named placeholders.
CANNOT_USE = {
    "subject": "The subject cannot be used. {problem}",
    "body": "The body cannot be used. {problem}",
}  # {problem}: one of the sentences below or a template_language.Refusal
SYNTAX_ERROR = "It has a syntax error on line {line}: {detail}."
NOT_FILLED = "It cannot be filled in: {detail}."
NOT_SAFE = "It tries something templates may not do."
TOO_LONG = "It is too long once rendered (at most {limit:,} characters)."
NOT_RENDERED = "It cannot be rendered: {detail}."
UNEXPECTED = "It cannot be rendered (an unexpected error; the server log has the details)."
SUBJECT_LINE_BREAK = (
    "The subject has a line break once the variables are filled in; a subject is one line "
    "(check the variables used in it)."
)


class TemplateError(ValueError):
    """A template cannot be rendered; the message says why, for the person who wrote it."""


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.tests = {name: env.tests[name] for name in TESTS}
    return env


_ENV = _environment()


def render(template_subject: str, template_body: str, variables: dict[str, str]) -> tuple[str, str]:
    """Return (subject, body) with the variables filled in, or raise TemplateError."""
    values = {name: str(value)[:MAX_VALUE_CHARS] for name, value in variables.items()}
    subject = _render_one("subject", template_subject, values)
    if "\r" in subject or "\n" in subject:
        raise TemplateError(SUBJECT_LINE_BREAK)
    return subject.strip(), _render_one("body", template_body, values).strip()


def _render_one(part: str, source: str, values: dict[str, str]) -> str:
    try:
        return _bounded(_compiled(source).generate(**values))
    except Refusal as refusal:
        problem = refusal.text
    except TemplateSyntaxError as error:
        problem = SYNTAX_ERROR.format(line=error.lineno, detail=error.message)
    except UndefinedError as error:  # a known variable without a value: a fault of ours
        problem = NOT_FILLED.format(detail=error.message)
    except SecurityError:
        problem = NOT_SAFE
    except _TooLong:
        problem = TOO_LONG.format(limit=MAX_RESULT_CHARS)
    except (
        JinjaError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
        AttributeError,
    ) as error:
        problem = NOT_RENDERED.format(detail=error)
    except Exception:  # anything else (an assertion inside Jinja2, say): an error, no 500
        log.exception("a template could not be rendered")
        problem = UNEXPECTED
    raise TemplateError(CANNOT_USE[part].format(problem=problem))


@lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    """The checked template, compiled once (a refusal is raised anew each time, not kept)."""
    tree = checked(_ENV, source, VARIABLES)
    return _ENV.template_class.from_code(_ENV, _ENV.compile(tree), _ENV.make_globals(None))


class _TooLong(Exception):
    pass


def _bounded(chunks) -> str:
    """Join the rendered pieces, stopping as soon as they pass MAX_RESULT_CHARS."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RESULT_CHARS:
            raise _TooLong
        parts.append(chunk)
    return "".join(parts)


def variables_for(project: Project, sender_user: User, to_address: str) -> dict[str, str]:
    """The values a template sees for mail from this user to this address about this project."""
    account = Account.get_by_id(project.account_id)
    to_address = to_address.strip().lower()
    contact = project.contact_name or ""
    seen = customer_name_seen(project.account_id, to_address) if to_address else ""
    return {
        "website_name": project.name,
        "domain": project.domain,
        "status": project.status,
        "customer_name": seen or contact,
        "contact_person": contact,
        "customer_email": to_address,
        "invitation_link": project.invitation_link or "",
        "sender_name": shown_name(sender_user),
        "sender_email": sender_user.email,
        "signature": account.signature or "",
    }


def sample_variables() -> dict[str, str]:
    """Values of an imaginary project, to check a template while it is being written."""
    return {
        "website_name": "Bakery Miller",
        "domain": "bakery-miller.example",
        "status": "in progress",
        "customer_name": "Anna Miller",
        "contact_person": "Anna Miller",
        "customer_email": "anna@bakery-miller.example",
        "invitation_link": "https://bakery-miller.example/invite/abc123",
        "sender_name": "Sam Agency",
        "sender_email": "sam@agency.example",
        "signature": "Sam Agency · web design",
    }


# (name, subject, body) of the English starter templates; a new account gets those of its language
# (postroom.starter_templates, shipped as domain/data/starter-templates-<language>.toml)
STARTER_TEMPLATES = starter_templates("en")
