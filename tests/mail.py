"""Build small test messages."""

from __future__ import annotations

import uuid


def message(
    subject: str = "Hello",
    *,
    sender: str = "Customer <customer@customer.test>",
    to: str = "team@agency.test",
    body: str = "Please update the opening hours on the site.",
    headers: dict[str, str] | None = None,
) -> bytes:
    """Return a plain RFC 5322 message with CRLF line ends and a unique Message-ID."""
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Thu, 26 Nov 2026 10:00:00 +0100",
        f"Message-ID: <{uuid.uuid4().hex}@customer.test>",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()
