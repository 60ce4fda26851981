"""Create an account the way the product does everywhere: with the starter mail templates."""

from __future__ import annotations

from postroom.mail_templates import STARTER_TEMPLATES
from storage.accounts import create_account
from storage.db import write_transaction
from storage.models import Account
from storage.outbound import save_template


def new_account(name: str) -> Account:
    """Create an account and give it the four starter templates, in one transaction."""
    with write_transaction():
        account = create_account(name)
        for template_name, subject, body in STARTER_TEMPLATES:
            save_template(account.id, template_name, subject, body)
    return account
