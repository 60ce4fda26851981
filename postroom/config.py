"""Read postroom's TOML settings into frozen dataclasses, validated once at start-up."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "data"


class ConfigError(Exception):
    """A setting is unknown or invalid; the message names file, key and reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source, self.key, self.reason = source, key, reason


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = DEFAULT_DATA_DIR
    url: str = ""  # filled from data_dir when empty
    busy_timeout_ms: int = 5000
    sqlite_max_page_count: int = 0  # 0: no cap; a cap defers mail with 452 when reached
    pool_size: int = 10  # PostgreSQL connections one process may hold at most
    backup_dir: str = ""  # empty: <data_dir>/backups
    backup_keep: int = 7
    backup_interval_hours: float = 24.0  # 0: no scheduled backups


@dataclass(frozen=True)
class IngestSettings:
    smtp_listen: str = "127.0.0.1:2525"
    lmtp_listen: str = "127.0.0.1:2424"
    domains: tuple[str, ...] = ("localhost",)
    hostname: str = field(default_factory=socket.getfqdn)
    max_message_bytes: int = 26_214_400
    max_recipients: int = 50
    max_smtp_connections: int = 200  # open SMTP sessions; more get 421 4.3.2
    max_lmtp_connections: int = 100  # open LMTP sessions, counted apart from SMTP
    max_connections_per_address: int = 20  # SMTP sessions of one client address (IPv6: /64)
    data_timeout_seconds: float = 600.0  # wall-clock limit of one DATA phase; then 421 4.4.2
    session_timeout_seconds: float = 3600.0  # an SMTP/LMTP session ends between transactions
    # a parse in a worker past this is killed, the mail filed raw with the reason (a 25 MB
    # mail of 990 attachments parses in 0.5 s; the slowest measured, 24 MB of To header, 11 s)
    parse_timeout_seconds: float = 30.0
    parse_workers: int = 0  # 0: one per core
    # an ingest that died is presumed dead this long after its last heartbeat; then another
    # ingest on the same database takes up the mail it had claimed (storage/intake.py)
    claim_timeout_seconds: float = 60.0
    # a replaced inbox or reply address keeps taking mail this many days, then gets 550: long
    # enough for address books and replies to mail already sent, short enough for a leak
    token_grace_days: int = 14


@dataclass(frozen=True)
class WebSettings:
    listen: str = "127.0.0.1:8080"
    base_url: str = ""  # as users reach it, e.g. https://postroom.agency.example; for links
    secure_cookies: bool = False  # true behind https
    session_idle_minutes: int = 480
    session_max_hours: int = 168  # a login ends this long after it began, however active
    metrics_token: str = ""  # the Bearer token /metrics asks for; empty: /metrics answers 404
    threads: int = 8
    # proxies (addresses or CIDR networks) whose X-Forwarded-For/-Proto are believed; none
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"


@dataclass(frozen=True)
class UiSettings:
    # the statuses a project can have, in the order offered; "archived" hides a project
    project_statuses: tuple[str, ...] = ("lead", "in progress", "review", "live", "archived")


@dataclass(frozen=True)
class OutboundSettings:
    smtp_url: str = ""  # smtp://[user:password@]host[:port][?security=starttls|tls|none]
    from_address: str = ""  # empty: no-reply@<first ingest domain>
    from_name: str = ""  # empty: the account's (agency's) name
    max_attachment_bytes: int = 10_485_760
    max_attempts: int = 8  # then the entry shows the failure and the author is told
    connect_timeout_seconds: float = 10.0  # connect, greeting, TLS, login; later replies: 60 s
    parallel_accounts: int = 4  # accounts whose queued mail is sent at the same time
    session_seconds: float = 600.0  # one SMTP session at most; then it is ended, mail retried
    # an account's own server (settings page): these ports only, and public addresses only
    allowed_ports: tuple[int, ...] = (25, 465, 587, 2525)
    allow_private_hosts: bool = False  # true: loopback, private, link-local addresses too


@dataclass(frozen=True)
class WorkerSettings:
    poll_seconds: float = 5.0  # how often queued mail and new events are looked at
    lease_seconds: float = 60.0  # a dead worker's jobs are taken over after this long
    digest_hour: int = 7  # UTC hour of the daily notification digest


@dataclass(frozen=True)
class RetentionSettings:
    spam_days: int = 30  # discarded mail is purged after this many days (0: never)


