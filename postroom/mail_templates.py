"""Render mail templates in a Jinja2 sandbox, and the starter templates of a new account.

A template's subject and body are the only template source; project data goes in as values
and is never parsed. The sandbox refuses attribute tricks (`''.__class__`), no globals are
there to abuse (no range, lipsum, cycler, joiner, namespace), and an unknown variable is an
error instead of an empty string, so a typo shows before the mail leaves.
"""

from __future__ import annotations

from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from storage.models import Account, Project, User
from storage.outbound import customer_name_seen

MAX_SOURCE_CHARS = 100_000
MAX_RESULT_CHARS = 200_000  # the full-text index keeps this much of a body

# name -> what it holds, in the order the editor lists them
VARIABLES = {
    "website_name": "the project's (website's) name",
    "domain": "the website's domain",
    "status": "the project's status",
    "customer_name": "the recipient's name, as seen in their mail (else the contact person)",
    "contact_person": "the project's contact person",
    "customer_email": "the recipient's address",
    "invitation_link": "the project's invitation link",
    "sender_name": "your name",
    "sender_email": "your email address",
    "signature": "the agency's signature (Settings)",
}


class TemplateError(ValueError):
    """A template cannot be rendered; the message says why, for the person who wrote it."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, also kept from building huge text: a template cannot fill the memory.

    `*`, `**` and `%` are checked, calls with huge numbers (`x.center(10**9)`) refused,
    str.format is not there, filters are a short list without padding ones, and the output
    is cut off when it grows too long (see _render_one). Lists cannot be changed.
    """

    intercepted_binops = frozenset(["*", "**", "%"])

    def call_binop(self, context, operator_name, left, right):
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError("% formatting is not available in templates")
        if operator_name == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("the exponent is too large")
        if operator_name == "*":
            for sized, count in ((left, right), (right, left)):
                sequence = isinstance(sized, str | list | tuple) and isinstance(count, int)
                if sequence and len(sized) * count > MAX_RESULT_CHARS:
                    raise SecurityError("the repeated text would be too long")
        return super().call_binop(context, operator_name, left, right)

    def wrap_str_format(self, value):
        return None  # no sandboxed str.format either: is_safe_attribute refuses it

    def is_safe_attribute(self, obj, attr, value):
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context, __obj, *args, **kwargs):
        for value in (*args, *kwargs.values()):
            if isinstance(value, int | float) and abs(value) > MAX_RESULT_CHARS:
                raise SecurityError(f"the number {value} is too large for a template")
        return super().call(__context, __obj, *args, **kwargs)


# filters that cannot pad or repeat text (no center, indent, format, replace, batch)
SAFE_FILTERS = ("upper", "lower", "title", "capitalize", "trim", "default", "d", "first",
                "last", "length", "count", "join", "truncate", "wordcount", "string", "int",
                "float", "abs", "round", "striptags", "list", "sort", "unique",
                "reverse")  # fmt: skip


def _environment() -> ImmutableSandboxedEnvironment:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS}
    env.tests = {name: env.tests[name] for name in ("defined", "undefined", "none", "number",
                                                     "string", "even", "odd")}  # fmt: skip
    return env


_ENV = _environment()


def render(template_subject: str, template_body: str, variables: dict[str, str]) -> tuple[str, str]:
    """Return (subject, body) with the variables filled in, or raise TemplateError."""
    subject = _render_one("subject", template_subject, variables)
    if "\r" in subject or "\n" in subject:
        raise TemplateError(
            "the subject has a line break once the variables are filled in; a subject is one"
            " line (check the variables used in it)"
        )
    return subject.strip(), _render_one("body", template_body, variables).strip()


def _render_one(part: str, source: str, variables: dict[str, str]) -> str:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"the {part} is too long (at most {MAX_SOURCE_CHARS} characters)")
    try:
        result = _bounded(_ENV.from_string(source).generate(**variables))
    except TemplateSyntaxError as error:
        raise TemplateError(f"the {part} has a syntax error on line {error.lineno}: "
                            f"{error.message}") from None  # fmt: skip
    except UndefinedError as error:
        known = ", ".join(VARIABLES)
        raise TemplateError(f"the {part} uses an unknown variable: {error.message} "
                            f"(known: {known})") from None  # fmt: skip
    except SecurityError as error:
        raise TemplateError(f"the {part} tries something templates may not do: "
                            f"{error.message}") from None  # fmt: skip
    except _TooLong:
        raise TemplateError(f"the {part} is too long once rendered") from None
    except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError,
            AttributeError) as error:  # fmt: skip
        raise TemplateError(f"the {part} cannot be rendered: {error}") from None
    return result


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
        "sender_name": sender_user.name or sender_user.email,
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


GREETING = 'Hello {{ customer_name or "there" }},'
CLOSING = "Kind regards,\n{{ sender_name }}\n\n{{ signature }}"


def _mail(*paragraphs: str) -> str:
    """A template body: one line per paragraph (line breaks inside one are kept in the mail)."""
    return "\n\n".join((GREETING, *paragraphs, CLOSING)) + "\n"


# (name, subject, body): the four mails an agency writes again and again
STARTER_TEMPLATES = (
    (
        "Ask for material",
        "Material for {{ website_name }}",
        _mail(
            "To keep building {{ website_name }} we need a few things from you:",
            "- your logo (SVG or a large PNG)\n- photos you would like to use\n"
            "- the texts for the pages, or the points they should cover",
            "Just reply to this mail and attach the files. If something is not ready yet, send "
            "what you have and tell us what is missing.",
        ),
    ),
    (
        "Ask for feedback",
        "Your feedback on {{ website_name }}",
        _mail(
            "We have made good progress on {{ website_name }} and would like to hear what you "
            "think before we go on. What do you like, and what should we change?",
            "A short reply to this mail is enough; a list of points is perfect.",
        ),
    ),
    (
        "Draft ready for review",
        "{{ website_name }}: the draft is ready for your review",
        _mail(
            "The draft of {{ website_name }} is ready for you to review."
            "{% if invitation_link %} You can look at it here: <{{ invitation_link }}>{% endif %}",
            "Please go through every page and send us your corrections in one reply to this "
            "mail. Once you approve the draft, we prepare the launch.",
        ),
    ),
    (
        "Site is live",
        "{{ website_name }} is live",
        _mail(
            "Good news: {{ website_name }} is live{% if domain %} at <https://{{ domain }}>"
            "{% endif %}.",
            "Have a look and tell us if anything looks wrong on your devices. Thank you for "
            "working with us; for changes later on, just reply to this mail.",
        ),
    ),
)
