"""Run the SMTP and LMTP listeners and the intake processor until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from postroom.config import IngestSettings, Settings, parse_listen
from postroom.listen_error import ListenError
from smtpd_ingest.handler import IngestHandler
from smtpd_ingest.processor import IntakeProcessor
from smtpd_ingest.smtp_session import ConnectionGate, IngestLMTP, IngestSMTP
from smtpd_ingest.writer import IntakeWriter
from storage.files import private_dir

log = logging.getLogger("postroom.ingest")
GRACE_SECONDS = 30.0  # how long a stop waits for messages in flight


async def serve(
    full_settings: Settings,
    stop: asyncio.Event | None = None,
    after_start: Callable[[Settings], Awaitable[None]] | None = None,
    reload: Callable[[], Settings] | None = None,
) -> None:
    """Listen on the configured sockets; on SIGTERM/SIGINT finish what is in flight and exit."""
    settings = full_settings.ingest
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    processor = IntakeProcessor(full_settings)
    processor.start()
    writer = IntakeWriter(full_settings.storage.busy_timeout_ms, processor.holder)
    handler = IngestHandler(settings, writer, processor.submit)
    gate = ConnectionGate(settings)
    if reload is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(
                signal.SIGHUP, lambda: _reload(reload, full_settings, handler, gate)
            )
    servers = []
    bound: dict[str, str] = {}  # smtp_listen/lmtp_listen as bound: a port 0 is the port got
    spool_dir = _clean_spool(Path(full_settings.storage.data_dir) / "spool")
    try:
        for key, cls in (("smtp_listen", IngestSMTP), ("lmtp_listen", IngestLMTP)):
            if listen := getattr(settings, key):
                try:
                    server = await _start(loop, listen, cls, handler, gate, settings, spool_dir)
                except OSError as error:
                    raise ListenError(f"[ingest] {key}", listen, error) from None
                servers.append(server)
                bound[key] = bound_address(server)
        # a line for tests and operators, e.g. "... smtp=127.0.0.1:2525 lmtp=unix:/run/x.sock"
        addresses = [f"{key.removesuffix('_listen')}={value}" for key, value in bound.items()]
        print(" ".join(["postroom ingest ready", *addresses]), flush=True)
        if after_start is not None:
            ingest = dataclasses.replace(settings, **bound)
            await after_start(dataclasses.replace(full_settings, ingest=ingest))
        await stop.wait()
        log.info("stopping: no new connections, finishing messages in flight")
    finally:
        for server in servers:
            server.close()
        gate.shutting_down = True
        deadline = loop.time() + GRACE_SECONDS
        while gate.busy() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        gate.close_idle()
        await writer.wait_idle()
        writer.close()
        await loop.run_in_executor(None, processor.stop)


def _reload(load: Callable[[], Settings], started: Settings, handler, gate) -> None:
    """SIGHUP: take over the log level and limits; name what needs a restart."""
    try:
        fresh = load()
    except Exception as error:  # noqa: BLE001 - a bad file keeps the running settings
        log.error("reload refused, keeping the running settings: %s", error)
        return
    logging.getLogger().setLevel(fresh.log.level.upper())
    handler.settings = fresh.ingest
    gate.configure(fresh.ingest)
    restart = [
        key
        for key in ("smtp_listen", "lmtp_listen", "parse_workers")
        if getattr(fresh.ingest, key) != getattr(started.ingest, key)
    ]
    if fresh.storage.url != started.storage.url:
        restart.append("storage.url")
    ingest = fresh.ingest
    log.info(
        "reloaded: log level %s, max_message_bytes %d, max_recipients %d,"
        " max_smtp_connections %d, max_lmtp_connections %d, max_connections_per_address %d,"
        " data_timeout_seconds %g, session_timeout_seconds %g%s",
        fresh.log.level,
        ingest.max_message_bytes,
        ingest.max_recipients,
        ingest.max_smtp_connections,
        ingest.max_lmtp_connections,
        ingest.max_connections_per_address,
        ingest.data_timeout_seconds,
        ingest.session_timeout_seconds,
        f"; restart to apply {', '.join(restart)}" if restart else "",
    )


def _clean_spool(spool_dir: Path) -> Path | None:
    """Remove big messages left half-received by an earlier run (none was acknowledged)."""
    try:
        private_dir(spool_dir)
        for leftover in spool_dir.glob("data-*"):
            leftover.unlink(missing_ok=True)
    except OSError as error:
        log.warning("no spool folder (%s): big messages are received in memory", error)
        return None
    return spool_dir


async def _start(loop, listen, cls, handler, gate, settings: IngestSettings, spool_dir):
    def factory():
        session = cls(
            handler,
            data_size_limit=handler.settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident="postroom",
            loop=loop,
        )
        session.gate = gate
        session.spool_dir = spool_dir
        return session

    target, port = parse_listen(listen)
    if target.startswith("unix:"):
        path = Path(target[len("unix:") :])
        private_dir(path.parent, 0o750)  # if made here: the MTA's group must reach the socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = await loop.create_unix_server(factory, str(path))
        os.chmod(path, 0o660)
    else:
        server = await loop.create_server(factory, target, port)
    log.info("%s listening on %s", cls.__name__.removeprefix("Ingest"), bound_address(server))
    return server


def bound_address(server) -> str:
    """Where a started server listens: host:port as bound (a port 0 asked for is the one got),
    [v6]:port, or unix:/path."""
    name = server.sockets[0].getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host, port = name[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
