"""System entries and activity records are stored as a kind and its parameters and read in the
reader's language (issue 18, acceptance 3's second half); rows written before (migration 0021)
read as they were stored."""

from __future__ import annotations

import ast
import datetime as dt
import html
import importlib.util
import json
import re

from flask import g

from admin_ui import event_text
from domain import address_tokens
from domain import entries as domain_entries
from domain import projects as domain_projects
from storage.activity import log
from storage.db import MIGRATIONS_DIR, _runner, migrate, open_database
from storage.entry_updates import insert_system_entry
from storage.models import Activity, Entry, Event, User
from tests.test_activity_words import PACKAGES, ROOT, written_actions
from tests.web import post


def _set_language(user, language: str, time_zone: str | None = None) -> None:
    User.update(language=language, time_zone=time_zone).where(User.id == user.id).execute()


def _protocol_rows(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", page))


# --- acceptance 3: one status change, two readers ------------------------------------------
def test_a_status_change_reads_in_english_and_in_german_on_the_same_project(web):
    project = domain_projects.create_project(web.account.id, "Bäckerei", status="lead")
    _set_language(web.users["owner"], "en")
    _set_language(web.users["member"], "de")
    response = post(
        web.client("admin"),
        f"/projects/{project.id}/edit",
        {"name": "Bäckerei", "status": "review"},
    )
    assert response.status_code == 302

    [system] = Entry.select().where((Entry.project == project.id) & (Entry.kind == "system"))
    # stored as what happened, not as a sentence; the English stays for search and the API
    assert system.event_kind == "status_change"
    assert json.loads(system.event_params) == {"from": "lead", "to": "review"}
    assert system.subject == "Status changed from lead to review"

    english = _protocol_rows(
        web.client("owner").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    )
    german = _protocol_rows(
        web.client("member").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    )
    assert "Status changed from lead to review" in english
    assert "Status von Anfrage auf in Prüfung geändert" in german
    assert "Status changed" not in german
    # the project's status itself, in the protocol's header, in words
    assert ">in Prüfung</span></h1>" in german
    assert ">review</span></h1>" in english
    entry_page = _protocol_rows(
        web.client("member").get(f"/entries/{system.id}").get_data(as_text=True)
    )
    assert "<h1>Status von Anfrage auf in Prüfung geändert</h1>" in entry_page


def test_a_status_another_tool_reports_keeps_its_own_words(web):
    """The API's events carry the reporting tool's subject: shown as reported, in any
    language (it is not postroom's sentence)."""
    project = domain_projects.create_project(web.account.id, "Bakery", status="lead")
    entry = domain_entries.record_project_event(
        project, "status_change", "Shop went live", status="live"
    )
    assert entry.event_kind is None
    _set_language(web.users["member"], "de")
    page = _protocol_rows(
        web.client("member").get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    )
    assert "Shop went live" in page


# --- activity ------------------------------------------------------------------------------
def test_activity_reads_in_the_readers_language_with_its_parameters(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    entry = domain_entries.add_manual_entry(project, web.users["owner"], kind="call", text="Hi")
    domain_entries.set_done(entry, web.users["owner"].id, True)
    log(
        web.account.id,
        "discarded",
        entry=entry.id,
        user=web.users["owner"].id,
        detail="blocked @spam.test",
        params={"blocked": "@spam.test"},
    )
    _set_language(web.users["member"], "de")
    _set_language(web.users["admin"], "en")

    def activity(role: str) -> str:
        page = web.client(role).get(f"/entries/{entry.id}").get_data(as_text=True)
        found = re.search(r'<ul class="activity">(.*?)</ul>', page, re.S)
        return _protocol_rows(found.group(1))

    german, english = activity("member"), activity("admin")
    assert "Owner hat es als erledigt markiert." in german
    assert "Owner hat es als Spam verworfen und @spam.test gesperrt." in german
    assert "Owner ticked it done." in english
    assert "Owner discarded it as spam and blocked @spam.test." in english


def test_a_replaced_address_names_its_moment_in_the_readers_zone_and_language(web):
    """A moment in params (ISO UTC) is shown through admin_ui.local_time: a German reader in
    Europe/Berlin reads the local time in German."""
    now = dt.datetime(2026, 12, 4, 23, 30)
    until = address_tokens.old_works_until(7, now)
    address_tokens.replace_inbox_address(web.account.id, 7, by=web.users["owner"])
    [record] = Activity.select().where(Activity.action == "inbox_address_replaced")
    Activity.update(params=json.dumps({"until": until.isoformat()})).where(
        Activity.id == record.id
    ).execute()
    record = Activity.get_by_id(record.id)
    assert "UTC" in record.detail  # the English words are kept too

    _set_language(web.users["member"], "de", "Europe/Berlin")
    member = User.get_by_id(web.users["member"].id)
    with web.app.test_request_context("/"):
        g.user = member
        sentence = event_text.activity_sentence(record, "Owner")
    assert sentence == (
        "Owner hat die Eingangsadresse ersetzt; die alte Adresse funktioniert noch bis"
        " 12.12.2026, 00:30 (Europe/Berlin)."
    )


# --- rows from before 0021 -----------------------------------------------------------------
def test_rows_written_before_structured_events_read_as_stored(web):
    project = domain_projects.create_project(web.account.id, "Bakery", status="lead")
    old = insert_system_entry(
        project,
        "Status changed from lead to review",
        route_rule="system",
        category="internal",
    )
    log(
        web.account.id,
        "assigned",
        entry=old.id,
        project=project.id,
        user=web.users["owner"].id,
        detail="and remembered the sender",
    )
    assert old.event_kind is None
    _set_language(web.users["member"], "de")
    page = _protocol_rows(web.client("member").get(f"/entries/{old.id}").get_data(as_text=True))
    assert "<h1>Status changed from lead to review</h1>" in page
    assert "Owner hat es zugeordnet (and remembered the sender)." in page


# --- every kind and action the code writes has its sentence --------------------------------
def written_event_kinds() -> dict[str, list[str]]:
    """Every event_kind="…" a writer of system entries passes, with where (file:line)."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                for keyword in node.keywords:
                    if keyword.arg != "event_kind" or isinstance(keyword.value, ast.Name):
                        continue  # a name passes its caller's value on
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    value = keyword.value
                    assert isinstance(value, ast.Constant) and isinstance(value.value, str), (
                        f"{where}: write event_kind as a string literal: {ast.unparse(value)}"
                    )
                    found.setdefault(value.value, []).append(where)
    return found


def test_every_system_entry_kind_and_activity_action_has_a_sentence():
    kinds = written_event_kinds()
    assert {"status_change", "send_failed"} <= set(kinds)
    missing = {kind: where for kind, where in kinds.items() if kind not in event_text.SUBJECTS}
    assert not missing, f"add these to SUBJECTS in admin_ui/event_text.py: {missing}"
    actions = written_actions()
    missing = {name: where for name, where in actions.items() if name not in event_text.ACTIONS}
    assert not missing, f"add these to ACTIONS in admin_ui/event_text.py: {missing}"
    for key in event_text.DETAILED:
        assert key.partition(":")[0] in event_text.ACTIONS, key


def test_the_sentences_of_real_writers_fill_every_placeholder(web):
    """Each domain writer's params fill its sentence in both languages (no stored English)."""
    owner = web.users["owner"]
    project = domain_projects.create_project(
        web.account.id, "Bakery", customer_addresses=["anna@bakery.test"], user_id=owner.id
    )
    domain_projects.remove_customer_address(project, "anna@bakery.test", owner.id)
    address_tokens.replace_reply_address(project, 3, by=owner)
    records = list(Activity.select().where(Activity.params.is_null(False)))
    assert {r.action for r in records} >= {
        "address_added",
        "project_created",
        "address_removed",
        "reply_address_replaced",
    }
    shown = {}
    for language in ("en", "de"):
        _set_language(owner, language)
        with web.app.test_request_context("/"):
            g.user = User.get_by_id(owner.id)
            for record in records:
                sentence = event_text.activity_sentence(record, "Owner")
                assert "%(" not in sentence and "(" + record.detail not in sentence, sentence
                assert sentence.startswith("Owner ") and sentence.endswith("."), sentence
                shown[language, record.id] = sentence
    assert all(shown["en", r.id] != shown["de", r.id] for r in records)
    de = {}
    _set_language(owner, "de")
    with web.app.test_request_context("/"):
        g.user = User.get_by_id(owner.id)
        for record in records:
            de[record.action] = event_text.activity_sentence(record, "Owner")
    assert de["address_removed"] == "Owner hat die Kundenadresse anna@bakery.test entfernt."
    assert de["project_created"] == "Owner hat das Projekt Bakery angelegt."
    assert de["reply_address_replaced"].startswith(
        "Owner hat die Antwortadresse von Bakery ersetzt; die alte Adresse funktioniert noch bis"
    )


def test_a_mail_that_could_not_be_sent_reads_in_german():
    entry = Entry(
        kind="system",
        subject="Mail to anna@bakery.test could not be sent: Offer",
        text="postroom gave up after 3 attempts.",
        event_kind="send_failed",
        event_params=json.dumps(
            {
                "to": "anna@bakery.test",
                "subject": "Offer",
                "attempts": 3,
                "error": "550 no such user",
                "entry_id": 7,
            }
        ),
    )
    from flask import Flask
    from flask_babel import Babel, force_locale

    from admin_ui.i18n import TRANSLATIONS

    app = Flask(__name__)
    Babel(app, default_translation_directories=str(TRANSLATIONS))
    with app.test_request_context("/"), force_locale("de"):
        assert event_text.event_subject(entry) == (
            "E-Mail an anna@bakery.test konnte nicht gesendet werden: Offer"
        )
        assert event_text.event_text(entry) == (
            "postroom hat aufgegeben (Versuche: 3).\nLetzter Fehler: 550 no such user\n"
            "Die E-Mail ist Eintrag 7 dieses Protokolls."
        )


# --- migration 0021 ------------------------------------------------------------------------
def test_migration_0021_adds_the_columns_and_structures_old_status_changes(db_url):
    db = open_database(db_url)
    runner = _runner(db)
    runner.up("0018_open_defaults")
    assert "event_kind" not in {c.name for c in db.get_columns("entry")}
    assert "0021_structured_events" in migrate(db)
    assert {"event_kind", "event_params"} <= {c.name for c in db.get_columns("entry")}
    assert "params" in {c.name for c in db.get_columns("activity")}

    # rows as postroom wrote them before 0021: English only
    from storage.accounts import create_account

    account = create_account("Old agency")
    project = domain_projects.create_project(account.id, "Bakery", status="lead")

    def old_status_change(subject: str, payload: dict) -> Entry:
        entry = insert_system_entry(project, subject, route_rule="system", category="internal")
        Event.create(
            account=account.id,
            kind="status_change",
            entry=entry.id,
            project=project.id,
            payload=json.dumps(payload),
        )
        return entry

    ours = old_status_change(
        "Status changed from lead to in progress", {"from": "lead", "to": "in progress"}
    )
    reported = old_status_change("Shop went live", {"data": {}, "from": "lead", "to": "live"})
    mismatch = old_status_change("Status changed from a to b", {"from": "x", "to": "y"})
    note = insert_system_entry(project, "Change request", route_rule="system", category="internal")
    old_details = {
        ("assigned", "and remembered the sender"): {"remembered": "sender"},
        ("assigned", "with the other mail from its sender"): {"remembered": "same_sender"},
        ("discarded", "blocked @spam.test"): {"blocked": "@spam.test"},
        ("discarded", ""): None,
        ("mail_queued", "to anna@bakery.test"): {"to": "anna@bakery.test"},
        ("mail_queued", "to anna@bakery.test, template Offer, short"): {
            "to": "anna@bakery.test",
            "template": "Offer, short",
        },
        ("send_failed", "550 no such user"): {"error": "550 no such user"},
        (
            "inbox_address_replaced",
            "The inbox address was replaced; the old address keeps working until"
            " 2026-12-11 23:30 UTC.",
        ): {"until": "2026-12-11T23:30:00"},
        (
            "reply_address_replaced",
            "The reply address of Bakery; the old was replaced; the old address keeps working"
            " until 2026-12-11 23:30 UTC.",
        ): {"project": "Bakery; the old", "until": "2026-12-11T23:30:00"},
        ("inbox_address_replaced", "Replaced by hand"): None,
        ("done", ""): None,
    }
    records = {key: log(account.id, key[0], entry=ours.id, detail=key[1]).id for key in old_details}

    # its data step again, now that there are old rows (up() is idempotent)
    path = MIGRATIONS_DIR / "0021_structured_events.py"
    spec = importlib.util.spec_from_file_location("migration_0021", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration.up(None, db)

    def stored(entry: Entry):
        row = Entry.get_by_id(entry.id)
        return row.event_kind, row.event_params and json.loads(row.event_params), row.subject

    assert stored(ours) == (
        "status_change",
        {"from": "lead", "to": "in progress"},
        "Status changed from lead to in progress",
    )
    assert stored(reported) == (None, None, "Shop went live")
    assert stored(mismatch) == (None, None, "Status changed from a to b")
    assert stored(note) == (None, None, "Change request")
    for key, params in old_details.items():
        record = Activity.get_by_id(records[key])
        assert (record.params and json.loads(record.params)) == params, key
        assert record.detail == key[1]
    runner.up("0021_structured_events")  # nothing left to do
    db.close()
