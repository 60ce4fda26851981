"""What a domain function raises when it refuses a change; the message says why, for the user.

Entry points map them to their own way of saying no: the CLI prints the message and exits
with 1, the UI shows it beside the form (400), the API answers 422 (Invalid), 409 (Conflict),
404 (NotFound) or 403 (Forbidden) with the message as its error text.
"""

from __future__ import annotations


class DomainError(ValueError):
    """A change the user asked for cannot be made; the message says why.

    A refusal of several things at once (the addresses of a new project) has one message
    per thing in args; str() joins them with "; ".
    """

    def __str__(self) -> str:
        return "; ".join(str(arg) for arg in self.args)


class Invalid(DomainError):
    """What was given breaks a rule of its concept (an address that is none, a blank name)."""


class Conflict(DomainError):
    """The change clashes with what is stored (an address another project already has)."""


class NotFound(DomainError):
    """What the change names does not exist (or belongs to another account)."""


class Forbidden(DomainError):
    """The user may not make this change."""
