"""The code base keeps its shape: lint and format pass, and packages import in one direction."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
OURS = {"postroom", "smtpd_ingest", "storage", "admin_ui"}
# package -> packages of ours it must never import
FORBIDDEN = {
    "storage": {"postroom", "smtpd_ingest", "admin_ui"},
    "smtpd_ingest": {"admin_ui"},
    "admin_ui": {"smtpd_ingest"},
}


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed (pip install -e '.[test]')")
    return found


def test_ruff_check_passes():
    result = subprocess.run([_ruff(), "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes():
    result = subprocess.run(
        [_ruff(), "format", "--check", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_in_the_allowed_direction(package):
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (REPO_ROOT / package).rglob("*.py")
        if _imports(path) & FORBIDDEN[package]
    }
    assert not offenders
