"""System entries and activity records in the reader's language (issue 18).

postroom stores what happened as a kind and its parameters (entry.event_kind and
entry.event_params for a system entry; activity.action and activity.params for a record of
the log; params are JSON: ids, names, statuses, moments as ISO UTC) and this module makes the
sentence when a page shows it: a whole sentence per kind, translated with gettext, its
%(name)s placeholders filled from the parameters. Project statuses and other stored words
go through a table of their own (a status the table lacks, one an owner configured, is shown
as stored). Moments are shown in the viewer's time zone and language (admin_ui.local_time).

Rows written before structured events (migration 0021) have no kind or params: they are
shown as stored (English), the way every page showed them before.

Templates call `event_subject(entry)`, `event_text(entry)`, `activity_sentence(item, who)` and
`status_word(status)` (a project status; registered as globals by `register`).
tests/test_structured_events.py checks that every kind and action the code writes has its
sentence here.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Flask
from flask_babel import gettext

from admin_ui import local_time
from domain.translatable import N_
from storage.models import Activity, Entry

# Words for the project statuses postroom ships ([ui] project_statuses' default).
STATUS_WORDS = {
    "lead": N_("lead"),
    "in progress": N_("in progress"),
    "review": N_("review"),
    "live": N_("live"),
    "archived": N_("archived"),
}

# --- system entries: subject and text per event kind ----------------------------------------
SUBJECTS = {
    "status_change": N_("Status changed from %(from)s to %(to)s"),
    "send_failed": N_("Mail to %(to)s could not be sent: %(subject)s"),
}
GAVE_UP = N_("postroom gave up (attempts: %(num)d).")
LAST_ERROR = N_("Last error: %(error)s")
THE_MAIL_IS = N_("The mail is entry %(entry)s of this protocol.")

# --- activity: the sentence after who did it ----------------------------------------------
# Every action the code writes; used for a record without params (or whose params name no
# detail), and, with the record's stored English detail, for rows written before 0021.
ACTIONS = {
    "done": N_("%(who)s ticked it done"),
    "reopened": N_("%(who)s reopened it"),
    "assigned": N_("%(who)s assigned it"),
    "discarded": N_("%(who)s discarded it as spam"),
    "deleted": N_("%(who)s deleted it"),
    "not_spam": N_("%(who)s took it out of spam"),
    "unblocked": N_("%(who)s removed the block"),
    "mail_queued": N_("%(who)s queued it for sending"),
    "mail_requeued": N_("%(who)s queued it for sending again"),
    "send_failed": N_("%(who)s could not send it"),
    "bounced": N_("%(who)s marked it bounced"),
    "smtp_saved": N_("%(who)s saved the agency's mail server"),
    "smtp_removed": N_("%(who)s removed the agency's mail server"),
    "project_created": N_("%(who)s created the project"),
    "project_deleted": N_("%(who)s deleted the project"),
    "address_added": N_("%(who)s added a customer address"),
    "address_removed": N_("%(who)s removed a customer address"),
    "inbox_address_replaced": N_("%(who)s replaced the inbox address"),
    "open_defaults_changed": N_("%(who)s changed what starts open"),
    "reply_address_replaced": N_("%(who)s replaced the project's reply address"),
}
# punctuation around a translated clause (the same in English and German)
SENTENCE = "{event}."
WITH_STORED_DETAIL = "{event} ({detail})."

# With params: a whole sentence per action (and variant), its placeholders the params' keys.
DETAILED = {
    "assigned:sender": N_("%(who)s assigned it and remembered the sender."),
    "assigned:same_sender": N_("%(who)s assigned it with the other mail from its sender."),
    "discarded": N_("%(who)s discarded it as spam and blocked %(blocked)s."),
    "deleted": N_("%(who)s deleted entry %(entry_id)s: %(subject)s."),
    "unblocked": N_("%(who)s removed the block on %(pattern)s."),
    "mail_queued": N_("%(who)s queued it for sending to %(to)s."),
    "mail_queued:template": N_(
        "%(who)s queued it for sending to %(to)s, with template %(template)s."
    ),
    "send_failed": N_("%(who)s could not send it: %(error)s"),
    "bounced": N_("%(who)s marked it bounced: %(reason)s"),
    "bounced:recipient": N_("%(who)s marked it bounced for %(recipient)s: %(reason)s"),
    "smtp_saved": N_(
        "%(who)s saved the agency's mail server %(host)s:%(port)s, sending as %(from_address)s."
    ),
    "project_created": N_("%(who)s created the project %(name)s."),
    "project_deleted": N_("%(who)s deleted the project %(name)s (number %(project_id)s)."),
    "address_added": N_("%(who)s added the customer address %(address)s."),
    "address_removed": N_("%(who)s removed the customer address %(address)s."),
    "inbox_address_replaced": N_(
        "%(who)s replaced the inbox address; the old address keeps working until %(until)s."
    ),
    "reply_address_replaced": N_(
        "%(who)s replaced the reply address of %(project)s; the old address keeps working"
        " until %(until)s."
    ),
    "open_defaults_changed": N_(
        "%(who)s changed what starts open: notes %(notes)s, auto-replies %(auto_replies)s,"
        " system entries %(system)s, bounces %(bounces)s."
    ),
}
OPEN_OR_DONE = {"open": N_("open"), "done": N_("done")}
MOMENTS = ("until",)  # params holding an ISO UTC moment
WORDS = {
    "from": STATUS_WORDS,
    "to": STATUS_WORDS,
    **dict.fromkeys(("notes", "auto_replies", "system", "bounces"), OPEN_OR_DONE),
}


def _params(stored: str | None) -> dict | None:
    if not stored:
        return None
    try:
        params = json.loads(stored)
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


def _values(params: dict) -> dict:
    """params as shown: known words translated, moments in the viewer's zone and language."""
    shown = {}
    for key, value in params.items():
        if key in MOMENTS and isinstance(value, str):
            shown[key] = _moment(value)
        elif key in WORDS and isinstance(value, str) and value in WORDS[key]:
            shown[key] = gettext(WORDS[key][value])
        else:
            shown[key] = "" if value is None else value
    return shown


