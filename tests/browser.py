"""Browser fixtures: Debian's Chromium driven by Playwright, with nothing leaving the machine.

tests/conftest.py loads this module as a plugin, so tests just take the fixtures by name::

    def test_inbox(page, network_log, admin_url):
        page.goto(admin_url + "/messages")
        screenshot(page, "inbox")
        network_log.assert_only_local()
        network_log.assert_no_dialogs()

Fixtures:

* ``browser``: one Chromium for the whole session (``/usr/bin/chromium``; Playwright's own
  browser downloads are never used).  Missing Chromium or Playwright skips the test with the
  reason, except under ``CI=true``, where it fails.
* ``network_log``: a :class:`NetworkLog` for the test: every request URL, the non-local ones
  that were blocked, every dialog (alert/confirm/prompt, auto-dismissed) and console errors.
* ``browser_context``: a fresh context per test (JavaScript on, 1280x900, service workers
  blocked) with the network guard installed; closed on teardown.
* ``page``: a new page in that context.

The guard aborts every request (and WebSocket) to a host other than 127.0.0.1, localhost or
::1 before it leaves the browser, and records it, so ``network_log.assert_only_local()`` fails
if a page even tried.  An aborted request also shows up in ``console_errors`` as Chromium's
"Failed to load resource" message.

Screenshots go to ``$POSTROOM_TEST_ARTIFACTS/screenshots/<name>.png`` (default
``tests/artifacts``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Dialog,
        Page,
        Request,
        Route,
        WebError,
        WebSocketRoute,
    )

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    # Chromium itself looks up accounts.google.com and update.googleapis.com at start-up even
    # with the flags above.  Nothing but loopback resolves (IP literals included), so those
    # lookups never leave, and neither does anything that would get past the route guard
    # (<link rel=preconnect>, dns-prefetch).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE ::1",
]
VIEWPORT = {"width": 1280, "height": 900}
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# URLs that name no host and never touch the network.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "javascript"})
TIMEOUT_MS = 10_000


def chromium_available() -> str | None:
    """None when Playwright and Debian's Chromium are both there, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the playwright Python package is not installed in this venv ({exc})"
    if not os.path.isfile(CHROMIUM) or not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (Debian package `chromium`; scripts/test installs it)"
    return None


def require(reason: str | None, checks: str, tool: str) -> None:
    """Skip the calling test when `reason` says why `tool` is missing (None: it is there);
    under CI=true, fail instead.  `checks` names the tests, e.g. "browser tests"."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{checks} cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(f"{checks} need {tool}: {reason}")


def require_chromium() -> None:
    """Skip the calling test when Chromium can't be driven; under CI=true, fail instead."""
    require(chromium_available(), "browser tests", "Chromium")


def is_local_url(url: str) -> bool:
    """True for URLs on 127.0.0.1/localhost/::1 and for host-less ones (data:, blob:, ...)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def artifacts_dir() -> Path:
    """Where test artifacts go: $POSTROOM_TEST_ARTIFACTS, else <repo>/tests/artifacts."""
    return Path(os.environ.get("POSTROOM_TEST_ARTIFACTS") or REPO_ROOT / "tests" / "artifacts")


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as <artifacts>/screenshots/<name>.png and return its path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "screenshot"
    path = artifacts_dir() / "screenshots" / f"{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


@dataclass(frozen=True)
class DialogRecord:
    """A JavaScript dialog a page opened: type is alert, confirm, prompt or beforeunload."""

    type: str
    message: str
    url: str


@dataclass
class NetworkLog:
    """What the pages of one browser context did: requests, dialogs, console errors.

    ``attach(context)`` installs the guard: requests and WebSockets to non-local hosts are
    aborted before they leave Chromium and recorded in ``blocked``.
    """

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    dialogs: list[DialogRecord] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> NetworkLog:
        context.on("request", self._on_request)
        context.on("dialog", self._on_dialog)
        context.on("console", self._on_console)
        context.on("weberror", self._on_weberror)
        context.route("**/*", self._route)
        context.route_web_socket(re.compile(r".*"), self._route_web_socket)
        return self

    def non_local(self) -> list[str]:
        """Every URL a page asked for (or was blocked from) that is not on this machine."""
        seen = dict.fromkeys(
            url for url in [*self.requests, *self.blocked] if not is_local_url(url)
        )
        return list(seen)

    def assert_only_local(self) -> None:
        offending = self.non_local()
        assert not offending, f"pages tried to reach hosts other than 127.0.0.1: {offending}"

    def assert_no_dialogs(self) -> None:
        assert not self.dialogs, f"pages opened JavaScript dialogs: {self.dialogs}"

    def assert_no_console_errors(self) -> None:
        assert not self.console_errors, f"console errors: {self.console_errors}"

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if is_local_url(url):
            route.fallback()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _route_web_socket(self, ws: WebSocketRoute) -> None:
        if is_local_url(ws.url):
            ws.connect_to_server()
        else:
            self.blocked.append(ws.url)
            ws.close(code=1008, reason="non-local WebSocket blocked by tests/browser.py")

    def _on_dialog(self, dialog: Dialog) -> None:
        url = dialog.page.url if dialog.page else ""
        self.dialogs.append(DialogRecord(dialog.type, dialog.message, url))
        dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_weberror(self, error: WebError) -> None:
        self.console_errors.append(f"uncaught: {error.error.message}")


def new_context(browser: Browser, log: NetworkLog, **options: Any) -> BrowserContext:
    """A guarded context like the ``browser_context`` fixture's; ``options`` override ours.

    For tests that need a second one (two users at once); the caller closes it.
    """
    settings: dict[str, Any] = {
        "java_script_enabled": True,
        "viewport": VIEWPORT,
        "service_workers": "block",
        "locale": "en-US",
        "timezone_id": "UTC",
    }
    settings.update(options)
    context = browser.new_context(**settings)
    context.set_default_timeout(TIMEOUT_MS)
    log.attach(context)
    return context


@pytest.fixture(scope="session", name="browser")
def browser_fixture() -> Iterator[Browser]:
    """One headless Debian Chromium for the whole test session."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(name="network_log")
def network_log_fixture() -> NetworkLog:
    """Requests, blocked non-local URLs, dialogs and console errors of this test's pages."""
    return NetworkLog()


@pytest.fixture(name="browser_context")
def browser_context_fixture(browser: Browser, network_log: NetworkLog) -> Iterator[BrowserContext]:
    """A fresh guarded context per test, closed on teardown."""
    context = new_context(browser, network_log)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(name="page")
def page_fixture(browser_context: BrowserContext) -> Page:
    """A new page in this test's context."""
    return browser_context.new_page()
