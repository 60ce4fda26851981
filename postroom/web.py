"""Serve the admin UI with waitress, alone or next to the listeners."""

from __future__ import annotations

import dataclasses
import logging
import threading

from waitress.server import create_server

from domain.tokens import setup_token
from postroom.auth import dummy_hash
from postroom.config import Settings, parse_listen
from postroom.listen_error import ListenError

log = logging.getLogger("postroom.web")


def base_url(settings: Settings) -> str:
    """The address users reach the UI at."""
    if settings.web.base_url:
        return settings.web.base_url.rstrip("/")
    host, port = parse_listen(settings.web.listen)
    return f"http://{host}:{port}"


def announce_setup(settings: Settings) -> None:
    """Print the one-time setup link while the installation has no login yet."""
    token = setup_token()
    if token:
        log.warning(
            "first run: open %s/setup?token=%s to create your agency", base_url(settings), token
        )
        print(f"postroom setup: {base_url(settings)}/setup?token={token}", flush=True)


def make_server(settings: Settings):
    """Build the waitress server for the admin UI (not started)."""
    from admin_ui import create_app

    app = create_app(settings)
    dummy_hash()  # before the first login, so that it times like every other
    host, port = parse_listen(settings.web.listen)
    # X-Forwarded-* reach the app, which believes them only from [web] trusted_proxies
    # (admin_ui/proxies.py); waitress's own setting trusts one address or all
    try:
        return create_server(
            app,
            host=host,
            port=int(port),
            threads=settings.web.threads,
            ident="postroom",
            clear_untrusted_proxy_headers=False,
        )
    except OSError as error:
        raise ListenError("[web] listen", settings.web.listen, error) from None


def serve_in_thread(settings: Settings) -> tuple[object, Settings]:
    """Start the admin UI on a background thread; return the server (call .close() to stop)
    and the settings with the address bound (a port 0 in [web] listen: the port got)."""
    server = make_server(settings)
    host, port = server.effective_host, server.effective_port
    host = f"[{host}]" if ":" in str(host) else host
    web = dataclasses.replace(settings.web, listen=f"{host}:{port}")
    settings = dataclasses.replace(settings, web=web)
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    log.info("admin UI on %s", base_url(settings))
    print(f"postroom web ready on {base_url(settings)}", flush=True)  # for tests and operators
    return server, settings
