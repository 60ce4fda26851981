"""The documented install, from the built artefacts: the wheel and the sdist, each installed
into a fresh venv outside the source tree, then run as an operator would.

The commands are those of docs/operations.md, "Install" (python3 -m venv, pip install of the
wheel or sdist, with [postgresql] for a PostgreSQL database); keep the two in step.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import pytest

from .daemon import REPO_ROOT, bound_addresses, port_of

DOMAIN = "in.example"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> dict[str, Path]:
    """The wheel and the sdist, built once from the work tree (no download: the setuptools of
    the test venv, no build isolation)."""
    out = tmp_path_factory.mktemp("dist")
    # a copy of the work tree: parallel test processes must not share its build/ folder
    source = tmp_path_factory.mktemp("source") / "postroom"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "build",
            "artifacts",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    build_sdist = f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"
    subprocess.run(
        [sys.executable, "-c", build_sdist],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("postroom-*-py3-none-any.whl")
    [sdist] = out.glob("postroom-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {"postroom", "domain", "storage", "smtpd_ingest", "admin_ui"} <= top
    assert not top & {"tests", "bench", "scripts"}, top
    assert {
        "admin_ui/templates/entry.html",
        "admin_ui/static/app.css",
        "admin_ui/translations/de/LC_MESSAGES/messages.mo",
        "storage/migrations/0001_initial.py",
        "postroom/jobs/__init__.py",
        "domain/errors.py",
        "domain/data/common-passwords.txt.gz",
        "domain/data/starter-templates-en.toml",
        "domain/data/starter-templates-de.toml",
    } <= names
    with tarfile.open(sdist) as archive:
        inside = {name.partition("/")[2] for name in archive.getnames()}
    assert {
        "config.example.toml",
        "systemd/postroom-web.service",
        "docs/operations.md",
        "admin_ui/templates/entry.html",
        "admin_ui/translations/de/LC_MESSAGES/messages.po",
        "storage/migrations/0001_initial.py",
    } <= inside
    return {"wheel": wheel, "sdist": sdist}


def _clean_env() -> dict[str, str]:
    """The environment without this test venv or the source tree in it."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"PYTHONUNBUFFERED": "1"}


