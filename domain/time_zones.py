"""Time zones: the account's (asked at setup, an owner changes it in Settings) and a user's own
override (the profile; empty: the account's). Dates are stored as naive UTC; a user sees them,
filters them and types them (a call's time) in their effective zone.

Names are IANA names known to zoneinfo (`Europe/Berlin`, `UTC`); one typed in another case is
taken in its proper spelling. A stored name zoneinfo no longer knows (a tz database without it)
reads as UTC rather than failing a page.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from domain.errors import Invalid
from domain.translatable import N_
from storage.db import write_transaction
from storage.models import Account, User

DEFAULT = "UTC"
MAX_NAME_CHARS = 64
UNKNOWN_ZONE = N_("Choose a time zone from the list, such as Europe/Berlin or UTC.")


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name zoneinfo knows, sorted (the choices a form offers)."""
    return tuple(sorted(zoneinfo.available_timezones() | {DEFAULT}))


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in zone_names()}


def check_time_zone(name: str) -> str:
    """The zone's proper IANA name for name (trimmed, any case), or Invalid."""
    name = (name or "").strip()
    known = _by_folded_name().get(name.casefold()) if len(name) <= MAX_NAME_CHARS else None
    if known is None:
        raise Invalid(UNKNOWN_ZONE)
    return known


def zone(name: str | None) -> dt.tzinfo:
    """The tzinfo of a stored name; UTC for None, "" or a name this system does not know."""
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(check_time_zone(name))
    except (Invalid, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def effective_name(user: User) -> str:
    """The name of the zone a user sees dates in: their own, else their account's."""
    return user.time_zone or user.account.time_zone or DEFAULT


def effective_zone(user: User) -> dt.tzinfo:
    """The tzinfo a user sees, filters and types dates in."""
    return zone(effective_name(user))


def local_time(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A stored (naive UTC) moment as an aware datetime in tz; in UTC when tz would put it
    past the calendar's end (a Date of 9999-12-31 23:59 seen east of UTC: anyone can send
    one), so a page never fails on it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(tz)
    except OverflowError:
        return moment.astimezone(dt.UTC)


def to_utc(local: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A wall-clock time typed in tz as stored (naive UTC); OverflowError past the calendar.

    A time the clocks skipped (the hour a DST change jumps over) is read with the offset
    before the change, an hour that came twice as its first time (zoneinfo's fold=0).
    """
    return local.replace(tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None)


def set_account_time_zone(account_id: int, name: str) -> str:
    """Set the account's zone (checked); return the stored name."""
    name = check_time_zone(name)
    with write_transaction():
        Account.update(time_zone=name).where(Account.id == account_id).execute()
    return name


def set_user_time_zone(user: User, name: str | None) -> str | None:
    """Set a user's own zone (checked); "" or None: use the account's again."""
    name = check_time_zone(name) if name and name.strip() else None
    with write_transaction():
        User.update(time_zone=name).where(User.id == user.id).execute()  # never a stale copy
    user.time_zone = name
    return name
