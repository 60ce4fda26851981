"""Nothing postroom writes is readable by other users: folders 0700, files 0600, whatever the
umask it was started with."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from postroom.config import load_settings
from postroom.jobs import backup
from storage.db import migrate, open_database
from tests.daemon import Daemon
from tests.mail import message
from tests.test_smtp_session import big_message


@pytest.fixture
def permissive_umask():
    """The umask of a careless service manager or shell: new files readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(*folders: Path) -> dict[str, int]:
    """Every folder and file under the folders (and they themselves), with its mode."""
    found = {}
    for folder in folders:
        found[str(folder)] = stat.S_IMODE(folder.stat().st_mode)
        for path in folder.rglob("*"):
            found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(found: dict[str, int]) -> None:
    loose = {path: oct(mode) for path, mode in found.items() if mode & 0o077}
    assert loose == {}
    for path, mode in found.items():
        assert mode == (0o700 if Path(path).is_dir() else 0o600), (path, oct(mode))


def test_run_and_backup_leave_only_private_files(tmp_path, permissive_umask):
    url = f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
    with Daemon(tmp_path, url, command="run") as daemon:
        assert daemon.send(message("Small"))[0] == 250
        assert daemon.send(big_message(1))[0] == 250  # through a spool file
        daemon.wait_for_entries(2)
        printed = daemon.cli("backup").stdout
        assert "postroom-" in printed
        found = modes(daemon.folder / "data")
    backups = [p for p in found if Path(p).name.startswith("postroom-") and "backups" in p]
    assert len(backups) >= 2  # the database and its mail file (the worker may make one too)
    assert {Path(p).name for p in found} >= {"postroom.db", "postroom-mail.db", "spool"}
    assert_private(found)


def test_files_an_earlier_version_left_readable_are_tightened(tmp_path, permissive_umask):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("postroom.db", "postroom-mail.db"):
        sqlite3.connect(data / name).close()  # 0644 under this umask
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o644
    daemon = Daemon(tmp_path, f"sqlite:///{data / 'postroom.db'}")
    said = daemon.cli("init").stderr
    for name in ("postroom.db", "postroom-mail.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
        assert f"{data / name} was readable by other users (mode 644): now 600" in said


def test_the_storage_layer_and_backups_are_private_without_the_cli_umask(
    tmp_path, permissive_umask
):
    """Called as a library (no `postroom` command set the umask): still 0700 and 0600."""
    config = tmp_path / "postroom.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    settings = load_settings(config)
    db = open_database(settings.storage.url)
    try:
        migrate(db)
        backup.make_backup(settings)
    finally:
        db.close()
    assert_private(modes(tmp_path / "data"))