class Installed:
    """postroom installed into `folder`/venv, configured in `folder`, driven from there."""

    def __init__(self, folder: Path, artefact: Path, extra: str, db_url: str | None) -> None:
        self.folder = folder
        self.venv = folder / "venv"
        self.env = _clean_env()
        python3 = shutil.which("python3") or sys.executable
        # docs/operations.md: python3 -m venv /opt/postroom/.venv
        self._run([python3, "-m", "venv", str(self.venv)], timeout=300)
        # docs/operations.md: /opt/postroom/.venv/bin/pip install 'postroom-….whl[postgresql]'
        target = f"{artefact}[{extra}]" if extra else str(artefact)
        self._run(
            [
                str(self.venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                target,
            ],
            timeout=900,
        )
        self.smtp_port = self.lmtp_port = self.web_port = 0  # port 0: read when it is ready
        self.config = folder / "postroom.toml"
        storage = {"data_dir": str(folder / "data")} | ({"url": db_url} if db_url else {})
        lines = [
            "[storage]",
            *(f"{k} = {json.dumps(v)}" for k, v in storage.items()),
            "[ingest]",
            'smtp_listen = "127.0.0.1:0"',
            'lmtp_listen = "127.0.0.1:0"',
            f"domains = [{json.dumps(DOMAIN)}]",
            "[web]",
            'listen = "127.0.0.1:0"',
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args,
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            **({"timeout": 120} | kwargs),
        )
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result

    def postroom(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        command = [str(self.venv / "bin" / "postroom"), "-c", str(self.config), *args]
        if check:
            return self._run(command, **kwargs)
        return subprocess.run(
            command, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120
        )

    def start(self, command: str, ready: str) -> tuple[subprocess.Popen, Path]:
        log_path = self.folder / f"{command}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(self.venv / "bin" / "postroom"), "-c", str(self.config), command],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while ready not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"postroom {command}:\n{log_path.read_text()}")
            time.sleep(0.1)
        bound = bound_addresses(log_path.read_text(errors="replace"))
        for name in ("smtp", "lmtp", "web"):
            if name in bound:
                setattr(self, f"{name}_port", port_of(bound[name]))
        return process, log_path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"


def _stop(process: subprocess.Popen, log_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"did not stop on SIGTERM:\n{log_path.read_text()}") from None
    assert code == 0, log_path.read_text()


def _get(opener, url: str) -> tuple[int, str]:
    with opener.open(url, timeout=30) as response:
        return response.status, response.read().decode()


def _operate(installed: Installed) -> None:
    """What an operator does after the install: init, run, one mail, the UI, then the
    processes one by one."""
    version = installed.postroom("--version").stdout
    assert re.fullmatch(r"postroom, version \d+\.\d+\.\d+\S*\n", version), version
    where = installed._run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import postroom, storage, admin_ui, smtpd_ingest as s;"
            " print(postroom.__file__, storage.__file__, s.__file__)",
        ]
    ).stdout
    site = installed.venv.resolve()
    assert all(Path(p).resolve().is_relative_to(site) for p in where.split()), where
    assert str(REPO_ROOT) not in where

    installed.postroom("init")
    account = json.loads(installed.postroom("account", "create", "Agency", "--json").stdout)
    installed.postroom(
        "user",
        "create",
        "owner@agency.test",
        "--account",
        str(account["id"]),
        "--role",
        "owner",
        "--password-stdin",
        input=PASSWORD + "\n",
    )

    run, log = installed.start("run", "postroom ingest ready")
    try:
        for ready in ("postroom web ready", "postroom worker ready"):
            deadline = time.monotonic() + 60
            while ready not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline and run.poll() is None, log.read_text()
                time.sleep(0.1)
        with smtplib.SMTP("127.0.0.1", installed.smtp_port, timeout=60) as client:
            client.sendmail(
                "anna@bakery.test",
                [account["inbox_address"]],
                b"From: anna@bakery.test\r\nSubject: installed from the artefact\r\n\r\nhello\r\n",
            )
        with smtplib.LMTP("127.0.0.1", installed.lmtp_port) as client:
            assert client.noop()[0] == 250
        deadline = time.monotonic() + 60
        while not (entries := json.loads(installed.postroom("entries", "list", "--json").stdout)):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        [entry] = entries
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        assert _get(opener, installed.url("/healthz"))[0] == 200
        token = CSRF.search(_get(opener, installed.url("/login"))[1])[1]
        form = {"email": "owner@agency.test", "password": PASSWORD, "csrf_token": token}
        opener.open(installed.url("/login"), urlencode(form).encode(), timeout=30).close()
        status, page = _get(opener, installed.url(f"/entries/{entry['id']}"))
        assert status == 200 and "installed from the artefact" in page
        assert re.search(r"/static/app\.css", page), "the page links its stylesheet"
        assert _get(opener, installed.url("/static/app.css"))[0] == 200
    finally:
        _stop(run, log)
    web, log = installed.start("web", "postroom web ready")
    try:
        assert _get(urllib.request.build_opener(), installed.url("/healthz"))[0] == 200
    finally:
        _stop(web, log)
    worker, log = installed.start("worker", "postroom worker ready")
    _stop(worker, log)


def test_the_install_section_names_the_commands_this_test_runs(artefacts):
    """The doc's commands are this test's: the venv, pip install of this version's wheel."""
    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    install = doc.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    wheel, sdist = artefacts["wheel"].name, artefacts["sdist"].name
    assert "    python3 -m venv /opt/postroom/.venv\n" in install
    assert f"    /opt/postroom/.venv/bin/pip install '{wheel}[postgresql]'\n" in install
    assert f"tar -xzf {sdist} --strip-components=1 -C /opt/postroom/src" in install
    assert f"/opt/postroom/.venv/bin/pip install\n'{sdist}[postgresql]'" in install


def test_the_wheel_installs_and_runs_and_without_the_extra_postgresql_is_one_line(
    artefacts, tmp_path
):
    installed = Installed(tmp_path, artefacts["wheel"], "", None)
    _operate(installed)
    installed.config.write_text(
        '[storage]\nurl = "postgresql://postgres@127.0.0.1:5432/none"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
    )
    result = installed.postroom("init", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: a postgresql:// database needs the PostgreSQL driver (psycopg2), which is"
        " not installed: pip install 'postroom[postgresql]'"
    )


def test_the_sdist_installs_and_runs(artefacts, tmp_path):
    _operate(Installed(tmp_path, artefacts["sdist"], "", None))


def test_the_wheel_with_the_postgresql_extra_runs_on_postgresql(artefacts, tmp_path, pg_url):
    _operate(Installed(tmp_path, artefacts["wheel"], "postgresql", pg_url))
