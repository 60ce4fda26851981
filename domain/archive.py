"""Which imported mail is filed done: an archive import must not flood the team's Tickets.

Mail brought in by `postroom import` is filed as live mail is (domain.routing decides its
project), with two differences: it never notifies anyone, and mail older than a cut-off is
filed done. The age is the mail's Date header; a mail without a usable date counts as new
(it is left open, so nobody misses it). `--as-done` files everything done, whatever its age.
"""

from __future__ import annotations

import datetime as dt

DEFAULT_CUTOFF_DAYS = 14  # two weeks: what a team would still answer; older mail is history


def cutoff_of(days: int, now: dt.datetime) -> dt.datetime:
    """The moment before which a mail counts as old, `days` days before `now` (naive UTC)."""
    return now - dt.timedelta(days=days)


def filed_done(
    occurred_at: dt.datetime | None, cutoff: dt.datetime | None, *, as_done: bool = False
) -> bool:
    """Whether an imported mail dated `occurred_at` (naive UTC) is filed done.

    With `as_done` every mail is; else a mail dated before `cutoff` (None: no cut-off). A mail
    without a date counts as new.
    """
    if as_done:
        return True
    return cutoff is not None and occurred_at is not None and occurred_at < cutoff
