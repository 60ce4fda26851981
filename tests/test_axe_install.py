"""scripts/test installs axe-core once, says clearly when it cannot, and never counts a half
install as one (issue 19).

scripts/test runs in a copy of the repository's layout where npm, the venv's python and the
system's package tools are small fakes that write down how they were called: npm installs
axe-core, fails half-way, or answers as an offline registry does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE = Path("tests/a11y/node_modules/axe-core/axe.min.js")

FAKE_NPM = """#!/bin/sh
echo "npm $*" >> calls.log
case "$FAKE_NPM" in
  ok) mkdir -p tests/a11y/node_modules/axe-core
      echo 'window.axe = {};' > tests/a11y/node_modules/axe-core/axe.min.js ;;
  half) mkdir -p tests/a11y/node_modules/axe-core
        echo 'window.ax' > tests/a11y/node_modules/axe-core/axe.min.js
        echo "npm error network ECONNRESET" >&2; exit 1 ;;
  nothing) ;;
  *) echo "npm error code EAI_AGAIN" >&2; exit 1 ;;
esac
"""
FAKE_TOOL = '#!/bin/sh\necho "$(basename "$0") $*" >> calls.log\n'


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The layout scripts/test works in, with fakes for everything it calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "test", tmp_path / "scripts" / "test")
    (tmp_path / "tests" / "a11y").mkdir(parents=True)
    shutil.copy(ROOT / "tests/a11y/package-lock.json", tmp_path / "tests/a11y/package-lock.json")
    fakes = {
        "scripts/setup-venv": FAKE_TOOL,
        ".venv/bin/python": FAKE_TOOL,
        "bin/npm": FAKE_NPM,
        "bin/apt-get": FAKE_TOOL,
        "bin/postfix": FAKE_TOOL,
    }
    for name, text in fakes.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return tmp_path


def run_tests(checkout: Path, npm: str, ci: bool = False) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "VIRTUAL_ENV")}
    env |= {"PATH": f"{checkout / 'bin'}:/usr/bin:/bin", "FAKE_NPM": npm}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        ["bash", "scripts/test", "-q"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(checkout: Path) -> list[str]:
    log = checkout / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split()[0] for line in lines if not line.startswith(("apt-get", "postfix"))]


def test_axe_core_is_installed_once_and_again_when_the_lock_file_changes(checkout):
    first = run_tests(checkout, "ok")
    assert first.returncode == 0, first.stderr
    assert (checkout / AXE).read_text() == "window.axe = {};\n"
    assert calls(checkout) == ["setup-venv", "npm", "python"]
    again = run_tests(checkout, "ok")
    assert again.returncode == 0, again.stderr
    assert calls(checkout) == ["setup-venv", "npm", "python", "setup-venv", "python"]
    lock = checkout / "tests/a11y/package-lock.json"
    later = (checkout / "tests/a11y/node_modules/.installed").stat().st_mtime + 10
    os.utime(lock, (later, later))
    assert run_tests(checkout, "ok").returncode == 0
    assert calls(checkout)[-3:] == ["setup-venv", "npm", "python"]


@pytest.mark.parametrize("npm", ["offline", "half", "nothing"])
def test_a_failed_install_says_so_and_the_other_tests_still_run(checkout, npm):
    result = run_tests(checkout, npm)
    assert result.returncode == 0, result.stderr
    assert "npm ci --prefix tests/a11y failed; the accessibility checks skip" in result.stderr
    assert calls(checkout) == ["setup-venv", "npm", "python"]
    # nothing half installed is left to pass for axe-core: the next run tries again
    assert not (checkout / AXE).exists()
    run_tests(checkout, "ok")
    assert calls(checkout)[-2:] == ["npm", "python"]
    assert (checkout / AXE).read_text() == "window.axe = {};\n"


@pytest.mark.parametrize("npm", ["offline", "half"])
def test_under_ci_a_failed_install_stops_with_one_clear_line(checkout, npm):
    result = run_tests(checkout, npm, ci=True)
    assert result.returncode == 1
    assert "scripts/test: npm ci --prefix tests/a11y failed; CI=true needs axe-core" in (
        result.stderr
    )
    assert "python" not in calls(checkout)
    assert not (checkout / AXE).exists()
