"""Every command, UI route and API operation that changes state goes through the domain layer
(issue 15, acceptance 1), and the three entry points refuse the same thing with the same words.

The enumeration walks the real command tree (click), the real app's URL map (UI and API) and
reads each view's code: it, or a function of its own module it calls, calls into `domain`,
and its module neither writes to a model nor imports a storage function that writes (unless
tests/test_structure.py lists the module, with its reason). A new command or route that is
not classified here fails the test.
"""

from __future__ import annotations

import html
import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from domain.addresses import invalid_message
from domain.projects import TAKEN, TAKEN_HERE, create_project
from storage.models import CustomerAddress, Project

from .code_graph import domain_calls, dotted, model_writes, storage_writes_used
from .test_structure import WRITES_ALLOWED
from .web import csrf_token

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# --- the command line ----------------------------------------------------------------------
# Commands that change nothing: they read and print.
CLI_READS = {
    "account list",
    "check-config",
    "entries list",
    "postfix-snippet",
    "token list",
}
# Commands that change the installation, not the domain's state, or start the services whose
# changes are checked route by route below.
CLI_OPERATIONS = {
    "init": "creates the data directory and the database schema",
    "migrate": "runs the schema migrations",
    "backup": "copies the SQLite database file",
    "db copy": "copies a whole database to another URL, row for row",
    "ingest": "starts the listeners (the pipeline files mail as domain.routing decides)",
    "web": "starts the UI and the API (their routes are checked below)",
    "worker": "starts the worker (its jobs are listed in tests/test_structure.py)",
    "run": "starts listeners, UI, API and worker together",
    "import": "files mail from files through the ingest pipeline, as domain.routing decides",
    "reprocess": "files stored mail again through the ingest pipeline, as domain.routing decides",
}

# --- the UI --------------------------------------------------------------------------------
# Routes that change state through domain without calling it themselves.
UI_NOT_DOMAIN = {
    "auth.logout": "clears the Flask session; admin_ui.sessions ends its row through"
    " domain.sessions when the response is saved",
}
# Routes that change state, not yet through domain (tests/test_structure.py lists their module).
UI_LEFT: dict[str, str] = {}
API_LEFT: dict[str, str] = {}


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.update(_commands(command, f"{path} "))
        else:
            found[path] = command
    return found


def _module_writes(function) -> list:
    module = Path(inspect.getsourcefile(inspect.unwrap(function)))
    if dotted(module) in WRITES_ALLOWED:
        return []
    return model_writes(module) + storage_writes_used(module)


def test_every_state_changing_command_goes_through_domain():
    from postroom.cli import main

    commands = _commands(main)
    changing = set(commands) - CLI_READS - set(CLI_OPERATIONS)
    assert changing >= {"project create", "account create", "user create", "token create"}
    assert not (CLI_READS | set(CLI_OPERATIONS)) - set(commands), "a listed command is gone"
    not_through = {
        path: "calls nothing of domain"
        for path in sorted(changing)
        if not domain_calls(commands[path].callback)
    }
    assert not not_through
    for path in CLI_READS:
        assert not domain_calls(commands[path].callback), f"{path} changes state: classify it"
    assert not _module_writes(commands["project create"].callback)


def _rules(app, api: bool) -> dict[str, set[str]]:
    """endpoint -> the unsafe methods its rules take, for the UI (api=False) or the API."""
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/api/") != api:
            continue
        methods = set(rule.methods or ()) & UNSAFE
        if methods:
            found.setdefault(rule.endpoint, set()).update(methods)
    return found


def _through_domain(app, endpoints, left: dict[str, str], not_domain: dict[str, str]):
    problems = {}
    for endpoint in sorted(endpoints):
        view = app.view_functions[endpoint]
        calls = domain_calls(view)
        if endpoint in left or endpoint in not_domain:
            if calls and endpoint in left:
                problems[endpoint] = f"goes through domain now ({calls}): take it off the list"
            continue
        if not calls:
            problems[endpoint] = "calls nothing of domain"
        elif writes := _module_writes(view):
            problems[endpoint] = f"its module writes itself: {writes}"
    return problems


def test_every_state_changing_ui_route_goes_through_domain(web):
    endpoints = _rules(web.app, api=False)
    assert {"projects.new", "projects.add_address", "unassigned.assign", "entries.done"} <= set(
        endpoints
    )
    assert set(UI_LEFT) | set(UI_NOT_DOMAIN) <= set(endpoints), "a listed route is gone"
    assert not _through_domain(web.app, endpoints, UI_LEFT, UI_NOT_DOMAIN)


