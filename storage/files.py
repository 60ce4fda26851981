"""Create postroom's folders and files private to its user (0700 and 0600), whatever the umask.

The database holds SMTP passwords and every received mail: nothing postroom writes is for
other users. Files from an earlier version that are readable by others are tightened.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("postroom.files")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    """Create a folder and any missing parents with `mode`; leave existing ones as they are."""
    missing = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            continue
        os.chmod(folder, mode)  # mkdir's mode passes through the umask; this does not
    return Path(path)


def private_file(path: Path) -> None:
    """Create an empty file 0600 if it is missing; tighten one that others can read."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))
    except FileExistsError:
        tighten(path)


def tighten(path: Path) -> None:
    """Take group and other permissions off an existing file of ours (a warning says so)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
            log.warning(
                "%s was readable by other users (mode %o): now %o", path, mode, mode & ~0o077
            )
    except FileNotFoundError:
        return
    except OSError as error:  # e.g. owned by another user: say so, go on
        log.warning("%s is readable by other users and cannot be tightened: %s", path, error)
