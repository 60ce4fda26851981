"""What an installed postroom says about itself at start: its version, a missing PostgreSQL
driver (the extra left out), and a generic top-level package that is not postroom's."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

import postroom
from postroom.installation import SIBLINGS

from .daemon import REPO_ROOT

# run the command with psycopg2 unimportable, as in a venv without postroom[postgresql]
WITHOUT_PSYCOPG2 = """
import sys

class NoPsycopg2:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "psycopg2":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoPsycopg2())
from postroom.cli import main
sys.argv[0] = "postroom"
main()
"""


def _postroom(*args: str, code: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    prefix = ["-c", code] if code else ["-m", "postroom"]
    return subprocess.run(
        [sys.executable, *prefix, *args], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_version_comes_from_one_place():
    result = _postroom("--version", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"postroom, version {postroom.__version__}"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]


def test_postgresql_url_without_the_driver_names_the_extra(tmp_path):
    config = tmp_path / "postroom.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\nurl = "postgresql://postgres@127.0.0.1:1/none"\n'
    )
    for command in (["init"], ["ingest"], ["entries", "list"]):
        result = _postroom("-c", str(config), *command, code=WITHOUT_PSYCOPG2, cwd=tmp_path)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stderr.strip() == (
            "Error: a postgresql:// database needs the PostgreSQL driver (psycopg2), which is"
            " not installed: pip install 'postroom[postgresql]'"
        ), command


def test_every_top_level_package_is_in_the_wheel_and_checked_at_start():
    """The packages found for the wheel are postroom and the siblings checked at start."""
    found = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = found["packages"]["find"]["include"]
    assert sorted(include) == sorted(["postroom*", *(f"{name}*" for name in SIBLINGS)])
    on_disk = {path.parent.name for path in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == {"postroom", *SIBLINGS}


@pytest.mark.parametrize("package", ["storage", "domain"])
def test_a_foreign_top_level_package_is_refused_with_one_line(tmp_path, package):
    """Another distribution's `storage` (or `domain`) first on sys.path: postroom says so and
    runs none of it."""
    foreign = tmp_path / "elsewhere" / package
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text(f"raise SystemExit('the foreign {package} ran')\n")
    result = _postroom(
        "check-config",
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(foreign.parent)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: the package '{package}' is not postroom's (found: {foreign}")
    assert line.endswith("install postroom into a venv of its own (docs/operations.md, Install)")
