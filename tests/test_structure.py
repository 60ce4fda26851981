"""The code base keeps its shape: lint and format pass, packages import in the directions
docs/architecture.md draws, and only domain and storage write to the database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .code_graph import (
    ENTRY_POINTS,
    OURS,
    REPO_ROOT,
    dotted,
    files_of,
    model_writes,
    storage_writes_used,
)

# package -> packages of ours it must never import (docs/architecture.md, "Who imports whom")
FORBIDDEN = {
    "storage": set(OURS) - {"storage"},
    "domain": {"postroom", "smtpd_ingest", "admin_ui"},
    "smtpd_ingest": {"admin_ui"},
    "admin_ui": {"smtpd_ingest"},
}

# Modules outside domain/ and storage/ that write to the database themselves, with the reason.
# Everything else changes state only by calling domain (docs/architecture.md).
WRITES_ALLOWED = {
    # the worker's own bookkeeping: which worker runs a singleton job, until when
    "postroom.leases": "worker job leases",
    # worker jobs: retention, index upkeep, notifications and their mail
    "postroom.jobs.maintenance": "worker job (search index upkeep)",
    "postroom.jobs.retention": "worker job (housekeeping: retention of spam and events)",
    "postroom.jobs.notify": "worker job (notifications made and mailed)",
    "postroom.outbound_send": "worker job (sending queued mail: claim, sent, retry, failed)",
    # failed logins counted per client: a guard in front of the domain, no domain state
    "postroom.login_throttle": "login throttle counters",
    # receiving mail: intake records, their claims and the filing of a batch are the ingest's
    # own persistence; what is decided about a mail is domain.routing's
    "smtpd_ingest.writer": "ingest: intake records of accepted mail",
    "smtpd_ingest.processor": "ingest: claims on intakes",
    "smtpd_ingest.pipeline": "ingest: filing a batch as domain.routing decided",
    "smtpd_ingest.importer": "ingest: import of mbox/maildir files through the same filing",
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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_in_the_allowed_direction(package):
    from .code_graph import imported_packages

    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in files_of(package)
        if imported_packages(path) & FORBIDDEN[package]
    }
    assert not offenders


def test_every_package_of_ours_is_drawn_in_the_architecture():
    drawing = (REPO_ROOT / "docs" / "architecture.md").read_text()
    on_disk = {path.parent.name for path in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == set(OURS)
    assert all(f"`{package}`" in drawing for package in OURS)


def _writers() -> dict[str, list]:
    """Modules outside domain and storage that write: model methods or storage functions."""
    found = {}
    for package in ENTRY_POINTS:
        for path in files_of(package):
            writes = model_writes(path) + storage_writes_used(path)
            if writes:
                found[dotted(path)] = writes
    return found


def test_outside_domain_and_storage_only_the_listed_modules_write_to_the_database():
    writers = _writers()
    unlisted = {module: calls for module, calls in writers.items() if module not in WRITES_ALLOWED}
    assert not unlisted, "change state through domain, or list the module with its reason"
    stale = sorted(set(WRITES_ALLOWED) - set(writers))
    assert not stale, f"listed but writing nothing any more: {stale}"


def test_the_write_check_finds_what_it_is_for(tmp_path):
    """A view that saves a row, or calls a storage function that writes, is found."""
    view = tmp_path / "view.py"
    view.write_text(
        "from storage.models import Entry\n"
        "from storage import projects\n"
        "def a(entry):\n    entry.status = 'done'\n    entry.save()\n"
        "def b():\n    Entry.update(spam=True).execute()\n"
        "def c(project):\n    projects.delete_address(project, 'a@b.example')\n"
        "def d(words):\n    {}.update(words)\n"
    )
    assert [call for _, call in model_writes(view)] == ["entry.save", "Entry.update"]
    assert storage_writes_used(view) == [(9, "storage.projects.delete_address")]
