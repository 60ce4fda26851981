"""Check that the generic top-level packages postroom ships are postroom's own.

`domain`, `storage`, `smtpd_ingest` and `admin_ui` are plain top-level names: another
distribution in the same environment may ship a `storage` of its own, and whichever comes
first on sys.path wins. postroom is supported only in a venv of its own (docs/operations.md,
"Install"); this check turns a shadowed package into one clear line at start instead of a
strange traceback.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SIBLINGS = ("domain", "storage", "smtpd_ingest", "admin_ui")


class ForeignPackage(Exception):
    """A top-level package postroom needs is found elsewhere than beside postroom."""


def check_own_packages() -> None:
    """Raise ForeignPackage unless each sibling package lies in postroom's own folder.

    Found by spec, not imported: nothing of a foreign package runs."""
    home = Path(__file__).resolve().parent.parent
    for name in SIBLINGS:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or Path(origin).resolve().parent.parent != home:
            where = origin or "nowhere"
            raise ForeignPackage(
                f"the package {name!r} is not postroom's (found: {where}; postroom is in {home}):"
                " install postroom into a venv of its own (docs/operations.md, Install)"
            )
