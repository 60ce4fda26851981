"""The browser harness itself, against a tiny HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import browser as harness
from tests.browser import screenshot

UNREACHABLE = "http://192.0.2.1/x.png"  # TEST-NET-1: never routed anywhere

PAGES = {
    "/button": (
        "<!doctype html><title>button</title>"
        "<button id='b' onclick=\"this.textContent = 'clicked'\">click me</button>"
    ),
    "/alert": (
        "<!doctype html><title>before</title>"
        "<script>alert(1)</script>"
        "<script>document.title = 'after'</script>"
    ),
    "/remote-img": (
        f"<!doctype html><title>remote</title><p>remote image:</p><img id='i' src='{UNREACHABLE}'>"
    ),
    "/remote-ws": (
        "<!doctype html><title>open</title><script>"
        "const ws = new WebSocket('ws://192.0.2.1/socket');"
        "ws.onclose = () => { document.title = 'closed' };"
        "</script>"
    ),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_click_changes_button_text(page, network_log, site):
    from playwright.sync_api import expect

    page.goto(site + "/button")
    button = page.locator("#b")
    expect(button).to_have_text("click me")
    button.click()
    expect(button).to_have_text("clicked")
    # a clean page trips none of the detectors
    assert network_log.requests == [site + "/button"]
    network_log.assert_only_local()
    network_log.assert_no_dialogs()
    network_log.assert_no_console_errors()


def test_localhost_by_name_still_resolves(page, network_log, site):
    url = site.replace("127.0.0.1", "localhost") + "/button"
    page.goto(url)
    assert page.title() == "button"
    assert network_log.requests == [url]
    network_log.assert_only_local()


def test_alert_is_recorded_and_dismissed(page, network_log, site):
    page.goto(site + "/alert")
    assert [(d.type, d.message) for d in network_log.dialogs] == [("alert", "1")]
    assert network_log.dialogs[0].url == site + "/alert"
    # dismissed, so the page went on running
    assert page.title() == "after"
    with pytest.raises(AssertionError, match="dialogs"):
        network_log.assert_no_dialogs()


def test_non_local_request_is_blocked_and_recorded(page, network_log, site):
    page.goto(site + "/remote-img")
    assert UNREACHABLE in network_log.requests
    assert network_log.blocked == [UNREACHABLE]
    assert network_log.non_local() == [UNREACHABLE]
    assert network_log.console_errors, "Chromium logs the blocked load as a console error"
    assert page.locator("#i").evaluate("img => img.complete && img.naturalWidth === 0")
    with pytest.raises(AssertionError, match=r"192\.0\.2\.1"):
        network_log.assert_only_local()

    path = screenshot(page, "harness remote-img")
    assert path == harness.artifacts_dir() / "screenshots" / "harness_remote-img.png"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 100


def test_non_local_websocket_is_blocked_and_recorded(page, network_log, site):
    from playwright.sync_api import expect

    page.goto(site + "/remote-ws")
    expect(page).to_have_title("closed")
    assert network_log.blocked == ["ws://192.0.2.1/socket"]
    with pytest.raises(AssertionError, match=r"ws://192\.0\.2\.1"):
        network_log.assert_only_local()


def test_screenshot_goes_to_env_folder(page, site, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTROOM_TEST_ARTIFACTS", str(tmp_path))
    page.goto(site + "/button")
    path = screenshot(page, "../escape/attempt")
    assert path.parent == tmp_path / "screenshots"
    assert path.stat().st_size > 0


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080/x", True),
        ("http://localhost/x", True),
        ("http://[::1]:5000/", True),
        ("data:image/png;base64,AAAA", True),
        ("about:blank", True),
        ("http://192.0.2.1/x.png", False),
        ("https://cdn.example.com/app.js", False),
        ("http://127.0.0.1.evil.example/", False),
        ("ws://example.org/socket", False),
    ],
)
def test_is_local_url(url, local):
    assert harness.is_local_url(url) is local


def test_missing_chromium_skips_outside_ci(monkeypatch):
    monkeypatch.setattr(harness, "chromium_available", lambda: "no chromium here")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium here"):
        harness.require_chromium()


def test_missing_chromium_fails_under_ci(monkeypatch):
    monkeypatch.setattr(harness, "chromium_available", lambda: "no chromium here")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no chromium here"):
        harness.require_chromium()
