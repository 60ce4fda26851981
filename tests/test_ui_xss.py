"""Hostile mail opened in Chromium: no script runs, no dialog fires, nothing is fetched remotely."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from tests.browser import require_chromium, screenshot
from tests.daemon import Daemon

REMOTE = "http://remote.example"
HOSTILE_HTML = f"""<html><head>
<meta http-equiv="refresh" content="0;url={REMOTE}/refresh">
<base href="{REMOTE}/">
<style>@import url({REMOTE}/import.css); body {{ background: url({REMOTE}/bg.png) }}</style>
<link rel="stylesheet" href="{REMOTE}/link.css">
</head><body>
<script>alert("script tag")</script>
<img src="x" onerror="alert('onerror')">
<img src="{REMOTE}/track.png">
<a href="javascript:alert('javascript link')">click me</a>
<svg xmlns="http://www.w3.org/2000/svg" onload="alert('svg onload')">
<script>alert('svg script')</script></svg>
<div style="background-image: url({REMOTE}/div.png); width: expression(alert('css'))">styled</div>
<form action="{REMOTE}/collect" method="post"><input name="password"><button>Send</button></form>
<iframe src="{REMOTE}/frame"></iframe>
<object data="{REMOTE}/object.swf"></object>
<noscript><p title="</noscript><img src=x onerror=alert('mxss')>"></noscript>
<p>Harmless text after the payloads.</p>
</body></html>"""


def hostile_mail(inbox: str) -> bytes:
    message = EmailMessage()
    message["From"] = "\"<img src=x onerror=alert('name')>\" <evil@attacker.test>"
    message["To"] = inbox
    message["Subject"] = "<script>alert('subject')</script> Invoice <b>bold</b>"
    message.set_content("Plain part <script>alert('text')</script>")
    message.add_alternative(HOSTILE_HTML, subtype="html")
    message.add_attachment(
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        maintype="image",
        subtype="svg+xml",
        filename="\"><svg onload=alert('filename')>.svg",
    )
    message.add_attachment(
        b"<html><script>alert('html attachment')</script></html>",
        maintype="text",
        subtype="html",
        filename="page.html",
    )
    return message.as_bytes()


@pytest.fixture
def running(tmp_path):
    require_chromium()
    url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    with Daemon(tmp_path, url, command="run") as daemon:
        daemon.create_user("member@agency.test", "member")
        yield daemon


def log_in(page, daemon: Daemon) -> None:
    page.goto(daemon.web_url + "/login")
    page.fill("input[name=email]", "member@agency.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(daemon.web_url + "/")


def test_hostile_mail_runs_no_script_and_fetches_nothing_remote(running, page, network_log):
    daemon = running
    assert daemon.send(hostile_mail(daemon.inbox))[0] == 250
    [entry] = daemon.wait_for_entries(1)
    log_in(page, daemon)
    for path in ("/unassigned", f"/entries/{entry['id']}"):
        page.goto(daemon.web_url + path)
        page.wait_for_load_state("networkidle")
    frame = page.frame_locator("iframe.mail")
    frame.locator("text=Harmless text after the payloads.").wait_for()
    frame.locator("text=click me").click()
    page.wait_for_timeout(300)
    screenshot(page, "xss-entry-detail")
    # the attachments open as downloads, never as pages of our origin
    for name in ("page.html",):
        link = page.locator("a", has_text=name).first
        assert link.get_attribute("href")
    # the hostile subject is shown as text, not run
    assert page.get_by_text("<script>alert('subject')</script> Invoice").count() >= 1
    network_log.assert_no_dialogs()
    network_log.assert_only_local()
