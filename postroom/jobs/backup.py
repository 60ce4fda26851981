"""SQLite backups: a consistent copy in `[storage] backup_dir`, the newest `backup_keep` kept.

A backup is two files, as the database is: postroom-YYYYmmdd-HHMMSS.db and, beside it, its
received mail, postroom-YYYYmmdd-HHMMSS-mail.db (one snapshot of both). They are written under
temporary names, flushed to disk and then renamed, the mail file first, so a file named
postroom-YYYYmmdd-HHMMSS.db is always complete. PostgreSQL is backed up with pg_dump instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from pathlib import Path

from postroom.config import Settings
from storage.db import is_sqlite, mail_store_path
from storage.files import private_dir, private_file, tighten
from storage.housekeeping import backup_sqlite
from storage.models import utcnow

log = logging.getLogger("postroom.backup")

BACKUP_NAME = re.compile(r"^postroom-(\d{8}-\d{6})(?:-(\d+))?\.db$")
PG_ADVICE = (
    "the database is PostgreSQL: back it up with pg_dump (e.g. pg_dump -Fc -f postroom.dump)"
)
LEFTOVER_SECONDS = 24 * 3600


class BackupError(Exception):
    """No backup can be made here; the message says what to do instead."""


def make_backup(settings: Settings, now: dt.datetime | None = None) -> Path:
    """Write one backup now and prune old ones; return its path."""
    if not is_sqlite():
        raise BackupError(PG_ADVICE)
    folder = private_dir(Path(settings.storage.backup_dir))
    stamp = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
    temporary = folder / f".postroom-{stamp}.{os.getpid()}.tmp"
    try:
        for path in (temporary, mail_store_path(temporary)):
            private_file(path)  # 0600 before SQLite writes a byte into it
        written = backup_sqlite(temporary)
        for path in written:
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
        target = _publish(temporary, folder, stamp)
    finally:
        for path in (temporary, mail_store_path(temporary)):
            path.unlink(missing_ok=True)
    _fsync_folder(folder)
    prune(folder, settings.storage.backup_keep)
    for path in backups_in(folder):  # those an earlier version left readable by others
        tighten(path)
        tighten(mail_store_path(path))
    return target


def _publish(temporary: Path, folder: Path, stamp: str) -> Path:
    """Give the finished copy its final names; never replace another backup of the same second."""
    for number in range(1000):
        suffix = f"-{number}" if number else ""
        target = folder / f"postroom-{stamp}{suffix}.db"
        try:
            os.link(mail_store_path(temporary), mail_store_path(target))  # fails if taken
        except FileExistsError:
            continue
        try:
            os.link(temporary, target)
        except FileExistsError:
            mail_store_path(target).unlink()
            continue
        return target
    raise BackupError(f"too many backups named postroom-{stamp}* in {folder}")


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def backups_in(folder: Path) -> list[Path]:
    """Backups in a folder, oldest first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = BACKUP_NAME.match(path.name)
        if match:
            found.append(((match.group(1), int(match.group(2) or 0)), path))
    return [path for _, path in sorted(found)]


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (at least one stays), and stale temp files."""
    old = backups_in(folder)[: -max(keep, 1)]
    for path in old:
        path.unlink(missing_ok=True)  # first: from here on it is not listed as a backup
        mail_store_path(path).unlink(missing_ok=True)
    for path in folder.glob("postroom-*-mail.db"):  # left by a prune that was cut short
        partner = path.with_name(path.name.removesuffix("-mail.db") + ".db")
        if not partner.exists() and time.time() - path.stat().st_mtime > LEFTOVER_SECONDS:
            path.unlink(missing_ok=True)
    for path in folder.glob(".postroom-*.tmp"):
        if time.time() - path.stat().st_mtime > LEFTOVER_SECONDS:
            path.unlink(missing_ok=True)
    return old


def run(settings: Settings) -> str | None:
    """Job: one scheduled backup."""
    return f"backup written to {make_backup(settings)}"
