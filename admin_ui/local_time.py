"""Dates as the viewer sees them: in their effective time zone (their own, else the account's;
domain.time_zones), read once per request from the signed-in user.

Templates format every stored (naive UTC) moment through the filters registered here:
`moment|when` is the local time in the viewer's language ("2026-12-05 00:30" in English,
"05.12.2026, 00:30" in German: Babel's medium date and short time, joined as the locale
joins them), `moment|local_date` the local day, and `moment|time_tag` a <time> element whose
datetime attribute keeps the UTC instant (…Z) and whose title names the zone.
"""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date, format_time, get_datetime_format
from flask import Flask, g, has_request_context
from markupsafe import Markup, escape

from admin_ui.i18n import current_language
from domain.time_zones import DEFAULT, effective_name, local_time, zone, zone_names
from storage.models import User

SHOWN = "%Y-%m-%d %H:%M"  # English (the format every page had before languages)


def viewer_zone_name(user: User | None = None) -> str:
    """The name of the zone of user (default: the request's signed-in user), UTC without one."""
    if user is None:
        if not has_request_context():
            return DEFAULT
        cached = g.get("time_zone_name")
        if cached is not None:
            return cached
        user = g.get("user")
        name = effective_name(user) if user is not None else DEFAULT
        g.time_zone_name = name
        return name
    return effective_name(user)


def viewer_zone(user: User | None = None) -> dt.tzinfo:
    """The tzinfo the viewer (or user) sees, filters and types dates in."""
    return zone(viewer_zone_name(user))


def in_viewer_zone(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else local_time(moment, viewer_zone())


def when(moment: dt.datetime | None, fmt: str = SHOWN) -> str:
    """A stored moment as the viewer's wall-clock time in their language, "" for None."""
    local = in_viewer_zone(moment)
    return "" if local is None else shown(local, fmt)


def shown(local: dt.datetime, fmt: str = SHOWN, language: str | None = None) -> str:
    """An aware local time as text: strftime(fmt) in English, else the locale's own
    medium date + short time ("05.12.2026, 00:30" in German)."""
    language = language or current_language()
    if language == "en":
        return local.strftime(fmt)
    pattern = get_datetime_format("medium", locale=language)
    return pattern.replace("{1}", format_date(local, "medium", locale=language)).replace(
        "{0}", format_time(local, "short", locale=language)
    )


def local_date(moment: dt.datetime | None) -> dt.date | None:
    """The viewer's day a stored moment falls on."""
    local = in_viewer_zone(moment)
    return None if local is None else local.date()


def time_tag(moment: dt.datetime | None, fmt: str = SHOWN) -> Markup:
    """<time> with the UTC instant for machines, the local time as text, the zone as title."""
    if moment is None:
        return Markup("")
    instant = moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    local = in_viewer_zone(moment)
    title = f"{local.strftime('%Y-%m-%d %H:%M:%S')} {viewer_zone_name()} (UTC{_offset(local)})"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        instant, title, escape(shown(local, fmt))
    )


def _offset(local: dt.datetime) -> str:
    offset = local.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def register(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(time_tag, "time_tag")
    app.add_template_global(viewer_zone_name, "viewer_zone_name")
    app.add_template_global(zone_names, "time_zone_names")
