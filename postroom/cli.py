"""The `postroom` command: the only place that wires config, storage, ingest and UI together."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import click

from postroom import __version__
from postroom.config import ConfigError, Settings, find_config_file, load_settings, parse_listen
from postroom.installation import ForeignPackage, check_own_packages


class Context:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(find_config_file(self.config_path))
            except ConfigError as error:
                raise click.ClickException(f"configuration error: {error}") from None
        return self._settings

    def open_database(self, *, check: bool = True):
        from storage.db import DriverMissing, SchemaError, check_schema, open_database

        storage = self.settings.storage
        try:
            db = open_database(
                storage.url,
                busy_timeout_ms=storage.busy_timeout_ms,
                max_page_count=storage.sqlite_max_page_count,
                pool_size=storage.pool_size,
            )
            if check:
                check_schema(db)
        except (SchemaError, DriverMissing) as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:  # noqa: BLE001 - any failure to open is one clear line
            raise click.ClickException(
                f"cannot open the database {_safe_url(storage.url)}: {error}"
            ) from None
        return db


def _safe_url(url: str) -> str:
    """Hide a password in a database URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log.level.upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command lines
    logging.getLogger("mailparser").setLevel(logging.ERROR)


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group()
@click.version_option(__version__, prog_name="postroom")
@click.option(
    "-c", "--config", "config_path", metavar="FILE", help="Config file (or POSTROOM_CONFIG)."
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """postroom: mail ingestion and project protocols for web agencies."""
    os.umask(0o077)  # whatever the service manager or shell says: nothing we write is for others
    try:
        check_own_packages()
    except ForeignPackage as error:
        raise click.ClickException(str(error)) from None
    ctx.obj = Context(config_path)


@main.command("check-config")
@click.pass_obj
def check_config(obj: Context) -> None:
    """Validate the configuration and print the effective settings."""
    settings = obj.settings
    click.echo(f"# settings from {settings.source}")
    data = settings.as_dict()
    data["storage"]["url"] = _safe_url(data["storage"]["url"])
    for section, values in data.items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
        click.echo()


@main.command()
@click.pass_obj
def init(obj: Context) -> None:
    """Create the database, or bring it up to date (safe to run again)."""
    from storage.db import migrate

    applied = migrate(obj.open_database(check=False))
    click.echo(f"database ready ({len(applied)} migrations applied)")


@main.command("migrate")
@click.pass_obj
def migrate_command(obj: Context) -> None:
    """Apply pending schema migrations."""
    from storage.db import migrate

    applied = migrate(obj.open_database(check=False))
    click.echo("applied: " + ", ".join(applied) if applied else "schema is current")


@main.group()
def account() -> None:
    """Manage accounts."""


@account.command("create")
@click.argument("name")
@click.option(
    "--time-zone",
    default="UTC",
    show_default=True,
    help="The account's IANA time zone (e.g. Europe/Berlin): dates are shown and searched in it.",
)
@click.option(
    "--language",
    default="en",
    show_default=True,
    help="The account's language (en, de): its pages, its notification mail and the language "
    "of its starter mail templates.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def account_create(obj: Context, name: str, time_zone: str, language: str, as_json: bool) -> None:
    """Create an account (with the starter mail templates in its language) and print its inbox
    address."""
    from domain.accounts import create_account
    from domain.errors import DomainError
    from domain.languages import check_language, set_account_language
    from domain.time_zones import check_time_zone, set_account_time_zone
    from postroom.starter_templates import starter_templates
    from storage.accounts import inbox_local_part

    obj.open_database()
    try:
        time_zone = check_time_zone(time_zone)
        language = check_language(language)
        created = create_account(name, starter_templates(language))
        set_account_time_zone(created.id, time_zone)
        set_account_language(created.id, language)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    address = f"{inbox_local_part(created)}@{obj.settings.ingest.domains[0]}"
    if as_json:
        _echo_json({"id": created.id, "name": created.name, "inbox_address": address})
    else:
        click.echo(f"account {created.id} created; inbox address: {address}")


@account.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def account_list(obj: Context, as_json: bool) -> None:
    """List accounts with their inbox addresses."""
    from storage.accounts import inbox_local_part
    from storage.models import Account

    obj.open_database()
    domain = obj.settings.ingest.domains[0]
    rows = [
        {"id": a.id, "name": a.name, "inbox_address": f"{inbox_local_part(a)}@{domain}"}
        for a in Account.select().order_by(Account.id)
    ]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        click.echo(f"account {row['id']} ({row['name']}): inbox address {row['inbox_address']}")


@account.command("rotate-token")
@click.argument("account_id", type=int)
@click.option("--project", "project_id", type=int, help="Replace this project's reply address.")
@click.option(
    "--grace-days",
    type=click.IntRange(0, 365),
    default=None,
    help="Days the old address keeps taking mail (default: [ingest] token_grace_days;"
    " 0 ends it now).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def account_rotate_token(obj: Context, account_id, project_id, grace_days, as_json) -> None:
    """Replace the account's inbox address (or a project's reply address) with a new one.

    The old address keeps taking mail for the grace period, then gets 550. Prints the new
    address and until when the old one works.
    """
    from domain.address_tokens import replace_inbox_address, replace_reply_address
    from domain.errors import DomainError
    from postroom.outbound import project_reply_address
    from storage.accounts import account_by_id, inbox_local_part
    from storage.projects import project_of_account

    obj.open_database()
    settings = obj.settings
    days = settings.ingest.token_grace_days if grace_days is None else grace_days
    domain = settings.ingest.domains[0]
    try:
        if project_id is None:
            old = account_by_id(account_id)
            if old is None:
                raise click.ClickException(f"no account {account_id}")
            account = replace_inbox_address(account_id, days)
            old_address = f"{inbox_local_part(old)}@{domain}"
            address = f"{inbox_local_part(account)}@{domain}"
            until = account.previous_inbox_token_until
        else:
            project = project_of_account(account_id, project_id)
            if project is None:
                raise click.ClickException(f"no project {project_id} in account {account_id}")
            old_address = project_reply_address(project, settings)
            project = replace_reply_address(project, days)
            address = project_reply_address(project, settings)
            until = project.previous_reply_token_until
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _echo_json(
            {
                "account_id": account_id,
                "project_id": project_id,
                "address": address,
                "old_address": old_address,
                "old_works_until": until.isoformat() + "Z",
                "grace_days": days,
            }
        )
        return
    what = "inbox address" if project_id is None else f"reply address of project {project_id}"
    click.echo(f"new {what}: {address}")
    click.echo(f"the old address, {old_address}, keeps working until {until:%Y-%m-%d %H:%M} UTC")


@main.group()
def project() -> None:
    """Manage projects."""


@project.command("create")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--name", required=True)
@click.option("--domain", default="")
@click.option("--status", default=None, help="One of [ui] project_statuses (default: the first).")
@click.option("--customer", "customers", multiple=True, help="A customer address (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def project_create(obj, account_id, name, domain, status, customers, as_json) -> None:
    """Create a project with its customer addresses."""
    from domain.errors import DomainError
    from domain.projects import create_project
    from storage.accounts import account_by_id, project_reply_detail

    obj.open_database()
    owner = account_by_id(account_id)
    if owner is None:
        raise click.ClickException(f"no account {account_id}")
    statuses = obj.settings.ui.project_statuses
    try:
        created = create_project(
            account_id,
            name,
            domain=domain,
            status=statuses[0] if status is None else status,
            customer_addresses=customers,
            statuses=statuses,
        )
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    reply = (
        f"inbox+{owner.id}.{owner.inbox_token}.{project_reply_detail(created)}"
        f"@{obj.settings.ingest.domains[0]}"
    )
    if as_json:
        _echo_json({"id": created.id, "name": created.name, "reply_address": reply})
    else:
        click.echo(f"project {created.id} created; reply address: {reply}")


@main.group()
def entries() -> None:
    """Look at entries."""


@entries.command("list")
@click.option("--account", "account_id", type=int)
@click.option("--project", "project_id", type=int)
@click.option("--unassigned", is_flag=True)
@click.option("--limit", type=int, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def entries_list(obj, account_id, project_id, unassigned, limit, as_json) -> None:
    """List entries, newest first."""
    from domain.routing import decision_of, explain
    from storage.entries import attachment_names, list_entries

    obj.open_database()
    rows = list_entries(account_id, project_id, unassigned, limit)
    names = attachment_names([e.id for e in rows])
    documents = [
        {
            "id": e.id,
            "account_id": e.account_id,
            "project_id": e.project_id,
            "kind": e.kind,
            "status": e.status,
            "subject": e.subject,
            "from": e.from_address,
            "route_reason": explain(decision_of(e)),
            "route": decision_of(e).as_json(),
            "candidates": e.candidate_ids,
            "parse_error": e.parse_error,
            "attachments": names[e.id],
            "message_id": e.message_id,
            "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None,
            "raw_sha256": e.raw_sha256,
            "auto_submitted": e.auto_submitted,
            "bounce": e.is_bounce,
        }
        for e in rows
    ]
    if as_json:
        _echo_json(documents)
        return
    for d in documents:
        where = f"project {d['project_id']}" if d["project_id"] else "unassigned"
        click.echo(f"{d['id']:>6}  {d['status']:<4}  {where:<12}  {d['from']:<30}  {d['subject']}")


def _serve(
    obj: Context, *, listeners: bool, web: bool, worker: bool = False, demo: bool = False
) -> None:
    from postroom.listen_error import ListenError
    from postroom.web import announce_setup, base_url, serve_in_thread

    settings = obj.settings
    _setup_logging(settings)
    obj.open_database()
    server = scheduler = None
    seeded = _seed_demo_account(settings) if demo else None  # before: no setup link then
    try:
        if web:  # first: the worker's links name the port bound (a port 0 in [web] listen)
            server, settings = serve_in_thread(settings)
            announce_setup(settings)
            if seeded is not None:
                click.echo(f"demo: log in at {base_url(settings)}/login")
        if worker:
            scheduler = _start_worker(settings)
        if listeners:
            from smtpd_ingest.listener import serve

            asyncio.run(
                serve(
                    settings,
                    after_start=_send_demo_mail(seeded) if seeded and seeded[1] else None,
                    reload=lambda: load_settings(find_config_file(obj.config_path)),
                )
            )
        else:
            _wait_for_signal()
    except ListenError as error:
        raise click.ClickException(error.explain(settings.source)) from None
    except OSError as error:
        raise click.ClickException(f"cannot listen: {error}") from None
    finally:
        if server is not None:
            server.close()
        if scheduler is not None:
            scheduler.stop()


def _start_worker(settings: Settings):
    from postroom.worker import Worker

    try:
        scheduled = Worker(settings)
    except ValueError as error:
        raise click.ClickException(f"configuration error: {settings.source}: {error}") from None
    scheduled.start()
    print(f"postroom worker ready ({scheduled.holder})", flush=True)  # for tests and operators
    return scheduled


def _wait_for_signal() -> None:
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def _seed_demo_account(settings: Settings) -> tuple[object, bool]:
    """Seed the demo account (once) and print its login, a new password every run; return
    (account, whether it is new)."""
    from postroom.demo import DEMO_OWNER, seed

    account, password, new = seed(settings)
    click.echo(f"demo login: {DEMO_OWNER} / {password}")
    return account, new


def _send_demo_mail(seeded: tuple[object, bool]):
    """What the listener runs once bound: the demo's sample mail, sent through it."""

    async def send(settings: Settings) -> None:
        from postroom.demo import send_samples

        loop = asyncio.get_running_loop()
        sent = await loop.run_in_executor(None, send_samples, settings, seeded[0])
        click.echo(f"demo: {sent} sample mails sent through the SMTP listener")

    return send


@main.command()
@click.pass_obj
def ingest(obj: Context) -> None:
    """Run the SMTP and LMTP listeners."""
    _serve(obj, listeners=True, web=False)


@main.command()
@click.pass_obj
def web(obj: Context) -> None:
    """Run the admin UI and API."""
    _serve(obj, listeners=False, web=True)


@main.command()
@click.option("--demo", is_flag=True, help="Seed a demo account and send it sample mail.")
@click.pass_obj
def run(obj: Context, demo: bool) -> None:
    """Run everything in one process: listeners, admin UI, worker."""
    _serve(obj, listeners=True, web=True, worker=True, demo=demo)


@main.command()
@click.pass_obj
def worker(obj: Context) -> None:
    """Run the scheduled jobs: mail sending, notifications, retention, backups."""
    _serve(obj, listeners=False, web=False, worker=True)


@main.command()
@click.pass_obj
def backup(obj: Context) -> None:
    """Back up the SQLite database now and print the backup's path."""
    from postroom.jobs.backup import BackupError, make_backup

    obj.open_database()
    try:
        path = make_backup(obj.settings)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(str(path))


@main.group()
def user() -> None:
    """Manage team members."""


@user.command("create")
@click.argument("email")
@click.option("--account", "account_id", type=int, required=True)
@click.option(
    "--role",
    default="member",
    show_default=True,
    help="owner, admin, member or read-only (domain.users.ROLES).",
)
@click.option("--name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def user_create(obj, email, account_id, role, name, password_stdin, as_json) -> None:
    """Add a team member to an account."""
    from domain.errors import DomainError
    from domain.users import create_user
    from storage.accounts import account_by_id

    obj.open_database()
    if account_by_id(account_id) is None:
        raise click.ClickException(f"no account {account_id}")
    password = _read_password(password_stdin)
    try:
        created = create_user(account_id, email, role, password, name=name)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _echo_json({"id": created.id, "email": created.email, "role": created.role})
    else:
        click.echo(f"user {created.id} ({created.email}, {created.role}) created")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def user_set_password(obj, email, password_stdin) -> None:
    """Set a team member's password (the way to reset a forgotten one)."""
    from domain.errors import DomainError
    from domain.users import find_user, set_password

    obj.open_database()
    found = find_user(email)
    if found is None:
        raise click.ClickException(f"no user {email}")
    try:
        set_password(found, _read_password(password_stdin))
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"password of {found.email} changed; their sessions and API tokens are ended")


@user.command("set-name")
@click.argument("email")
@click.argument("name")
@click.option(
    "--account", "account_id", type=int, help="The account, when the e-mail is in several."
)
@click.pass_obj
def user_set_name(obj, email, name, account_id) -> None:
    """Set a team member's display name (shown in the protocol and in their mail; "" clears it)."""
    from domain.errors import DomainError
    from domain.users import find_user, set_name

    obj.open_database()
    found = find_user(email, account_id)
    if found is None:
        raise click.ClickException(f"no user {email}")
    try:
        set_name(found, name)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    if found.name:
        click.echo(f"name of {found.email} set to {found.name!r}")
    else:
        click.echo(f"name of {found.email} cleared")


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("email")
@click.option("--name", default="cli")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Expire after N days.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def token_create(obj, email, name, expires_days, as_json) -> None:
    """Create an API token for a team member; it is shown once."""
    from domain.errors import DomainError
    from domain.tokens import create_api_token
    from domain.users import find_user

    obj.open_database()
    found = find_user(email)
    if found is None:
        raise click.ClickException(f"no user {email}")
    try:
        created = create_api_token(found, name, expires_days=expires_days)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _echo_json({"token": created, "user_id": found.id})
    else:
        click.echo(created)


@token.command("list")
@click.option("--user", "email", help="Only this team member's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def token_list(obj, email, as_json) -> None:
    """List API tokens (never their secret): id, user, name, created, last used, expiry."""
    from domain.tokens import api_tokens
    from domain.users import find_user

    obj.open_database()
    user_id = None
    if email:
        found = find_user(email)
        if found is None:
            raise click.ClickException(f"no user {email}")
        user_id = found.id
    rows = [
        {
            "id": row.id,
            "user": row.user.email,
            "account_id": row.user.account_id,
            "name": row.name,
            "created_at": row.created_at,
            "last_used_at": row.last_used_at,
            "expires_at": row.expires_at,
        }
        for row in api_tokens(user_id=user_id)
    ]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        used = row["last_used_at"] or "never used"
        expires = f"expires {row['expires_at']}" if row["expires_at"] else "no expiry"
        click.echo(f"{row['id']}\t{row['user']}\t{row['name']}\t{used}\t{expires}")


@token.command("revoke")
@click.argument("token_id", type=click.IntRange(min=1))
@click.pass_obj
def token_revoke(obj, token_id) -> None:
    """Revoke an API token by its id (see `postroom token list`); it fails at once."""
    from domain.errors import NotFound
    from domain.tokens import revoke_api_token

    obj.open_database()
    try:
        revoke_api_token(token_id)
    except NotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"API token {token_id} revoked")


@main.command()
@click.option("--all", "everything", is_flag=True, help="Re-parse every inbound entry.")
@click.pass_obj
def reprocess(obj: Context, everything: bool) -> None:
    """Parse again the mail that failed to parse or was left unprocessed.

    Pending mail that a running ingest holds is left to it; the rest is claimed first, so
    that no ingest takes it up while it is filed here (docs/operations.md, "Scale out").
    """
    from smtpd_ingest.parser_pool import ParserPool
    from smtpd_ingest.pipeline import reprocess_entry
    from smtpd_ingest.processor import reprocess_intakes
    from storage.models import Entry

    settings = obj.settings
    _setup_logging(settings)
    obj.open_database()
    parser = ParserPool(1, settings.ingest.parse_timeout_seconds)
    try:
        processed, held = reprocess_intakes(parser, settings.ingest.claim_timeout_seconds)
        query = Entry.select().where(Entry.kind == "inbound", Entry.raw_sha256.is_null(False))
        if not everything:
            query = query.where(Entry.parse_error.is_null(False))
        fixed = 0
        for entry in query:
            fixed += reprocess_entry(entry, parser).parse_error is None
        left = f" ({held} left to running ingests)" if held else ""
        click.echo(f"{processed} intakes processed{left}, {fixed} entries parsed again")
    finally:
        parser.close()


@main.command("postfix-snippet")
@click.pass_obj
def postfix_snippet(obj: Context) -> None:
    """Print the Postfix lines that forward the ingest domains to our LMTP listener."""
    ingest_settings = obj.settings.ingest
    listen = ingest_settings.lmtp_listen or ingest_settings.smtp_listen
    if not listen:
        raise click.ClickException("no listener configured (ingest.lmtp_listen is empty)")
    target, port = parse_listen(listen)
    kind = "lmtp" if ingest_settings.lmtp_listen else "smtp"
    if target.startswith("unix:"):
        # Debian chroots the stock lmtp service; a service of our own reaches the socket
        click.echo("# /etc/postfix/master.cf (a non-chrooted LMTP client for the unix socket)")
        click.echo(f"postroom-{kind} unix  -       -       n       -       -       {kind}")
        click.echo()
        next_hop = f"postroom-{kind}:unix:{target[5:]}"
    else:
        host = f"[{target}]" if ":" in target else target
        next_hop = f"{kind}:inet:{host}:{port}"
    click.echo("# /etc/postfix/main.cf")
    click.echo("transport_maps = hash:/etc/postfix/transport")
    click.echo()
    click.echo("# /etc/postfix/transport  (then run: postmap /etc/postfix/transport)")
    for domain in ingest_settings.domains:
        click.echo(f"{domain}    {next_hop}")


def _default_cutoff_days() -> int:
    from domain.archive import DEFAULT_CUTOFF_DAYS

    return DEFAULT_CUTOFF_DAYS


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--account", "account_id", type=int, required=True)
@click.option(
    "--cutoff-days",
    type=click.IntRange(min=0),
    default=lambda: _default_cutoff_days(),  # domain is imported after the package check
    help="Mail dated more than this many days ago is filed done (default 14).",
)
@click.option("--as-done", is_flag=True, help="File every imported mail done, whatever its age.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.pass_obj
def import_command(
    obj: Context,
    paths: tuple[Path, ...],
    account_id: int,
    cutoff_days: int,
    as_done: bool,
    as_json: bool,
) -> None:
    """Import mbox files, maildirs or .eml files through the ingest pipeline.

    Each mail goes to the project routing finds, as live mail does, but imported mail never
    notifies anyone. Mail whose Date header is older than the cut-off (default: 14 days) is
    filed done, so an archive does not fill Tickets; a mail without a usable date counts as
    new and stays open. --as-done files every mail done. A mail stored before is skipped.
    """
    import datetime as dt

    from domain.archive import cutoff_of
    from smtpd_ingest.importer import ImportCounts, count_messages, import_messages, iter_messages
    from smtpd_ingest.parser_pool import ParserPool
    from storage.accounts import account_by_id, inbox_local_part

    obj.open_database()
    owner = account_by_id(account_id)
    if owner is None:
        raise click.ClickException(f"no account {account_id}")
    recipient = f"{inbox_local_part(owner)}@{obj.settings.ingest.domains[0]}"
    cutoff = cutoff_of(cutoff_days, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    total = count_messages(list(paths))
    counts = ImportCounts()
    ingest = obj.settings.ingest
    parser = ParserPool(ingest.parse_workers, ingest.parse_timeout_seconds)
    try:
        with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
            for batch in import_messages(
                owner.id,
                recipient,
                iter_messages(list(paths)),
                parser,
                cutoff=cutoff,
                as_done=as_done,
            ):
                counts.add(batch)
                bar.update(batch.read)
    finally:
        parser.close()
    if as_json:
        _echo_json(
            {
                **counts.as_dict(),
                "new": counts.new,
                "open": counts.new - counts.spam - counts.done,
                "as_done": as_done,
                "cutoff": None if as_done else cutoff.isoformat(timespec="seconds") + "Z",
            }
        )
        return
    click.echo(_IMPORT_SUMMARY.format(c=counts, open=counts.new - counts.spam - counts.done))
    if counts.spam:
        click.echo(f"{counts.spam} discarded as spam (a blocked sender)")
    rule = "all, --as-done" if as_done else f"dated before {cutoff:%Y-%m-%d %H:%M} UTC"
    click.echo(f"{counts.done} filed done ({rule}), no notifications sent")


_IMPORT_SUMMARY = (
    "{c.read} messages read, {c.new} new: {c.filed} filed, {c.unassigned} unassigned,"
    " {c.already_stored} already stored, {c.failed} failed"
)


@main.group()
def db() -> None:
    """Move the data between databases."""


@db.command("copy")
@click.option("--to", "target_url", required=True, help="URL of an empty database.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def db_copy(obj: Context, target_url: str, as_json: bool) -> None:
    """Copy every row into another (empty) database, e.g. SQLite to PostgreSQL, and compare."""
    from storage.copy import CopyError, copy_database, fingerprint
    from storage.db import make_database, migrate

    source = obj.open_database()
    try:
        target = make_database(target_url)
        target.connect()
    except Exception as error:  # noqa: BLE001 - one clear line instead of a traceback
        raise click.ClickException(f"cannot open {_safe_url(target_url)}: {error}") from None
    migrate(target)

    def progress(table: str, rows: int) -> None:
        if not as_json:
            click.echo(f"\r{table}: {rows} rows", nl=False, err=True)

    try:
        counts = copy_database(source, target, progress)
        equal = fingerprint(source) == fingerprint(target)
    except CopyError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _echo_json({"tables": counts, "equal": equal})
    else:
        click.echo()
        click.echo(f"copied {sum(counts.values())} rows; counts and hashes equal: {equal}")
    if not equal:
        raise click.ClickException("the copy differs from the source; do not switch over")
