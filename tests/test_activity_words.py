"""The activity log shows words, not identifiers (issue 17): every action the code writes has
its sentence in admin_ui/event_text.py (ACTIONS; issue 18 made them sentences in the reader's
language), and the entry page shows that sentence."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from admin_ui import event_text
from domain import entries as domain_entries
from domain import projects as domain_projects
from storage.activity import log
from storage.models import Activity

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("admin_ui", "domain", "postroom", "smtpd_ingest", "storage")
# Ways code writes a row of the log: storage.activity.log(account, "action", ...) and
# Activity.create(..., action="action").
LOG_CALLS = {"log", "activity.log"}
CREATE_CALLS = {"Activity.create", "Activity.insert", "Activity"}


def _action_expression(call: ast.Call) -> ast.expr | None:
    name = ast.unparse(call.func)
    keyword = next((k.value for k in call.keywords if k.arg == "action"), None)
    if name in LOG_CALLS:
        return call.args[1] if len(call.args) > 1 else keyword
    if name in CREATE_CALLS or name.endswith(".insert_many"):
        return keyword
    return None


def _literals(expression: ast.expr) -> list[str]:
    """The names an action expression can take ("done" if done else "reopened"), or []."""
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return [expression.value]
    if isinstance(expression, ast.IfExp):
        body, orelse = _literals(expression.body), _literals(expression.orelse)
        return body + orelse if body and orelse else []
    return []


def written_actions() -> dict[str, list[str]]:
    """Every action name a writer of the log uses, with where (file:line)."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "activity.py" and path.parent.name == "storage":
                continue  # log() itself passes its argument on
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                expression = _action_expression(node)
                if expression is None:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                names = _literals(expression)
                assert names, (
                    f"{where}: write the activity action as a string literal (or a choice of "
                    f"literals) so its words can be checked: {ast.unparse(expression)}"
                )
                for name in names:
                    found.setdefault(name, []).append(where)
    return found


def phrases(app) -> dict[str, str]:
    """Each action's English sentence after who did it ("ticked it done")."""
    return {
        name: (sentence % {"who": "Owner"}).removeprefix("Owner ")
        for name, sentence in event_text.ACTIONS.items()
    }


def test_the_scan_finds_the_writers():
    actions = written_actions()
    assert {"done", "reopened", "assigned", "mail_queued", "project_created"} <= set(actions)


def test_every_action_the_code_writes_has_words(web):
    words = phrases(web.app)
    missing = {name: where for name, where in written_actions().items() if name not in words}
    assert not missing, f"add these to ACTIONS in admin_ui/event_text.py: {missing}"
    for name, phrase in words.items():
        assert phrase and "_" not in phrase, (name, phrase)


def test_the_entry_page_shows_the_words_and_no_identifier(web):
    project = domain_projects.create_project(web.account.id, "Bakery")
    entry = domain_entries.add_manual_entry(project, web.users["owner"], kind="note", text="Hi")
    words = phrases(web.app)
    for name in words:  # one row of every kind, as if each had happened to this entry
        log(web.account.id, name, entry=entry.id, project=project.id, user=web.users["owner"].id)
    page = web.client("member").get(f"/entries/{entry.id}").get_data(as_text=True)
    activity = html.unescape(re.search(r'<ul class="activity">(.*?)</ul>', page, re.S).group(1))
    rows = re.findall(r"<li>(.*?)</li>", activity, re.S)
    assert len(rows) == Activity.select().where(Activity.entry == entry.id).count()
    for name, phrase in words.items():
        assert any(f"Owner {phrase}" in row for row in rows), (name, phrase)
    identifiers = [name for name in written_actions() if "_" in name]
    shown = [name for name in identifiers if re.search(rf"\b{name}\b", activity)]
    assert not shown, f"the activity log shows identifiers: {shown}"