def _moment(iso: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"{local_time.when(moment)} ({local_time.viewer_zone_name()})"


def _fill(message: str, values: dict) -> str | None:
    """gettext(message) with values, None when a placeholder has no value."""
    try:
        return gettext(message, **values)
    except (KeyError, TypeError, ValueError):
        return None


def status_word(status: str | None) -> str:
    """A project status as the reader's word for it (a configured one we have no word for:
    as stored)."""
    if not status:
        return ""
    word = STATUS_WORDS.get(status)
    return gettext(word) if word is not None else status


# --- system entries ----------------------------------------------------------------------
def event_subject(entry: Entry) -> str:
    """The subject of an entry as the reader reads it: a structured system entry's sentence,
    else the stored subject."""
    params = _params(entry.event_params) if entry.event_kind else None
    message = SUBJECTS.get(entry.event_kind or "")
    if params is None or message is None:
        return entry.subject
    return _fill(message, _values(params)) or entry.subject


def event_text(entry: Entry) -> str:
    """The text of an entry as the reader reads it (the stored text unless structured)."""
    params = _params(entry.event_params) if entry.event_kind else None
    if params is None or entry.event_kind not in SUBJECTS:
        return entry.text
    if entry.event_kind == "send_failed":
        return _send_failed_text(params) or entry.text
    return ""


def _send_failed_text(params: dict) -> str | None:
    try:
        attempts = int(params["attempts"])
        lines = [
            gettext(GAVE_UP, num=attempts),
            gettext(LAST_ERROR, error=str(params["error"])),
            gettext(THE_MAIL_IS, entry=params["entry_id"]),
        ]
    except (KeyError, TypeError, ValueError):
        return None
    return "\n".join(lines)


# --- activity ------------------------------------------------------------------------------
def activity_sentence(item: Activity, who: str) -> str:
    """One record of the log as a sentence: who did what (and to what), in the reader's
    language; a record written before 0021 with its stored English detail."""
    base = ACTIONS.get(item.action)
    params = _params(item.params)
    if params is not None:
        values = _values(params)
        message = DETAILED.get(_variant(item.action, params))
        sentence = _fill(message, {**values, "who": who}) if message else None
        if sentence:
            return sentence
        if base is not None:
            return SENTENCE.format(event=gettext(base, who=who))
    event = gettext(base, who=who) if base is not None else f"{who} {item.action}"
    if item.detail and (params is None or base is None):
        return WITH_STORED_DETAIL.format(event=event, detail=item.detail)
    return SENTENCE.format(event=event)


def _variant(action: str, params: dict) -> str:
    """The key in DETAILED of a record's sentence."""
    if action == "assigned":
        return f"assigned:{params.get('remembered')}"
    if action == "mail_queued" and params.get("template"):
        return "mail_queued:template"
    if action == "bounced" and params.get("recipient"):
        return "bounced:recipient"
    return action


def register(app: Flask) -> None:
    app.add_template_global(event_subject, "event_subject")
    app.add_template_global(event_text, "event_text")
    app.add_template_global(activity_sentence, "activity_sentence")
    app.add_template_global(status_word, "status_word")
