"""Maintenance: forget stale leases and login counters; optimise the SQLite index when quiet.

Optimising rewrites the whole FTS5 index, so it waits until no mail has arrived for
IDLE_MINUTES (mailpit's rule: heavy work only when the database is idle). PostgreSQL's
autovacuum keeps its own index in shape; there only the leases are tidied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from postroom import leases, login_throttle
from postroom.config import Settings
from postroom.jobs import JobDeferred
from storage.db import is_sqlite
from storage.housekeeping import last_intake_at, optimise_search_index

IDLE_MINUTES = 5
FORGET_LEASES_AFTER = dt.timedelta(days=30)


def run(settings: Settings, known_jobs: Collection[str] = ()) -> str | None:
    """Job: tidy leases and login counters, then optimise the index if the database is idle."""
    now = leases.database_now()
    leases.clear_stale(set(known_jobs), now, FORGET_LEASES_AFTER)
    login_throttle.purge()
    if not is_sqlite():
        return None
    newest = last_intake_at()
    if newest is not None and now - newest < dt.timedelta(minutes=IDLE_MINUTES):
        raise JobDeferred(f"mail arrived at {newest:%H:%M:%S}; optimising when it is quiet")
    optimise_search_index()
    return "search index optimised"
