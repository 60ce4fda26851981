"""Retention: purge mail discarded as spam after `[retention] spam_days`, and old outbox rows.

Unassigned and filed mail is never purged here; only what a person (or a block rule) marked
as spam goes, with its intake records and raw message once nothing else uses them.
"""

from __future__ import annotations

import datetime as dt

from postroom.config import Settings
from storage.housekeeping import purge_processed_events, purge_spam
from storage.models import utcnow

# Notifications (and the events behind them) are kept this long, read or not.
NOTIFICATION_DAYS = 90


def purge(settings: Settings, now: dt.datetime | None = None) -> str | None:
    """Job: delete spam older than spam_days and events older than NOTIFICATION_DAYS."""
    now = now or utcnow()
    done = []
    if settings.retention.spam_days:
        purged = purge_spam(now - dt.timedelta(days=settings.retention.spam_days))
        if purged.entries:
            done.append(f"{purged.entries} spam entries, {purged.raw_messages} raw messages")
    events = purge_processed_events(now - dt.timedelta(days=NOTIFICATION_DAYS))
    if events:
        done.append(f"{events} old events with their notifications")
    return "purged " + "; ".join(done) if done else None
