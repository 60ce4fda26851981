"""entry.event_kind, entry.event_params; activity.params: system entries and activity records
as structured events (issue 18).

A system entry postroom writes names what happened as a kind ("status_change",
"send_failed") and its parameters (JSON: ids, names, statuses, moments as ISO UTC), which
admin_ui.event_text turns into a sentence in the reader's language; an activity record keeps
its action and gains its parameters the same way. The English text is still written to
entry.subject / entry.text and activity.detail (search and the API read those).

Rows written before have NULL and are shown as they were stored (English). The status
changes among them are made structured here when the stored sentence is exactly the one
postroom wrote ("Status changed from A to B") and the entry's own status_change event holds
the same A and B; anything else (a sentence another tool reported) stays as it is.
Activity records of the entry page whose English detail postroom wrote in one known shape get
their params the same way (assigned, discarded with a block, queued, could not send, an
address replaced until a moment); a detail in any other shape stays as stored.
"""

import datetime as dt
import json

ENTRY_COLUMNS = ('"event_kind" VARCHAR(255)', '"event_params" TEXT')
ACTIVITY_COLUMN = '"params" TEXT'
BATCH = 500


def up(migrator, db):
    present = {c.name for c in db.get_columns("entry")}
    for column in ENTRY_COLUMNS:
        if column.split('"')[1] not in present:
            db.execute_sql(f"ALTER TABLE entry ADD COLUMN {column}")
    if "params" not in {c.name for c in db.get_columns("activity")}:
        db.execute_sql(f"ALTER TABLE activity ADD COLUMN {ACTIVITY_COLUMN}")
    _structure_status_changes(db)
    _structure_activity(db)


def _structure_status_changes(db):
    """Old status change entries whose sentence and event agree get kind and params."""
    mark = db.param
    last = 0
    while True:
        rows = db.execute_sql(
            "SELECT entry.id, entry.subject, event.payload FROM entry"  # noqa: S608 (marks only)
            " JOIN event ON event.entry_id = entry.id AND event.kind = 'status_change'"
            f" WHERE entry.kind = 'system' AND entry.event_kind IS NULL AND entry.id > {mark}"
            f" ORDER BY entry.id LIMIT {BATCH}",
            [last],
        ).fetchall()
        if not rows:
            return
        for entry_id, subject, payload in rows:
            last = entry_id
            params = _status_params(subject, payload)
            if params is not None:
                db.execute_sql(
                    f"UPDATE entry SET event_kind = 'status_change', event_params = {mark}"  # noqa: S608
                    f" WHERE id = {mark}",
                    [json.dumps(params, sort_keys=True), entry_id],
                )


def _status_params(subject, payload):
    try:
        data = json.loads(payload or "{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    old, new = data.get("from"), data.get("to")
    if not isinstance(old, str) or not isinstance(new, str):
        return None
    if subject != f"Status changed from {old} to {new}"[:500]:
        return None
    return {"from": old, "to": new}


ASSIGNED = {
    "and remembered the sender": "sender",
    "with the other mail from its sender": "same_sender",
}
PARSED_ACTIONS = (
    "assigned",
    "discarded",
    "mail_queued",
    "send_failed",
    "inbox_address_replaced",
    "reply_address_replaced",
)
UNTIL = "; the old address keeps working until "
UNTIL_SHAPE = "YYYY-MM-DD HH:MM UTC."


def _structure_activity(db):
    """Old records whose detail has the one shape postroom wrote get their params."""
    mark = db.param
    actions = ", ".join(f"'{action}'" for action in PARSED_ACTIONS)
    last = 0
    while True:
        rows = db.execute_sql(
            "SELECT id, action, detail FROM activity"  # noqa: S608 (constants and marks only)
            f" WHERE params IS NULL AND action IN ({actions}) AND id > {mark}"
            f" ORDER BY id LIMIT {BATCH}",
            [last],
        ).fetchall()
        if not rows:
            return
        for record_id, action, detail in rows:
            last = record_id
            params = _activity_params(action, detail or "")
            if params is not None:
                db.execute_sql(
                    f"UPDATE activity SET params = {mark} WHERE id = {mark}",  # noqa: S608
                    [json.dumps(params, sort_keys=True), record_id],
                )


def _activity_params(action, detail):
    if action == "assigned":
        return {"remembered": ASSIGNED[detail]} if detail in ASSIGNED else None
    if action == "discarded":
        blocked = detail.removeprefix("blocked ")
        return {"blocked": blocked} if blocked != detail and blocked else None
    if action == "send_failed":
        return {"error": detail} if detail else None
    if action == "mail_queued":
        to, _, template = detail.removeprefix("to ").partition(", template ")
        if not detail.startswith("to ") or not to or " " in to:
            return None
        return {"to": to, "template": template} if template else {"to": to}
    return _replaced_params(action, detail)


def _replaced_params(action, detail):
    """The inbox or reply address replaced: "… was replaced; the old address keeps working
    until 2026-12-11 23:30 UTC." (the project's name of a reply address in between)."""
    head, _, tail = detail.rpartition(UNTIL)
    if not head or len(tail) != len(UNTIL_SHAPE) or not tail.endswith(" UTC."):
        return None
    try:
        until = dt.datetime.strptime(tail[:-5], "%Y-%m-%d %H:%M")
    except ValueError:
        return None
    if action == "inbox_address_replaced":
        return {"until": until.isoformat()} if head == "The inbox address was replaced" else None
    name = head.removeprefix("The reply address of ").removesuffix(" was replaced")
    if not head.startswith("The reply address of ") or not head.endswith(" was replaced"):
        return None
    return {"project": name, "until": until.isoformat()}


def down(migrator, db):
    db.execute_sql('ALTER TABLE activity DROP COLUMN "params"')
    db.execute_sql('ALTER TABLE entry DROP COLUMN "event_params"')
    db.execute_sql('ALTER TABLE entry DROP COLUMN "event_kind"')
