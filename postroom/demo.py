"""Seed a demo account and send sample mail through the real SMTP listener."""

from __future__ import annotations

import secrets
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from domain.accounts import create_account
from domain.projects import create_project
from domain.users import create_user, find_user, set_password
from postroom.config import Settings, parse_listen
from postroom.mail_templates import STARTER_TEMPLATES
from storage.accounts import inbox_local_part
from storage.models import Account

DEMO_ACCOUNT = "Demo agency"
DEMO_OWNER = "demo@postroom.example"


def seed(settings: Settings) -> tuple[Account, str, bool]:
    """Create the demo account, owner and projects once; return (account, the owner's
    password, whether the account is new). Every run gives the demo owner a new password, so
    the login it prints works."""
    password = secrets.token_urlsafe(12)
    account = Account.get_or_none(Account.name == DEMO_ACCOUNT)
    if account is not None:
        owner = find_user(DEMO_OWNER)
        if owner is None:
            create_user(account.id, DEMO_OWNER, "owner", password, name="Demo owner")
        else:
            set_password(owner, password)
        return account, password, False
    account = create_account(DEMO_ACCOUNT, STARTER_TEMPLATES)
    if find_user(DEMO_OWNER) is None:
        create_user(account.id, DEMO_OWNER, "owner", password, name="Demo owner")
    projects = [
        (
            "Bakery Miller",
            "bakery-miller.example",
            "in progress",
            "Anna Miller",
            "anna@bakery-miller.example",
        ),
        (
            "Garden Studio Lind",
            "garden-lind.example",
            "review",
            "Jonas Lind",
            "jonas@garden-lind.example",
        ),
    ]
    for name, domain, status, contact, address in projects:
        create_project(
            account.id,
            name,
            domain=domain,
            status=status,
            contact_name=contact,
            customer_addresses=[address],
        )
    return account, password, True


def sample_mails(inbox: str) -> list[EmailMessage]:
    """A handful of realistic mails: customer mail, a reply, a stranger's enquiry, a file."""
    first_id = make_msgid(domain="bakery-miller.example")
    mails = [
        (
            "Anna Miller <anna@bakery-miller.example>",
            "New opening hours for the website",
            "Hello,\n\nfrom December we open at 6:30 on weekdays. Could you change that on the "
            "homepage?\n\nThanks, Anna",
            {"Message-ID": first_id},
        ),
        (
            "Tom Berger <tom@berger-consulting.example>",
            "Request: website for our consultancy",
            "Good morning,\n\nwe are looking for an agency to build a small website (5 pages, "
            "German and English). Do you have time in January?\n\nBest regards, Tom Berger",
            {},
        ),
        (
            "Paul Miller <paul@bakery-miller.example>",
            "Re: New opening hours for the website",
            "Also please add that we are closed on Mondays.\n\nPaul",
            {"In-Reply-To": first_id, "References": first_id},
        ),
        (
            "Jonas Lind <jonas@garden-lind.example>",
            "Photos for the gallery",
            "Hi, here is the first photo for the gallery page. More to follow.\n\nJonas",
            {},
        ),
    ]
    messages = []
    for number, (sender, subject, text, headers) in enumerate(mails):
        message = EmailMessage()
        message["From"] = sender
        message["To"] = inbox
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = headers.pop("Message-ID", make_msgid(domain="sender.example"))
        for key, value in headers.items():
            message[key] = value
        message.set_content(text)
        if number == 3:
            message.add_attachment(
                _sample_png(), maintype="image", subtype="png", filename="gallery-1.png"
            )
        messages.append(message)
    return messages


def send_samples(settings: Settings, account: Account) -> int:
    """Send the sample mails over SMTP to our own listener; return how many were accepted."""
    if not settings.ingest.smtp_listen:
        raise RuntimeError("the demo sends over SMTP: set [ingest] smtp_listen")
    host, port = parse_listen(settings.ingest.smtp_listen)
    inbox = f"{inbox_local_part(account)}@{settings.ingest.domains[0]}"
    sent = 0
    with smtplib.SMTP(host, int(port), timeout=30) as client:
        for message in sample_mails(inbox):
            client.send_message(message, to_addrs=[inbox])
            sent += 1
    return sent


def _sample_png() -> bytes:
    """A tiny valid PNG (a light blue square)."""
    import struct
    import zlib

    width = height = 16
    raw = b"".join(b"\x00" + b"\xbf\xdb\xfe" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
