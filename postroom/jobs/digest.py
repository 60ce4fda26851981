"""The daily digest: one mail per user with the notifications they chose to get once a day."""

from __future__ import annotations

from domain.translatable import N_
from postroom.config import Settings
from postroom.jobs.notify import mail_due

DIGEST_INTRO = N_("What happened in postroom since your last digest:")


def send_digests(settings: Settings) -> str | None:
    """Job: mail everybody their digest notifications not yet mailed (since the last digest)."""
    sent = mail_due(
        settings,
        "digest",
        intro=DIGEST_INTRO,
        digest=True,
    )
    return f"{sent} digest mails sent" if sent else None