# Large free-mail domains: "block @domain" is refused for them (domain.blocks keeps the same list).
FREE_MAIL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "t-online.de",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "mail.de",
    "freenet.de",
)


@dataclass(frozen=True)
class SpamSettings:
    # whole domains never blocked as spam: only single senders there are
    free_mail_domains: tuple[str, ...] = FREE_MAIL_DOMAINS


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings = field(default_factory=StorageSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    web: WebSettings = field(default_factory=WebSettings)
    log: LogSettings = field(default_factory=LogSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    spam: SpamSettings = field(default_factory=SpamSettings)
    source: str = "<defaults>"

    def as_dict(self) -> dict[str, Any]:
        """Return the effective settings as plain data, for `check-config`."""
        data = dataclasses.asdict(self)
        data.pop("source")
        return data


_SECTIONS = {
    "storage": StorageSettings,
    "ingest": IngestSettings,
    "web": WebSettings,
    "log": LogSettings,
    "ui": UiSettings,
    "outbound": OutboundSettings,
    "worker": WorkerSettings,
    "retention": RetentionSettings,
    "spam": SpamSettings,
}
_LOG_LEVELS = ("debug", "info", "warning", "error")
# keys of earlier versions: the error says what to write instead
_REPLACED_KEYS = {
    "ingest.max_connections": "replaced by max_smtp_connections and max_lmtp_connections"
    " (a limit per listener) and max_connections_per_address (SMTP); set those instead",
}


def find_config_file(explicit: str | None) -> Path | None:
    """Return the config file named on the command line or by POSTROOM_CONFIG, if any."""
    name = explicit or os.environ.get("POSTROOM_CONFIG")
    return Path(name) if name else None


def load_settings(path: Path | None) -> Settings:
    """Read and validate the settings; without a file, the quick-start defaults."""
    if path is None:
        return _finish(Settings(), Path.cwd())
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(source, "-", "file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, "-", f"not valid TOML ({error})") from None
    sections = {}
    for name, values in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(source, name, f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(values, dict):
            raise ConfigError(source, name, "must be a table, e.g. [" + name + "]")
        sections[name] = _build_section(source, name, _SECTIONS[name], values)
    settings = Settings(source=source, **sections)
    return _finish(settings, path.resolve().parent)


def _build_section(source: str, section: str, cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        dotted = f"{section}.{key}"
        if key not in known:
            reason = _REPLACED_KEYS.get(dotted) or f"unknown key (known: {', '.join(known)})"
            raise ConfigError(source, dotted, reason)
        kwargs[key] = _coerce(source, dotted, known[key].type, value)
    return cls(**kwargs)


def _coerce(source: str, key: str, type_name: Any, value: Any) -> Any:
    expected = str(type_name)
    if expected == "bool":
        if not isinstance(value, bool):
            raise ConfigError(source, key, f"must be true or false, got {value!r}")
        return value
    if expected == "str":
        if not isinstance(value, str):
            raise ConfigError(source, key, f"must be a string, got {value!r}")
        return value
    if expected in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, key, f"must be a number, got {value!r}")
        if value < 0:
            raise ConfigError(source, key, f"must not be negative, got {value!r}")
        if expected == "int" and not float(value).is_integer():
            raise ConfigError(source, key, f"must be a whole number, got {value!r}")
        return int(value) if expected == "int" else float(value)
    if expected.startswith("tuple[int"):
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(source, key, f"must be a list of whole numbers, got {value!r}")
        return tuple(value)
    if expected.startswith("tuple[str"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(source, key, f"must be a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(source, key, f"unsupported type {expected}")  # pragma: no cover


def _finish(settings: Settings, base: Path) -> Settings:
    """Resolve paths against the config file's folder and check cross-field rules."""
    source = settings.source
    storage = settings.storage
    data_dir = Path(storage.data_dir)
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    url = storage.url or f"sqlite:///{data_dir / 'postroom.db'}"
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(source, "storage.url", "must start with sqlite:/// or postgresql://")
    backup_dir = Path(storage.backup_dir) if storage.backup_dir else data_dir / "backups"
    if not backup_dir.is_absolute():
        backup_dir = base / backup_dir
    storage = dataclasses.replace(
        storage, data_dir=str(data_dir), url=url, backup_dir=str(backup_dir)
    )

    ingest = settings.ingest
    for key in ("smtp_listen", "lmtp_listen"):
        value = getattr(ingest, key)
        if value:
            try:
                parse_listen(value)
            except ValueError as error:
                raise ConfigError(source, f"ingest.{key}", str(error)) from None
    if not ingest.domains:
        raise ConfigError(source, "ingest.domains", "name at least one ingest domain")
    domains = tuple(d.strip().lower() for d in ingest.domains)
    if any(not d or "@" in d or " " in d for d in domains):
        raise ConfigError(source, "ingest.domains", f"not a list of domain names: {domains!r}")
    for key in (
        "max_recipients",
        "max_smtp_connections",
        "max_lmtp_connections",
        "max_connections_per_address",
    ):
        if getattr(ingest, key) < 1:
            raise ConfigError(source, f"ingest.{key}", "must be at least 1")
    for key in ("data_timeout_seconds", "session_timeout_seconds", "claim_timeout_seconds"):
        if getattr(ingest, key) < 1:
            raise ConfigError(source, f"ingest.{key}", "must be at least 1 (seconds)")
    if ingest.max_message_bytes < 1024:
        raise ConfigError(source, "ingest.max_message_bytes", "must be at least 1024")
    if not 1 <= ingest.token_grace_days <= 365:
        raise ConfigError(source, "ingest.token_grace_days", "must be from 1 to 365 (days)")
    ingest = dataclasses.replace(ingest, domains=domains)
    try:
        parse_listen(settings.web.listen)
    except ValueError as error:
        raise ConfigError(source, "web.listen", str(error)) from None
    for key in ("session_idle_minutes", "session_max_hours"):
        if getattr(settings.web, key) < 1:
            raise ConfigError(source, f"web.{key}", "must be at least 1")
    token = settings.web.metrics_token
    if token and (len(token) < 20 or not token.isascii() or not token.isprintable()):
        raise ConfigError(source, "web.metrics_token", "use 20 or more printable ASCII characters")
    for proxy in settings.web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                source,
                "web.trusted_proxies",
                f"not an address or network (like 127.0.0.1 or 10.0.0.0/8): {proxy!r}",
            ) from None
    outbound = settings.outbound
    if outbound.connect_timeout_seconds <= 0:
        raise ConfigError(source, "outbound.connect_timeout_seconds", "must be above 0")
    if outbound.parallel_accounts < 1:
        raise ConfigError(source, "outbound.parallel_accounts", "must be at least 1")
    if not 0 < outbound.session_seconds <= 86_400:
        raise ConfigError(source, "outbound.session_seconds", "must be above 0, at most 86400")
    if any(not 0 < port < 65536 for port in outbound.allowed_ports):
        raise ConfigError(source, "outbound.allowed_ports", "ports are numbers from 1 to 65535")
    if settings.log.level.lower() not in _LOG_LEVELS:
        raise ConfigError(source, "log.level", f"must be one of {', '.join(_LOG_LEVELS)}")
    statuses = tuple(s.strip() for s in settings.ui.project_statuses)
    if not statuses or any(not s for s in statuses):
        raise ConfigError(source, "ui.project_statuses", "name at least one status, none empty")
    if len(set(statuses)) != len(statuses):
        raise ConfigError(source, "ui.project_statuses", f"has a status twice: {statuses!r}")
    if "archived" not in statuses:
        raise ConfigError(source, "ui.project_statuses", 'must contain "archived"')
    ui = dataclasses.replace(settings.ui, project_statuses=statuses)
    free_mail = tuple(d.strip().lower().lstrip("@") for d in settings.spam.free_mail_domains)
    if any(not d or "@" in d or " " in d for d in free_mail):
        raise ConfigError(source, "spam.free_mail_domains", f"not a list of domains: {free_mail!r}")
    spam = dataclasses.replace(settings.spam, free_mail_domains=free_mail)
    return dataclasses.replace(settings, storage=storage, ingest=ingest, ui=ui, spam=spam)


def parse_listen(value: str) -> tuple[str, str | int]:
    """Split `host:port` or `unix:/path` into ("tcp", host, port) style parts."""
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path.startswith("/"):
            raise ValueError(f"unix socket path must be absolute: {value!r}")
        return ("unix:" + path, 0)
    host, sep, port = value.rpartition(":")
    if (
        not sep
        or not (port.isascii() and port.isdigit() and len(port) <= 5)
        or not 0 <= int(port) < 65536
    ):  # 0: any free port
        raise ValueError(f"expected host:port or unix:/path, got {value!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))
