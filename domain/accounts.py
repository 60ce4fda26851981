"""Accounts and their settings: creating one with its starter templates, the one-time setup of
a fresh installation, the account's own outgoing server and its signature.

The starter templates are written in the template language, which is the shell's
(postroom.starter_templates, in the account's language): callers pass them in, domain stores
them.
Whether an outgoing server may be reached (allowed ports, public addresses, resolved by DNS
under the [outbound] settings) and whether a text would hide a line break in a mail header
are the shell's checks too (postroom.outbound_checks, postroom.mail_headers): callers pass
them as functions, domain asks them alongside its own rules and stores nothing unless all agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from domain import users
from domain.addresses import MAX_ADDRESS_CHARS, is_address
from domain.errors import Conflict, Invalid
from domain.tokens import claim_setup
from domain.translatable import N_, Message
from storage import accounts as account_store
from storage import outbound as outbound_store
from storage.db import write_transaction
from storage.models import Account, AccountSmtp, User

NAME_AGENCY = N_("Name your agency.")
SETUP_DONE = N_("postroom has been set up already. Log in with the owner's email and password.")
MAX_NAME_CHARS = 200
NAME_TOO_LONG = Message(
    N_("An account's name has at most %(limit)d characters."), limit=MAX_NAME_CHARS
)

SECURITIES = ("starttls", "tls", "none")  # how the connection to an outgoing server is secured
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$")
MAX_SMTP_TEXT_CHARS = 200  # user name, sender name
MAX_SMTP_PASSWORD_CHARS = 255
MAX_SIGNATURE_CHARS = 5000
SIGNATURE_TOO_LONG = N_("The signature may have at most %(limit)d characters.")

StarterTemplates = Iterable[tuple[str, str, str]]  # (name, subject, body)


class SmtpInvalid(Invalid):
    """The outgoing server's settings break rules; `problems` lists each as a sentence."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SmtpSettings:
    """An account's own outgoing server as a form gives it (port as text or number)."""

    host: str = ""
    port: str | int = 587
    security: str = "starttls"
    username: str = ""
    from_address: str = ""
    from_name: str = ""
    password: str = field(default="", repr=False)  # empty: keep the stored one


# --- accounts ----------------------------------------------------------------------------------
def check_account_name(name: str) -> str:
    """An account's name, trimmed; Invalid when blank, too long or more than one line."""
    name = name.strip()
    if not name:
        raise Invalid(NAME_AGENCY)
    if len(name) > MAX_NAME_CHARS:
        raise Invalid(NAME_TOO_LONG)
    return users.check_name(name)


def create_account(name: str, starter_templates: StarterTemplates = ()) -> Account:
    """Create an account with a fresh inbox token and its starter templates, in one transaction."""
    name = check_account_name(name)
    with write_transaction():
        account = account_store.create_account(name)
        for template_name, subject, body in starter_templates:
            outbound_store.save_template(account.id, template_name, subject, body)
    return account


def set_up(
    token: str, agency: str, email: str, password: str, starter_templates: StarterTemplates = ()
) -> tuple[Account, User]:
    """The one-time setup: spend the setup token, create the agency's account and its owner.

    Conflict when another request set up first; Invalid (nothing stored, the token kept) when
    the name, the e-mail or the password breaks its rule."""
    check_account_name(agency)
    with write_transaction():
        if not claim_setup(token):
            raise Conflict(SETUP_DONE)
        account = create_account(agency, starter_templates)
        owner = users.create_user(account.id, email, "owner", password)
    return account, owner


