"""A tiny HTTP client for tests against a real postroom web server: one cookie jar, no redirects
followed, any headers (X-Forwarded-For) sent as given."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from dataclasses import dataclass, field

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str


@dataclass
class HttpClient:
    """One browser: keeps its cookies, sends `headers` with every request."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict | None = None) -> Reply:
        parts = urllib.parse.urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return Reply(response.status, dict(response.headers.items()), text)
        finally:
            connection.close()

    def csrf_token(self, path: str = "/login") -> str:
        page = self.request("GET", path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path}: {page.status} {page.text[:300]}"
        return match.group(1)

    def login(self, email: str, password: str, token: str | None = None) -> Reply:
        """POST the login form (with `token`, or one fetched now)."""
        token = token or self.csrf_token()
        return self.request(
            "POST", "/login", {"email": email, "password": password, "csrf_token": token}
        )