def test_every_state_changing_api_operation_goes_through_domain(web):
    endpoints = _rules(web.app, api=True)
    assert {"api.create_project", "api.add_address", "api.assign_entry"} <= set(endpoints)
    assert set(API_LEFT) <= set(endpoints), "a listed operation is gone"
    assert not _through_domain(web.app, endpoints, API_LEFT, {})


def test_the_enumeration_finds_a_view_that_writes_by_itself():
    """The check is not vacuous: a view that saves a row and calls no domain is refused."""
    from storage.models import Entry

    def done_by_hand(entry: Entry) -> None:
        entry.status = "done"
        entry.save()

    assert domain_calls(done_by_hand) == []
    assert domain_calls(test_every_state_changing_command_goes_through_domain) == []


# --- the same refusal, in the same words, from the CLI, the UI and the API --------------------
@pytest.fixture
def cli(web, db_url, tmp_path):
    """`postroom -c <config> ...` on the web fixture's database, as a subprocess."""
    config = tmp_path / "cli.toml"
    config.write_text(
        f'[storage]\nurl = "{db_url}"\ndata_dir = "{tmp_path}"\n'
        '[ingest]\ndomains = ["in.example"]\n'
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "postroom", "-c", str(config), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def _cli_refusal(cli, web, *customers: str) -> str:
    args = ["project", "create", "--account", str(web.account.id), "--name", "From the CLI"]
    for customer in customers:
        args += ["--customer", customer]
    result = cli(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    return line.removeprefix("Error: ")


def _ui_refusal(web, path: str, data: dict) -> str:
    client = web.client("member")
    response = client.post(path, data={**data, "csrf_token": csrf_token(client, "/projects/new")})
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    return html.unescape(response.get_data(as_text=True))


def _api(web):
    from domain.tokens import create_api_token

    token = create_api_token(web.users["member"], "test")
    client = web.app.test_client()

    def post(path: str, body: dict):
        response = client.post(
            "/api/v1" + path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code, response.get_json()["error"]

    return post


def test_an_invalid_address_is_refused_with_the_same_message_by_cli_ui_and_api(web, cli):
    text = "Anna@bakery"  # the CLI used to store it: it had a rule of its own ("@", no space)
    message = invalid_message(text)
    assert message == "not a valid email address: 'Anna@bakery'"

    assert _cli_refusal(cli, web, text) == message
    page = _ui_refusal(
        web, "/projects/new", {"name": "From the UI", "status": "lead", "addresses": text}
    )
    assert message in page
    api = _api(web)
    assert api("/projects", {"name": "From the API", "customer_addresses": [text]}) == (
        422,
        message,
    )

    project = create_project(web.account.id, "Bakery")
    page = _ui_refusal(web, f"/projects/{project.id}/addresses", {"address": text})
    assert message in page
    assert api(f"/projects/{project.id}/addresses", {"address": text}) == (422, message)
    assert Project.select().count() == 1
    assert CustomerAddress.select().count() == 0


def test_an_address_of_another_project_is_refused_by_cli_ui_and_api(web, cli):
    """The CLI used to store it on a second project (issue 15: a listed bug)."""
    bakery = create_project(web.account.id, "Bakery", customer_addresses=["anna@bakery.example"])
    shop = create_project(web.account.id, "Shop")
    typed = "Anna@Bakery.example"
    message = TAKEN % {"address": "anna@bakery.example", "project": "Bakery"}

    assert _cli_refusal(cli, web, typed) == message
    page = _ui_refusal(
        web, "/projects/new", {"name": "From the UI", "status": "lead", "addresses": typed}
    )
    assert message in page
    api = _api(web)
    assert api("/projects", {"name": "From the API", "customer_addresses": [typed]}) == (
        409,
        message,
    )
    page = _ui_refusal(web, f"/projects/{shop.id}/addresses", {"address": typed})
    assert message in page
    assert api(f"/projects/{shop.id}/addresses", {"address": typed}) == (409, message)
    here = TAKEN_HERE % {"address": "anna@bakery.example"}
    assert api(f"/projects/{bakery.id}/addresses", {"address": typed}) == (409, here)

    assert [p.name for p in Project.select().order_by(Project.id)] == ["Bakery", "Shop"]
    rows = [(row.project_id, row.address) for row in CustomerAddress.select()]
    assert rows == [(bakery.id, "anna@bakery.example")]


def test_what_the_cli_accepts_it_stores_as_the_ui_and_api_do(web, cli):
    result = cli(
        "project",
        "create",
        "--account",
        str(web.account.id),
        "--name",
        "  Bakery  ",
        "--domain",
        "Bakery.Example",
        "--customer",
        " Anna@Bakery.example ",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    project = Project.get_by_id(created["id"])
    assert (project.name, project.domain, project.status) == ("Bakery", "bakery.example", "lead")
    assert [row.address for row in project.customer_addresses] == ["anna@bakery.example"]