# --- the account's own outgoing server -----------------------------------------------------------
def smtp_problems(
    smtp: SmtpSettings,
    *,
    check_host: Callable[[str, int], object] | None = None,
    hidden_line_break: Callable[[str], bool] | None = None,
) -> list[str]:
    """What is wrong with the server's settings, as sentences; empty when they can be stored.

    check_host(host, port) raises ValueError when the server may not be used (the shell's
    network policy); hidden_line_break(text) tells whether encoded words in a text decode to a
    line break (the shell's mail header rule)."""
    errors = []
    port = str(smtp.port).strip()
    host_ok = bool(HOST.match(smtp.host))
    # ASCII digits only ('²'.isdigit() holds), and at most five: int() is never asked to
    # read a superscript, an Arabic-Indic numeral or thousands of digits from the form
    port_ok = port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536
    if not host_ok:
        errors.append(N_("The server must be a host name or an IP address."))
    if not port_ok:
        errors.append(N_("The port must be a number from 1 to 65535."))
    if host_ok and port_ok and check_host is not None:
        try:
            check_host(smtp.host.strip("[]"), int(port))
        except ValueError as error:
            text = str(error)
            errors.append(f"{text[:1].upper()}{text[1:]}.")
    if smtp.security not in SECURITIES:
        errors.append(N_("Choose how the connection is secured."))
    address = smtp.from_address.strip().lower()
    if not (address.isascii() and is_address(address) and len(address) <= MAX_ADDRESS_CHARS):
        errors.append(N_("The sender address must be an email address."))
    if len(smtp.username) > MAX_SMTP_TEXT_CHARS:
        errors.append(N_("The user name is too long."))
    if len(smtp.from_name) > MAX_SMTP_TEXT_CHARS:
        errors.append(N_("The sender name is too long."))
    texts = (smtp.host, port, smtp.security, smtp.username, smtp.from_address, smtp.from_name)
    hidden = hidden_line_break is not None and any(hidden_line_break(value) for value in texts)
    if hidden or any(_breaks_line(value) for value in (*texts, smtp.password)):
        errors.append(N_("No field may contain a line break."))
    if len(smtp.password) > MAX_SMTP_PASSWORD_CHARS:
        errors.append(N_("The password is too long."))
    if not (smtp.username.isascii() and smtp.password.isascii()):
        # the mail client (smtplib) logs in with ASCII only: such a login could never work
        errors.append(N_("The user name and the password may hold only ASCII characters."))
    return errors


def _breaks_line(text: str) -> bool:
    """A NUL, or any character str.splitlines() ends a line at."""
    return "\x00" in text or len(f"{text}x".splitlines()) > 1


def save_smtp(
    account_id: int,
    smtp: SmtpSettings,
    *,
    user_id: int | None = None,
    check_host: Callable[[str, int], object] | None = None,
    hidden_line_break: Callable[[str], bool] | None = None,
) -> AccountSmtp:
    """Store the account's own outgoing server (an empty password keeps the stored one), or
    SmtpInvalid listing every problem."""
    problems = smtp_problems(smtp, check_host=check_host, hidden_line_break=hidden_line_break)
    if problems:
        raise SmtpInvalid(problems)
    return outbound_store.save_account_smtp(
        account_id,
        host=smtp.host.strip("[]"),
        port=int(str(smtp.port).strip()),
        security=smtp.security,
        username=smtp.username,
        password=smtp.password or None,
        from_address=smtp.from_address.strip().lower(),
        from_name=smtp.from_name,
        user_id=user_id,
    )


def remove_smtp(account_id: int, *, user_id: int | None = None) -> None:
    """Forget the account's own server: its mail goes out through the installation's again."""
    outbound_store.remove_account_smtp(account_id, user_id)


# --- the signature -------------------------------------------------------------------------------
def check_signature(signature: str) -> str:
    """A signature as stored (CRLF made LF, ends trimmed), or Invalid."""
    signature = signature.replace("\r\n", "\n").strip()
    if len(signature) > MAX_SIGNATURE_CHARS or "\x00" in signature:
        raise Invalid(Message(SIGNATURE_TOO_LONG, limit=MAX_SIGNATURE_CHARS))
    return signature


def set_signature(account_id: int, signature: str) -> str:
    """Store the account's signature (appended to mail to customers); return it as stored."""
    signature = check_signature(signature)
    outbound_store.set_signature(account_id, signature)
    return signature
