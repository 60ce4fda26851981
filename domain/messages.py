"""Mail to customers: queueing a checked mail as an outbound entry, and queueing a failed one
again.

A queued mail is an outbound entry of its project, done (it is the team's own action), by its
author, with its attachments, index row and queue row, stored all at once. Only a mail that
failed for good is queued again, from a fresh attempt count; the log keeps who did it.

What may stand in a mail's headers, what a template renders to and who sends it are decided
in postroom (mail_headers, outbound_checks, mail_templates, outbound), which prepare the
record handed to queue(); the worker sends what is queued (postroom/outbound_send.py).
"""

from __future__ import annotations

from storage.models import Entry, OutboundMessage
from storage.outbound import OutboundRecord, requeue, store_outbound


def queue(record: OutboundRecord) -> Entry:
    """Store a checked mail to a customer as a queued outbound entry; return the entry."""
    return store_outbound(record)


def retry(outbound: OutboundMessage, user_id: int | None) -> bool:
    """Queue a mail that failed for good once more; False (nothing done) for any other."""
    if outbound.state != "failed":
        return False
    requeue(outbound, user_id)
    return True
